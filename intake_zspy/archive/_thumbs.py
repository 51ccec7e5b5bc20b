"""Thumbnails: the sums of a store's first signal (over navigation, and over the signal),
drawn small with numpy alone (:mod:`intake_zspy.archive._png`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["THUMB_SIZE", "THUMB_STYLE", "dataset_thumbnail", "draw_thumbnail", "too_big"]

#: Pixel size of thumbnails (two panels side by side), and what changes them all.
THUMB_SIZE = (480, 192)
THUMB_STYLE = "numpy-1"


def too_big(stored: int | None, limit: int | None) -> str:
    """Why a store of ``stored`` bytes gets no thumbnail under ``limit``, or ``""``."""
    from intake_zspy.archive._html import format_bytes

    if limit is None or stored is None or stored <= limit:
        return ""
    return (
        f"not drawn: {format_bytes(stored)} stored, above the {format_bytes(limit)} "
        "read limit (max_preview_bytes)"
    )


def dataset_thumbnail(ds: xr.Dataset) -> bytes:
    """PNG bytes of the thumbnail of one signal opened as a Dataset (lazy or not).

    Raises
    ------
    PreviewError
        The signal cannot be previewed (ragged, not numbers, no dims).
    """
    import dask

    from intake_zspy.archive._png import thumbnail_png
    from intake_zspy.preview import PREVIEW_CHUNK_BYTES, compute_sums
    from intake_zspy.preview._figure import check_previewable

    check_previewable(ds)
    if ds["data"].chunks is None:
        ds = ds.chunk({})
    with dask.config.set({"array.chunk-size": PREVIEW_CHUNK_BYTES}):
        sums = compute_sums(ds)
    panels = [s.values for s in (sums.signal, sums.navigation) if s is not None]
    return thumbnail_png(panels, THUMB_SIZE)


def draw_thumbnail(
    url: str, signal: str | None, storage_options: Mapping[str, Any] | None
) -> bytes:
    """PNG bytes of the thumbnail of ``signal`` of the store at ``url``.

    Raises
    ------
    PreviewError, ZspyError, OSError
        As :func:`intake_zspy.preview.preview_png`.
    """
    from intake_zspy.reader import open_dataset
    from intake_zspy.storage import open_store

    with open_store(url, storage_options) as store:
        ds = open_dataset(store, signal=signal, chunks="auto")
        ds.encoding["source"] = store.url
        return dataset_thumbnail(ds)
