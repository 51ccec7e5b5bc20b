"""Compute and draw a signal's preview: the navigation-summed signal and the signal-summed
navigation image, side by side, with physical axes and the stored markers.

Both sums come from one lazy dask pass over the data (:func:`compute_sums`), so each
stored chunk is read once and memory stays around a few chunks per thread. Drawing uses
matplotlib's object API with the Agg canvas: no pyplot state, no display needed.
matplotlib is imported only when drawing.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.errors import PreviewError
from intake_zspy.preview._markers import Marker, draw_markers, read_markers

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Sums",
    "check_previewable",
    "compute_sums",
    "dim_label",
    "figure_png",
    "make_figure",
    "source_line",
]

#: Percentiles of the colour range of images (robust to hot pixels).
CLIP = (0.5, 99.5)
#: Padding of the constrained layout: around each panel and between panels (inches,
#: fraction of the panel width). The default leaves a colour bar's label touching the
#: next panel's y label.
LAYOUT_PAD = {"w_pad": 0.08, "h_pad": 0.06, "wspace": 0.06}

#: Font size of the panel titles (points).
TITLE_POINTS = 10.0

_UNNAMED_DIM = re.compile(r"dim_(\d+)")


@dataclass
class Sums:
    """The two summaries of a signal, as coordinates-carrying DataArrays (or ``None``).

    ``signal`` is the data summed over navigation (its last two signal dims kept),
    ``navigation`` the data summed over the signal (its last two navigation dims kept);
    ``title`` and ``subtitle`` (the signal type) head the figure, ``quantity`` labels
    the intensities, ``markers`` are drawn on their panel.
    """

    title: str
    subtitle: str
    quantity: str
    nav_dims: list[str]
    sig_dims: list[str]
    signal: xr.DataArray | None
    navigation: xr.DataArray | None
    markers: list[Marker] = field(default_factory=list)


def _where(ds: xr.Dataset) -> str:
    """``"<url>: "`` for messages about a dataset opened from a store, else ``""``."""
    source = ds.encoding.get("source")
    return f"{source}: " if source else ""


def check_previewable(ds: xr.Dataset) -> None:
    """Check, from its metadata only, that the data of ``ds`` can be previewed.

    Raises
    ------
    PreviewError
        No ``data`` variable, ragged data, data that is not numbers (text, objects,
        records with such fields) or data without dims; the message names the store.
    """
    if "data" not in ds.data_vars:
        raise PreviewError(f"{_where(ds)}no 'data' variable: not a signal of a zspy store")
    dtype = ds["data"].dtype
    if dtype.kind == "O":
        raise PreviewError(f"{_where(ds)}ragged signals have no fixed shape to sum: no preview")
    if dtype.fields is not None:
        if not all(np.dtype(dtype.fields[f][0]).kind in "biuf" for f in dtype.fields):
            raise PreviewError(f"{_where(ds)}cannot preview records of dtype {dtype}")
    elif dtype.kind not in "biufc":
        raise PreviewError(f"{_where(ds)}cannot preview data of dtype {dtype}")
    if not ds["data"].dims:
        raise PreviewError(f"{_where(ds)}the data has no dims: nothing to preview")


def _numeric(da: xr.DataArray) -> xr.DataArray:
    """Real float data to sum: magnitudes of complex, sum of the fields of records."""
    dtype = da.dtype
    if dtype.fields is not None:
        data = sum(da.data[f].astype("f8") for f in dtype.fields)  # e.g. RGB -> intensity
        return da.copy(data=data)
    if dtype.kind == "c":
        return abs(da).astype("f8")
    return da.astype("f8")


def _split(ds: xr.Dataset) -> tuple[list[str], list[str]]:
    dims = [str(d) for d in ds["data"].dims]
    signal = [d for d in dims if ds[d].attrs.get("navigate") is False]
    if not signal and dims:  # no navigate attrs: HyperSpy's default, last dim is signal
        signal = dims[-1:]
    return [d for d in dims if d not in signal], signal


def compute_sums(ds: xr.Dataset) -> Sums:
    """Sum the data over navigation and over signal dims in one dask pass.

    Signals with more than two dims keep their last two (the others are summed too);
    navigation likewise. ``title`` is the stored title, ``""`` when there is none.

    Parameters
    ----------
    ds
        One signal, as :func:`intake_zspy.open_dataset` opens it. Open it with dask
        chunks (``chunks="auto"`` or ``{}``) to sum chunk by chunk; without, the data is
        read whole.

    Returns
    -------
    Sums
        The two sums (computed), the titles and the stored markers.

    Raises
    ------
    PreviewError
        The data cannot be previewed (see :func:`check_previewable`).
    """
    import dask

    check_previewable(ds)
    data = _numeric(ds["data"])
    magnitude = ds["data"].dtype.kind == "c"
    nav, sig = _split(ds)
    sig_keep, nav_keep = sig[-2:], nav[-2:]
    signal = data.sum([d for d in data.dims if d not in sig_keep]) if sig_keep else None
    navigation = data.sum([d for d in data.dims if d not in nav_keep]) if nav_keep else None
    lazy = [x for x in (signal, navigation) if x is not None]
    done = iter(dask.compute(*lazy))
    signal = next(done) if signal is not None else None
    navigation = next(done) if navigation is not None else None
    metadata = ds.attrs.get("metadata", {})
    if not isinstance(metadata, Mapping):
        metadata = {}
    signal_md = metadata.get("Signal", {})
    quantity = signal_md.get("quantity") if isinstance(signal_md, Mapping) else ""
    title = str(ds.attrs.get("title") or "")
    kind = str(ds.attrs.get("signal_type") or "")
    quantity = str(quantity or "Intensity")
    if magnitude:
        quantity = f"|{quantity}|"
    markers = read_markers(metadata.get("Markers"))
    return Sums(title, kind, quantity, nav, sig, signal, navigation, markers)


def source_line(url: str, ds: xr.Dataset) -> str:
    """The store's name (the last part of ``url``, if any), and the signal's group when it
    says more than the title: the second line of the heading."""
    from intake_zspy.format.names import UNNAMED

    name = str(url).rstrip("/").rsplit("/", 1)[-1]
    group = str(ds.attrs.get("zspy_signal") or "")
    title = str(ds.attrs.get("title") or "")
    if not group or group == UNNAMED or group == title.replace("/", "-"):
        return name
    return f"{name}: {group}" if name else group


# -- panels ---------------------------------------------------------------------------


def dim_label(da: xr.DataArray, dim: str) -> str:
    """An axis label: the stored name, else ``axis <i>``, with the units if any."""
    coord = da[dim]
    name = coord.attrs.get("long_name")
    if not name:
        unnamed = _UNNAMED_DIM.fullmatch(dim)
        name = f"axis {unnamed.group(1)}" if unnamed else dim
    units = coord.attrs.get("units")
    return f"{name} ({units})" if units else str(name)


def _dim_names(ds_dims: Iterable[str]) -> str:
    names = []
    for dim in ds_dims:
        unnamed = _UNNAMED_DIM.fullmatch(dim)
        names.append(f"axis {unnamed.group(1)}" if unnamed else dim)
    return ", ".join(names)


def _edges(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype="f8")
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _uniform(values: np.ndarray) -> bool:
    step = np.diff(np.asarray(values, dtype="f8"))
    return step.size == 0 or bool(np.allclose(step, step[0], rtol=1e-6, atol=0))


def _image(ax: Axes, fig: Figure, da: xr.DataArray, title: str, quantity: str, log: bool) -> None:
    from matplotlib.colors import LogNorm, Normalize

    ydim, xdim = (str(d) for d in da.dims)
    values = np.asarray(da.values, dtype="f8")
    finite = values[np.isfinite(values)]
    positive = finite[finite > 0] if log else finite
    if positive.size:
        lo, hi = np.percentile(positive, CLIP)
        if hi <= lo:
            lo, hi = float(positive.min()), float(positive.max()) or 1.0
        norm: Normalize = LogNorm(lo, max(hi, lo * 1.0001)) if log else Normalize(lo, hi)
    else:
        norm = Normalize()
    x, y = da[xdim].values, da[ydim].values
    xe, ye = _edges(x), _edges(y)
    cmap = "viridis" if log else "gray"
    image: Any
    if _uniform(x) and _uniform(y):
        extent = (xe[0], xe[-1], ye[-1], ye[0])
        image = ax.imshow(values, extent=extent, norm=norm, interpolation="nearest", cmap=cmap)
    else:
        image = ax.pcolormesh(xe, ye, values, norm=norm, cmap=cmap)
        ax.invert_yaxis()
    # images in real (or reciprocal) space keep their proportions
    units = da[xdim].attrs.get("units")
    ratio = abs(ye[-1] - ye[0]) / max(abs(xe[-1] - xe[0]), 1e-300)
    same = bool(units) and units == da[ydim].attrs.get("units")
    ax.set_aspect("equal" if same and 0.25 < ratio < 4 else "auto")
    # the colour bar hugs the image (whatever its aspect); the layout keeps its label
    # clear of the next panel (the bar is a child of ``ax``, inside its tight box)
    cax = ax.inset_axes((1.03, 0.0, 0.04, 1.0))
    fig.colorbar(image, cax=cax, label=quantity)
    ax.set_xlabel(dim_label(da, xdim))
    ax.set_ylabel(dim_label(da, ydim))
    ax.set_title(title, fontsize=TITLE_POINTS)


def _line(ax: Axes, da: xr.DataArray, title: str, quantity: str, log: bool) -> None:
    (dim,) = (str(d) for d in da.dims)
    ax.plot(da[dim].values, da.values, lw=1)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(dim_label(da, dim))
    ax.set_ylabel(quantity)
    ax.set_title(title, fontsize=TITLE_POINTS)
    ax.grid(alpha=0.3)


def _panel(ax: Axes, fig: Figure, da: xr.DataArray, title: str, quantity: str, log: bool) -> None:
    if da.ndim == 2:
        _image(ax, fig, da, title, quantity, log)
    elif da.ndim == 1:
        _line(ax, da, title, quantity, log)
    else:  # pragma: no cover - compute_sums keeps at most two dims
        raise ValueError(f"cannot draw {da.ndim} dims")


def make_figure(sums: Sums, source: str, *, size: tuple[int, int], dpi: int, log: bool) -> Figure:
    """The preview of computed sums as a matplotlib Figure (with an Agg canvas).

    Parameters
    ----------
    sums
        From :func:`compute_sums`.
    source
        The second line of the heading (see :func:`source_line`), or ``""``.
    size
        ``(width, height)`` in pixels.
    dpi
        Dots per inch: the figure is ``size / dpi`` inches.
    log
        Logarithmic intensity scale.

    Raises
    ------
    PreviewError
        Neither sum has a dim: nothing to draw.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = []
    if sums.signal is not None:
        over = f" ({_dim_names(sums.nav_dims)})" if sums.nav_dims else ""
        panels.append((sums.signal, f"signal, summed over navigation{over}", True))
    if sums.navigation is not None:
        over = f" ({_dim_names(sums.sig_dims)})" if sums.sig_dims else ""
        panels.append((sums.navigation, f"navigation, summed over the signal{over}", False))
    if not panels:
        raise PreviewError("the data has no dims: nothing to preview")
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    fig.get_layout_engine().set(**LAYOUT_PAD)  # type: ignore[union-attr]
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    # wrap panel titles to the width of a panel's axes (three quarters of its share of
    # the picture, the rest being labels), at about 0.6 em per character
    em = TITLE_POINTS * dpi / 72
    columns = max(12, int(0.75 * size[0] / len(panels) / (0.6 * em)))
    for ax, (da, title, on_signal) in zip(axes, panels, strict=True):
        _panel(ax, fig, da, textwrap.fill(title, columns), sums.quantity, log)
        draw_markers(ax, [m for m in sums.markers if m.on_signal is on_signal])
    heading = sums.title or "untitled"
    if sums.subtitle:
        heading += f"  [{sums.subtitle}]"
    fig.suptitle(f"{heading}\n{source}" if source else heading, fontsize="medium")
    return fig


def figure_png(fig: Figure, *, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes (at ``dpi``, default the figure's own: ``size`` pixels)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi if dpi is None else dpi)
    return buf.getvalue()
