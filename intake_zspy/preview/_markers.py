"""HyperSpy markers (``metadata.Markers``): read them from a signal's metadata, draw them.

Each marker set is one dictionary with its ``class`` (``Points``, ``Texts``, ``Lines``,
...), its constructor ``kwargs`` and ``plot_on_signal``. Markers that follow the
navigation store object arrays with one entry per navigation position; a preview shows
data summed over navigation, so :func:`read_markers` gathers the markers of every
position. Older (HyperSpy 1) marker dictionaries, with a ``marker_type`` and ``data``
``x1``/``y1``/``x2``/``y2``/``text``, are read too. :func:`draw_markers` draws them on
matplotlib axes (imported only then).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.errors import ZspyWarning

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["MAX_MARKER_ITEMS", "Marker", "draw_markers", "read_markers"]

#: The most items (points, texts, lines) drawn per marker set; the rest are left out.
MAX_MARKER_ITEMS = 10_000


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
    """The drawable markers of a signal's ``metadata["Markers"]``.

    Parameters
    ----------
    stored
        ``ds.attrs["metadata"].get("Markers")``: ``{name: marker dictionary}`` in the
        HyperSpy 2 layout (``class``, ``kwargs``) or the HyperSpy 1 one
        (``marker_type``, ``data``). Anything else reads as no markers.

    Returns
    -------
    list of Marker
        Positions of every navigation position gathered, at most
        :data:`MAX_MARKER_ITEMS` items per set. Classes that cannot be drawn (no
        positions) are left out.

    Warns
    -----
    ZspyWarning
        A marker set whose arrays are malformed; it is left out.
    """
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


def draw_markers(ax: Axes, markers: Iterable[Marker]) -> None:
    """Draw markers on ``ax`` without changing its view (the one the data set).

    Points are scattered (their stored colour, else orange), texts written with a white
    halo, segments drawn as lines, vertical and horizontal lines across the axes. Each
    artist is labelled ``"marker <name>"``.
    """
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
        elif m.kind in ("vlines", "hlines") and len(m.positions):
            vertical = m.kind == "vlines"
            draw = ax.vlines if vertical else ax.hlines
            draw(
                m.positions,
                0,
                1,  # across the whole axes
                transform=ax.get_xaxis_transform() if vertical else ax.get_yaxis_transform(),
                colors=m.color or "tab:red",
                linewidths=1.0,
                label=label,
                zorder=3,
            )
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
