"""Map decoded zspy signals onto xarray (reading): axes become coordinates, metadata attrs.

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

Whatever a written object held without a HyperSpy meaning comes back from
``metadata._xarray`` (:data:`XARRAY_KEY`). Writing maps back:
:mod:`intake_zspy.dataset_write`. The partition rule of the intake source (navigation
dims, block grid) is here too, in terms of this mapping.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from intake_zspy.format import names
from intake_zspy.format.model import dim_names

if TYPE_CHECKING:
    from intake_zspy.format.axes import Axis
    from intake_zspy.format.model import Signal

__all__ = [
    "DATA_VAR",
    "XARRAY_KEY",
    "axis_to_coord",
    "block_sizes",
    "navigation_dims",
    "partition_index",
    "signal_attrs",
    "signal_to_dataset",
]

DATA_VAR = "data"
#: Where attributes without a HyperSpy meaning are kept, inside ``metadata``.
XARRAY_KEY = "_xarray"


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


# -- navigation and signal dims, partitions ------------------------------------------------
#
# The partition rule of the intake source (:mod:`intake_zspy.source`) in terms of the
# mapping above: navigation dims are those whose coordinate does not say
# ``navigate=False``, and a partition is one block of the dask chunk grid over them.


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
