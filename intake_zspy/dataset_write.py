"""Map xarray objects back onto zspy signals (writing): the mirror of
:mod:`intake_zspy.dataset`.

:func:`dataset_to_signal` describes a DataArray or single-variable Dataset as a
:class:`~intake_zspy.format.model.SignalSpec`. Attrs written by
:func:`~intake_zspy.dataset.signal_to_dataset` are honoured, so a Dataset opened from
zspy goes back unchanged. Objects that never came from zspy get HyperSpy axes from their
coordinates: an evenly spaced numeric coordinate becomes a ``UniformDataAxis`` (scale and
offset inferred, relative tolerance 1e-9 of the span), any other numeric coordinate a
``DataAxis``, no coordinate ``scale=1, offset=0``. Signal axes come from the coordinates'
``navigate`` attrs, else from ``signal_dims`` (default: the last dim; ragged data has
none). Whatever has no HyperSpy meaning (other Dataset and data variable attrs,
coordinates that are not dimension indexes, other coordinate attrs) is kept in
``metadata._xarray`` and restored on read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from intake_zspy.dataset import DATA_VAR, XARRAY_KEY
from intake_zspy.errors import ZspyFormatError
from intake_zspy.format import layout, names
from intake_zspy.format.axes import axis_from_dict
from intake_zspy.format.model import SignalSpec

__all__ = ["coord_to_axis", "dataset_to_signal"]

#: Dataset attrs the mapping itself produces and consumes.
_SIGNAL_ATTRS = frozenset(
    {
        "title",
        "signal_type",
        "zspy_signal",
        "package",
        "package_version",
        "metadata",
        "original_metadata",
        "attributes",
        "models",
    }
)
#: Coordinate attrs the mapping itself produces and consumes.
_AXIS_ATTRS = frozenset(
    {
        "units",
        "long_name",
        "navigate",
        "is_binned",
        "axis_type",
        "scale",
        "offset",
        "expression",
        "parameters",
        "x_axis",
    }
)
_GENERATED_DIM = re.compile(r"^dim_\d+$")
_UNIFORM_RTOL = 1e-9


def coord_to_axis(
    coord: xr.DataArray | None, dim: str, size: int, navigate: bool
) -> dict[str, Any]:
    """The HyperSpy axis dictionary of one dimension (the mirror of
    :func:`~intake_zspy.dataset.axis_to_coord`)."""
    attrs = dict(coord.attrs) if coord is not None else {}
    name = attrs.get("long_name", None if _GENERATED_DIM.match(dim) else dim)
    axis: dict[str, Any] = {
        "name": None if name is None else str(name),
        "units": attrs.get("units"),
        "navigate": bool(attrs.get("navigate", navigate)),
        "is_binned": bool(attrs.get("is_binned", False)),
    }
    values = None if coord is None else np.asarray(coord.values)
    if values is not None and (values.ndim != 1 or values.dtype.kind not in "iuf"):
        raise TypeError(
            f"coordinate {dim!r} ({values.dtype}) cannot be a HyperSpy axis: "
            "it must be a 1-D numeric index"
        )
    if values is None:
        return {**axis, "_type": names.UNIFORM_AXIS, "size": size, "scale": 1.0, "offset": 0.0}
    functional = (
        _functional(attrs, values) if attrs.get("axis_type") == names.FUNCTIONAL_AXIS else None
    )
    if functional is not None:
        return {**axis, **functional, "size": size}
    uniform = _uniform(values, attrs)
    if uniform is not None and attrs.get("axis_type", names.UNIFORM_AXIS) != names.DATA_AXIS:
        scale, offset = uniform
        return {**axis, "_type": names.UNIFORM_AXIS, "size": size, "scale": scale, "offset": offset}
    return {**axis, "_type": names.DATA_AXIS, names.AXIS_VECTOR: values.astype(np.float64)}


def _uniform(values: np.ndarray, attrs: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(scale, offset)`` when ``values`` are evenly spaced (stored ones preferred)."""
    n = values.shape[0]
    index = np.arange(n, dtype=np.float64)
    tol = _UNIFORM_RTOL * max(float(np.ptp(values)) if n else 0.0, 1e-300)
    if "scale" in attrs and "offset" in attrs:
        scale, offset = float(attrs["scale"]), float(attrs["offset"])
        if n == 0 or np.allclose(offset + scale * index, values, rtol=0, atol=tol):
            return scale, offset
    if n == 0:
        return None
    if n == 1:
        return float(attrs.get("scale", 1.0)), float(values[0])
    scale = (float(values[-1]) - float(values[0])) / (n - 1)
    offset = float(values[0])
    if np.allclose(offset + scale * index, values, rtol=0, atol=tol):
        return scale, offset
    return None


