"""Map decoded zspy signals onto xarray: axes become coordinates, metadata becomes attrs.

The mapping (one data variable ``data``; dims in array order):

- dim name: the axis name when it is set and unique within the signal (and neither
  ``"data"`` nor a name holding ``/``, which a DataTree cannot hold), else xarray's
  ``dim_<i>``;
- one index coordinate per dim holding HyperSpy's axis values, with attrs ``units``,
  ``long_name`` (the axis name), ``navigate``, ``is_binned``, ``axis_type`` and, by axis
  type, ``scale``/``offset`` (uniform) or ``expression``/``parameters``/``x_axis``
  (functional);
- Dataset attrs: ``title``, ``signal_type``, ``metadata``, ``original_metadata``,
  ``attributes`` (``ragged``, ``learning_results``, ...), ``models``, ``package``,
  ``package_version`` and ``zspy_signal`` (the ``Experiments/`` group name).

Writing maps back (:func:`dataset_to_signal`). Objects that never came from zspy get
HyperSpy axes from their coordinates: an evenly spaced numeric coordinate becomes a
``UniformDataAxis`` (scale and offset inferred, relative tolerance 1e-9 of the span), any
other numeric coordinate a ``DataAxis``, no coordinate ``scale=1, offset=0``. Signal axes
come from the coordinates' ``navigate`` attrs, else from ``signal_dims`` (default: the last
dim; ragged data has none). Whatever has no HyperSpy meaning (other Dataset and data
variable attrs, coordinates that are not dimension indexes, other coordinate attrs) is
kept in ``metadata._xarray`` and restored on read.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from intake_zspy.errors import ZspyFormatError
from intake_zspy.format import layout, names
from intake_zspy.format.axes import axis_from_dict
from intake_zspy.format.model import SignalSpec

if TYPE_CHECKING:
    from intake_zspy.format.axes import Axis
    from intake_zspy.format.decode import Signal

__all__ = [
    "DATA_VAR",
    "axis_to_coord",
    "coord_to_axis",
    "dataset_to_signal",
    "dim_names",
    "signal_attrs",
    "signal_to_dataset",
]

DATA_VAR = "data"
#: Where attributes without a HyperSpy meaning are kept, inside ``metadata``.
XARRAY_KEY = "_xarray"
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


def dim_names(axes: list[Axis]) -> list[str]:
    """Dimension names for a signal's axes (see the module docstring)."""
    dims = [
        a.name if a.name and a.name != DATA_VAR and "/" not in a.name else f"dim_{i}"
        for i, a in enumerate(axes)
    ]
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
    coords: dict[Hashable, Any] = {
        dim: axis_to_coord(axis, dim) for dim, axis in zip(dims, signal.axes, strict=True)
    }
    attrs = signal_attrs(signal)
    extra = attrs["metadata"].pop(XARRAY_KEY, None) if isinstance(attrs["metadata"], dict) else None
    data_attrs: dict[str, Any] = {}
    if isinstance(extra, dict):
        attrs.update(extra.get("attrs", {}))
        data_attrs = dict(extra.get("data_attrs", {}))
        for name, coord in extra.get("coords", {}).items():
            coords[name] = xr.Variable(coord["dims"], np.asarray(coord["values"]), coord["attrs"])
        for dim, extra_attrs in extra.get("coord_attrs", {}).items():
            if dim in coords:
                coords[dim].attrs.update(extra_attrs)
    return xr.Dataset({DATA_VAR: xr.Variable(dims, data, data_attrs)}, coords=coords, attrs=attrs)


# -- writing: xarray -> HyperSpy signal ----------------------------------------------------


def coord_to_axis(
    coord: xr.DataArray | None, dim: str, size: int, navigate: bool
) -> dict[str, Any]:
    """The HyperSpy axis dictionary of one dimension (the mirror of :func:`axis_to_coord`)."""
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
        The data. Attrs written by :func:`signal_to_dataset` are honoured, so a Dataset
        opened from zspy goes back unchanged.
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


# -- navigation and signal dims, partitions ------------------------------------------------
#
# The partition rule of the intake source (:mod:`intake_zspy.source`) in terms of the
# mapping above: navigation dims are those whose coordinate does not say
# ``navigate=False``, and a partition is one block of the dask chunk grid over them.

__all__ += ["block_sizes", "navigation_dims", "partition_index"]


def navigation_dims(ds: xr.Dataset) -> list[str]:
    """The dims of ``ds`` that partitions split: all but those with ``navigate=False``.

    Parameters
    ----------
    ds
        A Dataset from :func:`intake_zspy.open_dataset`.

    Returns
    -------
    list of str
        Navigation dims, in array order.
    """
    return [
        str(dim)
        for dim in ds[DATA_VAR].dims
        if dim not in ds.coords or ds[dim].attrs.get("navigate") is not False
    ]


def block_sizes(
    ds: xr.Dataset, chunks: int | str | Mapping[str, Any] | None = None
) -> dict[str, tuple[int, ...]]:
    """The dask chunk grid :meth:`ZspySource.to_dask` uses for ``ds``.

    Parameters
    ----------
    ds
        A lazy (not dask-backed) Dataset from :func:`intake_zspy.open_dataset`.
    chunks
        ``None``: the stored chunks. A dict: those dims as given, the others as stored.
        An int or ``"auto"``: as :meth:`xarray.Dataset.chunk`.

    Returns
    -------
    dict
        ``{dim: (block size, ...)}`` for every dim of the data variable.
    """
    return {str(k): tuple(v) for k, v in _chunked(ds, chunks).chunks.items()}


def _chunk_spec(ds: xr.Dataset, chunks: int | str | Mapping[str, Any] | None) -> Any:
    stored = dict(ds[DATA_VAR].encoding.get("preferred_chunks", {}))
    if chunks is None:
        return stored
    if isinstance(chunks, Mapping):
        return {**stored, **chunks}
    return chunks


def _chunked(ds: xr.Dataset, chunks: int | str | Mapping[str, Any] | None) -> xr.Dataset:
    return ds.chunk(_chunk_spec(ds, chunks))


def partition_index(index: int | tuple[int, ...], grid: tuple[int, ...]) -> tuple[int, ...]:
    """Turn a partition number or block index into a block index of ``grid``.

    Parameters
    ----------
    index
        A partition number (C order of ``grid``) or a tuple with one block index per
        navigation dim.
    grid
        Number of blocks along each navigation dim.

    Returns
    -------
    tuple of int

    Raises
    ------
    IndexError
        ``index`` is outside the grid.
    TypeError
        ``index`` is neither an int nor a tuple of ints.
    """
    import math

    total = math.prod(grid)
    if isinstance(index, int | np.integer) and not isinstance(index, bool):
        if not 0 <= index < total:
            raise IndexError(f"partition {index} is out of range: there are {total} partitions")
        return tuple(int(i) for i in np.unravel_index(int(index), grid)) if grid else ()
    if isinstance(index, tuple) and all(
        isinstance(i, int | np.integer) and not isinstance(i, bool) for i in index
    ):
        if len(index) != len(grid) or not all(0 <= i < n for i, n in zip(index, grid, strict=True)):
            raise IndexError(
                f"block index {index} does not fit the partition grid {grid} "
                "(one block index per navigation dim)"
            )
        return tuple(int(i) for i in index)
    raise TypeError(
        f"a partition is an int or a tuple of ints (one per navigation dim), not {index!r}"
    )
