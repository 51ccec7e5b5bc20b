"""Compute and draw a signal's preview: the navigation-summed signal and the signal-summed
navigation image, side by side, with physical axes and the stored markers.

Both sums come from one lazy dask pass over the data (:func:`compute_sums`), so each
stored chunk is read once and memory stays around a few chunks per thread. Drawing uses
matplotlib's object API with the Agg canvas: no pyplot state, no display needed.

Markers are HyperSpy's ``metadata.Markers``: one dictionary per marker set, with its
``class`` (``Points``, ``Texts``, ``Lines``, ...), its constructor ``kwargs`` and
``plot_on_signal``. Markers that follow the navigation store object arrays with one
entry per navigation position; the preview shows data summed over navigation, so it
draws the markers of every position. Older (HyperSpy 1) marker dictionaries, with a
``marker_type`` and ``data`` ``x1``/``y1``/``x2``/``y2``/``text``, are drawn too.
"""

from __future__ import annotations

import io
import itertools
import re
import textwrap
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.cli._common import CliError

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Marker", "Sums", "compute_sums", "draw", "make_figure", "read_markers"]

#: Percentiles of the colour range of images (robust to hot pixels).
CLIP = (0.5, 99.5)
#: The most items (points, texts, lines) drawn per marker set; the rest are left out.
MAX_MARKER_ITEMS = 10_000
#: Padding of the constrained layout: around each panel and between panels (inches,
#: fraction of the panel width). The default leaves a colour bar's label touching the
#: next panel's y label.
LAYOUT_PAD = {"w_pad": 0.08, "h_pad": 0.06, "wspace": 0.06}

#: Font size of the panel titles (points).
TITLE_POINTS = 10.0

_UNNAMED_DIM = re.compile(r"dim_(\d+)")


@dataclass
class Marker:
    """One set of markers, ready to draw.

    ``kind`` is ``"points"`` (``offsets``), ``"texts"`` (``offsets`` and ``texts``),
    ``"segments"`` (``segments``), ``"vlines"`` or ``"hlines"`` (``positions``).
    ``transform`` names the coordinates of the positions: ``"data"``, ``"axes"``,
    ``"xaxis"`` or ``"yaxis"``.
    """

    name: str
    kind: str
    on_signal: bool = True
    transform: str = "data"
    offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    texts: list[str] = field(default_factory=list)
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    color: str | None = None
    size: float | None = None


@dataclass
class Sums:
    """The two summaries of a signal, as coordinates-carrying DataArrays (or ``None``)."""

    title: str
    subtitle: str
    quantity: str
    nav_dims: list[str]
    sig_dims: list[str]
    signal: xr.DataArray | None
    navigation: xr.DataArray | None
    markers: list[Marker] = field(default_factory=list)


def _numeric(da: xr.DataArray) -> xr.DataArray:
    """Real float data to sum: magnitudes of complex, sum of the fields of records."""
    dtype = da.dtype
    if dtype.fields is not None:
        fields = list(dtype.fields)
        if not all(np.dtype(dtype.fields[f][0]).kind in "biuf" for f in fields):
            raise CliError(f"cannot preview records of dtype {dtype}")
        data = sum(da.data[f].astype("f8") for f in fields)  # e.g. RGB -> intensity
        return da.copy(data=data)
    if dtype.kind == "c":
        return abs(da).astype("f8")
    if dtype.kind not in "biuf":
        raise CliError(f"cannot preview data of dtype {dtype}")
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

    Raises
    ------
    CliError
        The data cannot be previewed (ragged, non-numeric records).
    """
    import dask

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


# -- markers --------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """The per-navigation entries of a ragged (object) array, else ``[value]``."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.ravel())
    return [value]


def _points(value: Any) -> np.ndarray:
    """Any stored offsets (one point, a list of points, ragged per navigation) as (n, 2)."""
    parts = [np.asarray(v, dtype="f8").reshape(-1, 2) for v in _items(value) if v is not None]
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def _numbers(value: Any) -> np.ndarray:
    parts = [np.asarray(v, dtype="f8").ravel() for v in _items(value) if v is not None]
    return np.concatenate(parts) if parts else np.zeros(0)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str | bytes):
        value = [value]
    out = []
    for v in np.asarray(value, dtype=object).ravel():
        out.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
    return out


def _texts(offsets: Any, texts: Any) -> tuple[np.ndarray, list[str]]:
    """Pair offsets and texts per navigation position (texts cycle if fewer)."""
    xy: list[np.ndarray] = []
    labels: list[str] = []
    pos_items, text_items = _items(offsets), _items(texts)
    if len(text_items) == 1 < len(pos_items):
        text_items = text_items * len(pos_items)
    for pos, text in zip(pos_items, text_items, strict=False):
        if pos is None or text is None:
            continue
        points, strings = np.asarray(pos, dtype="f8").reshape(-1, 2), _strings(text)
        if not strings:
            continue
        xy.append(points)
        labels.extend(strings[i % len(strings)] for i in range(len(points)))
    return (np.concatenate(xy) if xy else np.zeros((0, 2))), labels


