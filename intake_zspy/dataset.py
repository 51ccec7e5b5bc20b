"""Map decoded zspy signals onto xarray: axes become coordinates, metadata becomes attrs.

The mapping (one data variable ``data``; dims in array order):

- dim name: the axis name when it is set and unique within the signal (and not
  ``"data"``), else xarray's ``dim_<i>``;
- one index coordinate per dim holding HyperSpy's axis values, with attrs ``units``,
  ``long_name`` (the axis name), ``navigate``, ``is_binned``, ``axis_type`` and, by axis
  type, ``scale``/``offset`` (uniform) or ``expression``/``parameters``/``x_axis``
  (functional);
- Dataset attrs: ``title``, ``signal_type``, ``metadata``, ``original_metadata``,
  ``attributes`` (``ragged``, ``learning_results``, ...), ``models``, ``package``,
  ``package_version`` and ``zspy_signal`` (the ``Experiments/`` group name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from intake_zspy.format import names

if TYPE_CHECKING:
    from intake_zspy.format.axes import Axis
    from intake_zspy.format.decode import Signal

__all__ = ["DATA_VAR", "axis_to_coord", "dim_names", "signal_attrs", "signal_to_dataset"]

DATA_VAR = "data"


def dim_names(axes: list[Axis]) -> list[str]:
    """Dimension names for a signal's axes (see the module docstring)."""
    dims = [a.name if a.name and a.name != DATA_VAR else f"dim_{i}" for i, a in enumerate(axes)]
    # Duplicates fall back to dim_<i>; a fallback may collide with an axis really named
    # "dim_<i>", which then falls back too, so this ends after at most ndim passes.
    while len(set(dims)) < len(dims):
        dims = [d if dims.count(d) == 1 else f"dim_{i}" for i, d in enumerate(dims)]
    return dims


def axis_to_coord(axis: Axis, dim: str) -> xr.Variable:
    """The index coordinate of one axis."""
    attrs: dict[str, Any] = {}
    if axis.units is not None:
        attrs["units"] = axis.units
    if axis.name is not None:
        attrs["long_name"] = axis.name
    if axis.navigate is not None:
        attrs["navigate"] = axis.navigate
    attrs["is_binned"] = axis.is_binned
    attrs["axis_type"] = axis.kind
    if axis.kind == names.UNIFORM_AXIS:
        attrs["scale"] = axis.scale if axis.scale is not None else 1.0
        attrs["offset"] = axis.offset if axis.offset is not None else 0.0
    elif axis.kind == names.FUNCTIONAL_AXIS:
        attrs["expression"] = axis.expression
        attrs["parameters"] = axis.parameters
        x = dict(axis.raw.get(names.FUNCTIONAL_X, {}))
        if isinstance(x.get(names.AXIS_VECTOR), np.ndarray):
            x[names.AXIS_VECTOR] = x[names.AXIS_VECTOR].tolist()
        attrs["x_axis"] = x
    return xr.Variable((dim,), axis.values, attrs)


def signal_attrs(signal: Signal) -> dict[str, Any]:
    """The Dataset attributes of a signal."""
    return {
        "title": signal.title,
        "signal_type": signal.signal_type,
        "zspy_signal": signal.name,
        "package": signal.package,
        "package_version": signal.package_version,
        "metadata": signal.metadata,
        "original_metadata": signal.original_metadata,
        "attributes": signal.attributes,
        "models": signal.models,
    }


def signal_to_dataset(signal: Signal, data: Any) -> xr.Dataset:
    """Build the Dataset of ``signal`` around ``data`` (an array or a lazy array wrapper)."""
    dims = dim_names(signal.axes)
    coords = {dim: axis_to_coord(axis, dim) for dim, axis in zip(dims, signal.axes, strict=True)}
    return xr.Dataset({DATA_VAR: (dims, data)}, coords=coords, attrs=signal_attrs(signal))
