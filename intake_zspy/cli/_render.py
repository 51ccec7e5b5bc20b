"""Compute and draw a signal's preview: the navigation-summed signal and the signal-summed
navigation image, side by side, with physical axes.

Both sums come from one lazy dask pass over the data (:func:`compute_sums`), so each
stored chunk is read once and memory stays around a few chunks per thread. Drawing uses
matplotlib's object API with the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.cli._common import CliError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Sums", "compute_sums", "draw"]

#: Percentiles of the colour range of images (robust to hot pixels).
CLIP = (0.5, 99.5)


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
    navigation likewise.

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
    quantity = metadata.get("Signal", {}).get("quantity") if isinstance(metadata, dict) else ""
    title = str(ds.attrs.get("title") or ds.attrs.get("zspy_signal") or "")
    kind = str(ds.attrs.get("signal_type") or "")
    quantity = str(quantity or "Intensity")
    if magnitude:
        quantity = f"|{quantity}|"
    return Sums(title, kind, quantity, nav, sig, signal, navigation)


def _label(da: xr.DataArray, dim: str) -> str:
    coord = da[dim]
    name = str(coord.attrs.get("long_name") or dim)
    units = coord.attrs.get("units")
    return f"{name} ({units})" if units else name


def _edges(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype="f8")
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _uniform(values: np.ndarray) -> bool:
    step = np.diff(np.asarray(values, dtype="f8"))
    return step.size == 0 or bool(np.allclose(step, step[0], rtol=1e-6, atol=0))


def _image(ax: Any, fig: Any, da: xr.DataArray, title: str, quantity: str, log: bool) -> None:
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
    fig.colorbar(image, ax=ax, label=quantity)
    ax.set_xlabel(_label(da, xdim))
    ax.set_ylabel(_label(da, ydim))
    ax.set_title(title, fontsize="medium")


def _line(ax: Any, da: xr.DataArray, title: str, quantity: str, log: bool) -> None:
    (dim,) = (str(d) for d in da.dims)
    ax.plot(da[dim].values, da.values, lw=1)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(_label(da, dim))
    ax.set_ylabel(quantity)
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)


def _panel(ax: Any, fig: Any, da: xr.DataArray, title: str, quantity: str, log: bool) -> None:
    if da.ndim == 2:
        _image(ax, fig, da, title, quantity, log)
    elif da.ndim == 1:
        _line(ax, da, title, quantity, log)
    else:  # pragma: no cover - compute_sums keeps at most two dims
        raise CliError(f"cannot draw {da.ndim} dims")


def draw(sums: Sums, source: str, *, size: tuple[int, int], dpi: int, log: bool) -> bytes:
    """Draw the preview; return PNG bytes of exactly ``size`` pixels (width, height)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = []
    if sums.signal is not None:
        over = f" ({', '.join(sums.nav_dims)})" if sums.nav_dims else ""
        panels.append((sums.signal, f"signal, summed over navigation{over}"))
    if sums.navigation is not None:
        over = f" ({', '.join(sums.sig_dims)})" if sums.sig_dims else ""
        panels.append((sums.navigation, f"navigation, summed over the signal{over}"))
    if not panels:
        raise CliError("the data has no dims: nothing to preview")
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (da, title) in zip(axes, panels, strict=True):
        _panel(ax, fig, da, title, sums.quantity, log)
    heading = sums.title or "(untitled)"
    if sums.subtitle:
        heading += f"  [{sums.subtitle}]"
    fig.suptitle(f"{heading}\n{source}", fontsize="medium")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