def _color(kwargs: Mapping[str, Any], *keys: str) -> str | None:
    from matplotlib.colors import is_color_like

    for key in keys:
        value = kwargs.get(key)
        if isinstance(value, str) and is_color_like(value):
            return value
    return None


def _size(value: Any) -> float | None:
    sizes = _numbers(value) if value is not None else np.zeros(0)
    sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
    return float(sizes[0]) if sizes.size else None


def _marker(name: str, spec: Mapping[str, Any]) -> Marker | None:
    """One stored marker set, or ``None`` for a class the preview does not draw."""
    if "marker_type" in spec:
        return _legacy_marker(name, spec)
    cls = str(spec.get("class") or name)
    kwargs = spec.get("kwargs")
    kwargs = kwargs if isinstance(kwargs, Mapping) else {}
    on_signal = spec.get("plot_on_signal", True) is not False
    transform = str(spec.get("offset_transform") or "data")
    marker = Marker(name, "points", on_signal, transform)
    marker.color = _color(kwargs, "color", "facecolor", "facecolors", "colors", "edgecolor")
    if cls == "Texts":
        marker.kind = "texts"
        marker.offsets, marker.texts = _texts(kwargs.get("offsets"), kwargs.get("texts"))
        marker.size = _size(kwargs.get("sizes"))
    elif cls in ("VerticalLines", "HorizontalLines") and "offsets" in kwargs:
        marker.kind = "vlines" if cls == "VerticalLines" else "hlines"
        marker.positions = _numbers(kwargs["offsets"])
    elif "segments" in kwargs:  # Lines, and vertical/horizontal lines stored as segments
        marker.kind = "segments"
        marker.transform = str(spec.get("transform") or "data")
        parts = [np.asarray(v, dtype="f8").reshape(-1, 2, 2) for v in _items(kwargs["segments"])]
        marker.segments = np.concatenate(parts) if parts else np.zeros((0, 2, 2))
    elif "offsets" in kwargs:  # Points; for circles, arrows, ... their positions
        marker.offsets = _points(kwargs["offsets"])
        units = kwargs.get("units", "points")
        marker.size = _size(kwargs.get("sizes")) if cls == "Points" and units == "points" else None
    elif "verts" in kwargs:  # Polygons: their outlines
        marker.kind = "segments"
        marker.transform = str(spec.get("transform") or "data")
        outlines = []
        for polygon in _items(kwargs["verts"]):
            for verts in polygon if isinstance(polygon, list | tuple) else [polygon]:
                v = np.asarray(verts, dtype="f8").reshape(-1, 2)
                outlines.append(np.stack([v, np.roll(v, -1, axis=0)], axis=1))
        marker.segments = np.concatenate(outlines) if outlines else np.zeros((0, 2, 2))
    else:
        return None
    return marker


#: HyperSpy 1 marker types: which data keys make a point, a text or a line
_LEGACY = {
    "Point": ("points", ("x1", "y1")),
    "Text": ("texts", ("x1", "y1")),
    "LineSegment": ("segments", ("x1", "y1", "x2", "y2")),
    "Line": ("segments", ("x1", "y1", "x2", "y2")),
    "Arrow": ("segments", ("x1", "y1", "x2", "y2")),
    "VerticalLineSegment": ("segments", ("x1", "y1", "x1", "y2")),
    "HorizontalLineSegment": ("segments", ("x1", "y1", "x2", "y1")),
    "VerticalLine": ("vlines", ("x1",)),
    "HorizontalLine": ("hlines", ("y1",)),
    "Rectangle": ("rectangles", ("x1", "y1", "x2", "y2")),
    "Ellipse": ("points", ("x1", "y1")),
}


def _legacy_marker(name: str, spec: Mapping[str, Any]) -> Marker | None:
    kind, keys = _LEGACY.get(str(spec.get("marker_type")), ("", ()))
    data = spec.get("data")
    if not kind or not isinstance(data, Mapping) or any(k not in data for k in keys):
        return None
    columns = np.broadcast_arrays(*(_numbers(data[k]) for k in keys))
    props = spec.get("marker_properties")
    marker = Marker(name, kind, spec.get("plot_on_signal", True) is not False)
    marker.color = _color(props if isinstance(props, Mapping) else {}, "color")
    if kind in ("vlines", "hlines"):
        marker.positions = columns[0]
    elif kind in ("points", "texts"):
        marker.offsets = np.stack(columns, axis=-1)
        if kind == "texts":
            marker.texts = _strings(data.get("text", ""))
            if len(marker.texts) == 1:
                marker.texts *= len(marker.offsets)
    else:
        x1, y1, x2, y2 = columns
        if kind == "rectangles":  # four sides
            marker.kind = "segments"
            corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
            sides = [
                np.stack([np.stack(a, -1), np.stack(b, -1)], 1)
                for a, b in itertools.pairwise(corners)
            ]
            marker.segments = np.concatenate(sides)
        else:
            marker.segments = np.stack([np.stack([x1, y1], -1), np.stack([x2, y2], -1)], axis=1)
    return marker