def _functional(attrs: Mapping[str, Any], values: np.ndarray) -> dict[str, Any] | None:
    """The functional axis the attrs describe, if it still gives ``values`` (not sliced
    or edited since it was read), else ``None``."""
    try:
        x_axis = dict(attrs["x_axis"])
        if isinstance(x_axis.get(names.AXIS_VECTOR), list):
            x_axis[names.AXIS_VECTOR] = np.asarray(x_axis[names.AXIS_VECTOR])
        axis = {
            "_type": names.FUNCTIONAL_AXIS,
            "expression": attrs["expression"],
            **attrs.get("parameters", {}),
            names.FUNCTIONAL_X: x_axis,
        }
        expected = axis_from_dict(axis, values.shape[0], "coordinate").values
    except (ZspyFormatError, KeyError, TypeError, ValueError):
        return None
    return axis if np.allclose(expected, values, rtol=1e-12, atol=0, equal_nan=True) else None


def _as_dataarray(obj: xr.DataArray | xr.Dataset) -> tuple[xr.DataArray, dict[str, Any]]:
    """The data variable and the attrs of the signal an object describes."""
    if isinstance(obj, xr.DataArray):
        return obj, {}
    if DATA_VAR in obj.data_vars:
        var = obj[DATA_VAR]
    elif len(obj.data_vars) == 1:
        var = obj[next(iter(obj.data_vars))]
    else:
        raise ValueError(
            f"a Dataset to write must hold one data variable (or one named {DATA_VAR!r}); "
            f"this one has {sorted(map(str, obj.data_vars))}"
        )
    return var, dict(obj.attrs)


def dataset_to_signal(
    obj: xr.DataArray | xr.Dataset, *, signal_dims: int | Sequence[str] | None = None
) -> SignalSpec:
    """Describe a DataArray or single-variable Dataset as a HyperSpy signal.

    Parameters
    ----------
    obj
        The data. Attrs written by :func:`~intake_zspy.dataset.signal_to_dataset` are
        honoured, so a Dataset opened from zspy goes back unchanged.
    signal_dims
        Which dims are signal axes when the coordinates carry no ``navigate`` attrs: a
        number of trailing dims or their names (which must be the trailing dims).
        Default: the last dim (none for ragged data).

    Raises
    ------
    TypeError, ValueError
        The object cannot be described as a signal (the message says why).
    """
    var, attrs = _as_dataarray(obj)
    dims = [str(d) for d in var.dims]
    ragged = var.dtype.kind == "O"
    navigate = _navigation_flags(var, dims, signal_dims, ragged)
    axes = [
        coord_to_axis(var.coords[d] if d in var.indexes else None, d, n, nav)
        for d, n, nav in zip(dims, var.shape, navigate, strict=True)
    ]
    metadata = _copy_tree(attrs.get("metadata", {}))
    general = metadata.setdefault("General", {})
    title = _title(general, attrs, var)
    general["title"] = title
    signal_type = attrs.get("signal_type", metadata.get("Signal", {}).get("signal_type", ""))
    metadata.setdefault("Signal", {})["signal_type"] = (
        "" if signal_type is None else str(signal_type)
    )
    extra = _extras(obj, var, attrs, dims)
    if extra:
        metadata[XARRAY_KEY] = extra
    # Objects from zspy keep their attributes as read; fresh ones get HyperSpy's defaults.
    attributes = _copy_tree(attrs.get("attributes", {"_lazy": False, names.LEARNING_RESULTS: {}}))
    if attributes.get("ragged") and not ragged:
        raise TypeError(
            f"attrs say the signal is ragged but the data has dtype {var.dtype}; ragged data "
            "must be an object array of per-position arrays"
        )
    attributes["ragged"] = ragged
    learning = {
        key: attributes.pop(key)
        for key in (names.LEARNING_RESULTS, names.PEAK_LEARNING_RESULTS)
        if isinstance(attributes.get(key), dict)
    }
    return SignalSpec(
        group=str(attrs.get("zspy_signal") or layout.group_name(title)),
        data=var.data,
        dims=dims,
        axes=axes,
        metadata=metadata,
        original_metadata=_copy_tree(attrs.get("original_metadata", {})),
        attributes=attributes,
        learning_results=learning,
        models=dict(attrs.get("models", {})),
        package=str(attrs.get("package", "")),
        package_version=str(attrs.get("package_version", "")),
        stored_chunks=_stored_chunks(var),
    )


