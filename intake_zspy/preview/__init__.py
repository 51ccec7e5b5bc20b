"""Previews of zspy signals: the data summed over navigation next to the data summed over
the signal, with physical axes, the stored title and the stored markers.

:func:`preview_figure` draws one signal of a store (a URL or path) or an opened
:class:`xarray.Dataset` as a :class:`matplotlib.figure.Figure`; :func:`preview_png`
returns the same picture as PNG bytes. In a notebook, a Figure shows itself::

    from intake_zspy.preview import preview_figure

    preview_figure("s3://lab/si.zspy", signal="EELS SI", log=True,
                   storage_options={"anon": True})

The sums are computed lazily, chunk by chunk (one pass over the data, memory bounded to
a few chunks per thread). Drawing needs matplotlib (``pip install intake-zspy[preview]``),
imported on first use; the building blocks (:func:`compute_sums`, :func:`make_figure`,
:func:`read_markers`, :func:`draw_markers`) are public too. The ``intake-zspy preview``
command writes these PNGs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intake_zspy.preview._figure import (
    Sums,
    check_previewable,
    compute_sums,
    figure_png,
    make_figure,
    source_line,
)
from intake_zspy.preview._markers import Marker, draw_markers, read_markers

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_DPI",
    "Marker",
    "Sums",
    "compute_sums",
    "draw_markers",
    "make_figure",
    "preview_figure",
    "preview_png",
    "read_markers",
]

#: Resolution of previews (dots per inch) unless told.
DEFAULT_DPI = 100
#: Size in pixels (width, height) of a preview with two panels, and with one.
SIZE_TWO_PANELS = (1200, 480)
SIZE_ONE_PANEL = (640, 480)
#: Bytes per dask chunk while summing (bounds memory: a few chunks per thread).
PREVIEW_CHUNK_BYTES = "32MiB"
#: The lowest resolution accepted (dots per inch).
MIN_DPI = 10


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "preview needs matplotlib: pip install intake-zspy[preview]", name="matplotlib"
        ) from exc


def _pixels(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"size must be (width, height) in pixels, not {size!r}") from exc
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive pixels (width, height), not {size!r}")
    return width, height


def _dask_chunks(ds: xr.Dataset) -> dict[str, tuple[int, ...]]:
    """Chunks of ``array.chunk-size`` aligned to the stored ones, as ``chunks="auto"``."""
    from dask.array.core import normalize_chunks

    da = ds["data"]
    preferred = da.encoding.get("preferred_chunks", {})
    previous = tuple(preferred.get(d, n) for d, n in zip(da.dims, da.shape, strict=True))
    chunks = normalize_chunks("auto", da.shape, dtype=da.dtype, previous_chunks=previous)
    return {str(d): tuple(c) for d, c in zip(da.dims, chunks, strict=True)}


def _sums_of_url(
    urlpath: Any, signal: str | None, storage_options: Mapping[str, Any] | None
) -> tuple[Sums, str]:
    from intake_zspy.reader import open_dataset
    from intake_zspy.storage import open_store

    with open_store(urlpath, storage_options) as store:
        ds = open_dataset(store, signal=signal)  # metadata only: check what the data is
        ds.encoding["source"] = store.url
        check_previewable(ds)
        ds = open_dataset(store, signal=signal, chunks="auto")  # aligned to stored chunks
        sums = compute_sums(ds)
    url = os.fspath(urlpath) if isinstance(urlpath, str | os.PathLike) else store.url
    return sums, source_line(str(url), ds)


def _sums_of_dataset(ds: xr.Dataset) -> tuple[Sums, str]:
    check_previewable(ds)
    if ds["data"].chunks is None:  # lazily indexed or in memory: sum chunk by chunk
        ds = ds.chunk(_dask_chunks(ds))
    return compute_sums(ds), source_line(str(ds.encoding.get("source") or ""), ds)


def preview_figure(
    obj: str | os.PathLike[str] | xr.Dataset | Any,
    *,
    signal: str | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = DEFAULT_DPI,
    log: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Figure:
    """Draw the preview of one signal as a matplotlib Figure.

    The left panel is the data summed over its navigation dims (a spectrum, or an image
    for 2-D signals); the right one the data summed over its signal dims (the navigation
    image, or a line for a 1-D scan). Axes carry the stored names, units and calibrated
    values; the heading is the stored title and signal type, then the store's name.
    Stored markers (points, texts, lines; HyperSpy 2 and 1 layouts) are drawn on their
    panel, those of every navigation position at once. Complex data is shown as
    magnitudes, RGB records as the sum of their channels.

    Parameters
    ----------
    obj
        The store: a local directory or zip file, an fsspec URL (``s3://lab/si.zspy``),
        an fsspec mapper or a zarr Store; or one signal opened by
        :func:`intake_zspy.open_dataset` (with or without dask chunks).
    signal
        The signal to draw when ``obj`` is a store (default: the first).
    size
        ``(width, height)`` of the picture in pixels. Default: ``(1200, 480)`` with two
        panels, ``(640, 480)`` with one.
    dpi
        Resolution, at least 10: fonts and lines scale with it, not the pixel size.
    log
        Logarithmic intensity scale (and a colour map for images).
    storage_options
        Passed to fsspec when ``obj`` is a URL (e.g. s3fs credentials).

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas (no pyplot state, no display needed): ``fig.savefig(...)``
        writes any format matplotlib knows; notebooks display it.

    Raises
    ------
    PreviewError
        The signal cannot be previewed: ragged data, data that is not numbers, no dims.
        The message names the store.
    ImportError
        matplotlib is not installed (``pip install intake-zspy[preview]``).
    TypeError, ValueError
        ``signal`` or ``storage_options`` given with a Dataset, a malformed ``size``, a
        ``dpi`` below 10.
    ZspyError
        The store cannot be read (see :func:`intake_zspy.open_dataset`).
    """
    import dask

    _require_matplotlib()
    pixels = _pixels(size)
    if dpi < MIN_DPI:
        raise ValueError(f"dpi must be at least {MIN_DPI}, not {dpi}")
    from xarray import Dataset

    config = {"array.chunk-size": PREVIEW_CHUNK_BYTES, "scheduler": "threads"}
    with dask.config.set(config):
        if isinstance(obj, Dataset):
            if signal is not None or storage_options:
                raise TypeError("signal and storage_options apply to a store, not a Dataset")
            sums, source = _sums_of_dataset(obj)
        else:
            sums, source = _sums_of_url(obj, signal, storage_options)
    panels = (sums.signal is not None) + (sums.navigation is not None)
    pixels = pixels or (SIZE_TWO_PANELS if panels > 1 else SIZE_ONE_PANEL)
    return make_figure(sums, source, size=pixels, dpi=dpi, log=log)


def preview_png(
    obj: str | os.PathLike[str] | xr.Dataset | Any,
    *,
    signal: str | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = DEFAULT_DPI,
    log: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> bytes:
    """The preview of one signal as PNG bytes of exactly ``size`` pixels.

    Takes the arguments of :func:`preview_figure` and raises its errors.

    Returns
    -------
    bytes
        A PNG image.
    """
    fig = preview_figure(
        obj, signal=signal, size=size, dpi=dpi, log=log, storage_options=storage_options
    )
    return figure_png(fig, dpi=dpi)