def read_markers(stored: Any) -> list[Marker]:
    """The drawable markers of ``metadata["Markers"]``; others are left out with a warning."""
    from intake_zspy.errors import ZspyWarning

    if not isinstance(stored, Mapping):
        return []
    markers = []
    for name, spec in stored.items():
        if not isinstance(spec, Mapping):
            continue
        try:
            marker = _marker(str(name), spec)
        except (TypeError, ValueError) as exc:  # malformed arrays, unknown shapes
            warnings.warn(f"marker {name!r} not drawn: {exc}", ZspyWarning, stacklevel=2)
            continue
        if marker is not None:
            markers.append(_capped(marker))
    return markers


def _capped(marker: Marker) -> Marker:
    marker.offsets = marker.offsets[:MAX_MARKER_ITEMS]
    marker.texts = marker.texts[: len(marker.offsets)]
    marker.segments = marker.segments[:MAX_MARKER_ITEMS]
    marker.positions = marker.positions[:MAX_MARKER_ITEMS]
    return marker


def _transform(ax: Axes, name: str) -> Any:
    return {
        "axes": ax.transAxes,
        "xaxis": ax.get_xaxis_transform(),
        "yaxis": ax.get_yaxis_transform(),
    }.get(name, ax.transData)


def _draw_markers(ax: Axes, markers: Iterable[Marker]) -> None:
    """Draw markers without changing the view the data set."""
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection

    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for m in markers:
        label = f"marker {m.name}"
        if m.kind == "points" and len(m.offsets):
            size = (m.size or 6.0) ** 2  # diameter in points -> area in points²
            kwargs: dict[str, Any] = {"s": size, "label": label, "zorder": 3}
            ax.scatter(
                m.offsets[:, 0],
                m.offsets[:, 1],
                c=m.color or "tab:orange",
                edgecolors="black",
                linewidths=0.5,
                transform=_transform(ax, m.transform),
                **kwargs,
            )
        elif m.kind == "texts":
            for (x, y), text in zip(m.offsets, m.texts, strict=False):
                ax.text(
                    x,
                    y,
                    text,
                    color=m.color or "black",
                    fontsize=min(max(m.size, 7.0), 24.0) if m.size else "small",
                    transform=_transform(ax, m.transform),
                    path_effects=halo,
                    ha="center",
                    va="center",
                    clip_on=True,
                    label=label,
                    zorder=4,
                )
        elif m.kind == "segments" and len(m.segments):
            lines = LineCollection(
                list(m.segments),
                colors=m.color or "tab:red",
                linewidths=1.0,
                transform=_transform(ax, m.transform),
                label=label,
                zorder=3,
            )
            ax.add_collection(lines, autolim=False)
        elif m.kind == "vlines" and len(m.positions):
            ax.vlines(
                m.positions,
                0,
                1,
                transform=ax.get_xaxis_transform(),
                colors=m.color or "tab:red",
                linewidths=1.0,
                label=label,
                zorder=3,
            )
        elif m.kind == "hlines" and len(m.positions):
            ax.hlines(
                m.positions,
                0,
                1,
                transform=ax.get_yaxis_transform(),
                colors=m.color or "tab:red",
                linewidths=1.0,
                label=label,
                zorder=3,
            )
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


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
        raise CliError(f"cannot draw {da.ndim} dims")


def make_figure(sums: Sums, source: str, *, size: tuple[int, int], dpi: int, log: bool) -> Figure:
    """The preview as a matplotlib Figure (with an Agg canvas) of ``size`` pixels.

    ``source`` is the second line of the heading (the store, and the signal group when
    it says more than the title).
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
        raise CliError("the data has no dims: nothing to preview")
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
        _draw_markers(ax, [m for m in sums.markers if m.on_signal is on_signal])
    heading = sums.title or "untitled"
    if sums.subtitle:
        heading += f"  [{sums.subtitle}]"
    fig.suptitle(f"{heading}\n{source}" if source else heading, fontsize="medium")
    return fig


def draw(sums: Sums, source: str, *, size: tuple[int, int], dpi: int, log: bool) -> bytes:
    """Draw the preview; return PNG bytes of exactly ``size`` pixels (width, height)."""
    fig = make_figure(sums, source, size=size, dpi=dpi, log=log)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