def _title(general: Mapping[str, Any], attrs: Mapping[str, Any], var: xr.DataArray) -> str:
    """HyperSpy's title first, then the Dataset's ``title``, ``long_name``, the name.

    An empty title counts as none. xarray names a DataArray after its dask array
    (``array-<hash>``): that is no title either.
    """
    name = var.name if var.name not in (DATA_VAR, getattr(var.data, "name", None)) else None
    for title in (general.get("title"), attrs.get("title"), var.attrs.get("long_name"), name):
        if title is not None and str(title) != "":
            return str(title)
    return ""


def _stored_chunks(var: xr.DataArray) -> tuple[int, ...] | None:
    """The chunks the data had in its store (``encoding["chunks"]``) when they fit it."""
    chunks = var.encoding.get("chunks")
    if (
        isinstance(chunks, tuple | list)
        and len(chunks) == var.ndim
        and all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in chunks)
    ):
        return tuple(chunks)
    return None


def _navigation_flags(
    var: xr.DataArray, dims: list[str], signal_dims: int | Sequence[str] | None, ragged: bool
) -> list[bool]:
    stored = [var.coords[d].attrs.get("navigate") if d in var.indexes else None for d in dims]
    if signal_dims is None and all(flag is not None for flag in stored) and dims:
        return [bool(flag) for flag in stored]
    if ragged:
        if signal_dims:
            raise ValueError("ragged (object) data has navigation dims only; drop signal_dims")
        return [True] * len(dims)
    if signal_dims is None:
        count = 1 if dims else 0
    elif isinstance(signal_dims, int):
        count = signal_dims
    else:
        wanted = [str(d) for d in signal_dims]
        unknown = [d for d in wanted if d not in dims]
        if unknown:
            raise ValueError(f"signal_dims {unknown} are not dims of the data {dims}")
        count = len(wanted)
        if set(dims[len(dims) - count :]) != set(wanted):
            raise ValueError(
                f"signal dims {wanted} must be the last dims of the data {dims} (HyperSpy keeps "
                "signal axes last); transpose first, e.g. da.transpose(..., *signal_dims)"
            )
    if not 0 <= count <= len(dims):
        raise ValueError(f"signal_dims={signal_dims!r} does not fit data with dims {dims}")
    return [i < len(dims) - count for i in range(len(dims))]


def _extras(
    obj: xr.DataArray | xr.Dataset, var: xr.DataArray, attrs: dict[str, Any], dims: list[str]
) -> dict[str, Any]:
    """What has no HyperSpy meaning, kept so that reading gives it back."""
    extra: dict[str, Any] = {}
    other = {k: v for k, v in attrs.items() if k not in _SIGNAL_ATTRS}
    if other:
        extra["attrs"] = other
    if var.attrs:
        extra["data_attrs"] = dict(var.attrs)
    coords = {
        str(name): {
            "dims": list(map(str, c.dims)),
            "values": np.asarray(c.values),
            "attrs": dict(c.attrs),
        }
        for name, c in var.coords.items()
        if name not in dims
    }
    if coords:
        extra["coords"] = coords
    coord_attrs = {
        d: {k: v for k, v in var.coords[d].attrs.items() if k not in _AXIS_ATTRS}
        for d in dims
        if d in var.indexes
    }
    coord_attrs = {d: a for d, a in coord_attrs.items() if a}
    if coord_attrs:
        extra["coord_attrs"] = coord_attrs
    return extra


def _copy_tree(value: Any) -> Any:
    """A copy of nested dicts (leaves shared), so writing never edits the caller's attrs."""
    if isinstance(value, Mapping):
        return {k: _copy_tree(v) for k, v in value.items()}
    return value
