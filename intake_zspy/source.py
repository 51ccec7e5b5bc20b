"""The intake v1 data source ``zspy``: one signal of a zspy store as an xarray Dataset.

A thin shim over :func:`intake_zspy.open_dataset`; this module adds the intake v1
protocol (``discover``, ``read``, ``to_dask``, partitions) and nothing about the format.

Partition rule
--------------
The partitions of a source are the blocks of its dask chunk grid over the
**navigation** dims; every partition spans the **signal** dims whole.

- The dask chunk grid is the one :meth:`ZspySource.to_dask` returns: the stored chunks
  by default (``chunks=None``); with ``chunks`` given, those chunks (a dict names
  dims; dims it leaves out keep their stored chunks).
- A dim is a navigation dim unless its axis says ``navigate=False`` (HyperSpy stores
  ``navigate`` for every axis, so the signal dims are exactly its signal axes).
- HyperSpy writes chunks that keep signal axes whole, so a partition is usually one
  stored chunk. A store that chunks a signal axis still yields one partition per block
  of the navigation grid; such a partition reads every chunk along the signal dims.
- Partitions are numbered in C order of the navigation block grid;
  :meth:`ZspySource.read_partition` also takes the block index as a tuple.
- A signal without navigation dims has exactly one partition.

Each partition is read on its own, through the lazy (non-dask) array, so memory while
iterating :meth:`ZspySource.read_chunked` stays near the size of one partition.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import xarray as xr
from intake.source.base import DataSource, Schema

from intake_zspy import __version__
from intake_zspy.dataset import DATA_VAR
from intake_zspy.reader import open_dataset

__all__ = [
    "ZspySource",
    "block_sizes",
    "check_chunks",
    "check_mapping",
    "check_no_extra_args",
    "check_urlpath",
    "navigation_dims",
    "partition_index",
]

Chunks = int | str | Mapping[str, Any] | None


def check_urlpath(urlpath: Any) -> str:
    """``urlpath`` as a string; :class:`TypeError` unless a non-empty str or path."""
    if isinstance(urlpath, os.PathLike):
        urlpath = os.fspath(urlpath)
    if not isinstance(urlpath, str) or not urlpath:
        raise TypeError(
            "urlpath must be a non-empty path or fsspec URL string (e.g. 'run.zspy', "
            f"'s3://bucket/run.zspy'), not {urlpath!r}"
        )
    return urlpath


def check_chunks(chunks: Any) -> Chunks:
    """``chunks`` unchanged; :class:`TypeError` unless None, an int, a str or a dict."""
    if chunks is None or isinstance(chunks, str | Mapping):
        return chunks
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        return chunks
    raise TypeError(
        "chunks must be None (stored chunks), an int, 'auto' or a dict of dim -> chunk "
        f"size, not {type(chunks).__name__} {chunks!r}"
    )


def check_mapping(name: str, value: Any) -> dict[str, Any]:
    """A copy of the dict ``value`` (``{}`` for None); :class:`TypeError` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict or None, not {type(value).__name__} {value!r}")
    return dict(value)


_ARGS = ("urlpath", "signal", "chunks", "storage_options", "metadata")


def check_no_extra_args(owner: str, extra: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
    """Raise a :class:`TypeError` naming unknown arguments and the likely intended one.

    Catalog entries pass ``args`` as keywords; a misspelt one should say what to write.
    """
    if not extra:
        return
    unknown = sorted(extra)
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.5)
        if close:
            hints.append(f"did you mean {close[0]!r} for {name!r}?")
    plural = "s" if len(unknown) > 1 else ""
    raise TypeError(
        f"unknown argument{plural} {', '.join(repr(n) for n in unknown)}; {owner} takes "
        f"{', '.join(accepted)}" + (f" ({' '.join(hints)})" if hints else "")
    )


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


def block_sizes(ds: xr.Dataset, chunks: Chunks = None) -> dict[str, tuple[int, ...]]:
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


def _chunk_spec(ds: xr.Dataset, chunks: Chunks) -> Any:
    stored = dict(ds[DATA_VAR].encoding.get("preferred_chunks", {}))
    if chunks is None:
        return stored
    if isinstance(chunks, Mapping):
        return {**stored, **chunks}
    return chunks


def _chunked(ds: xr.Dataset, chunks: Chunks) -> xr.Dataset:
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


def _summary(ds: xr.Dataset) -> dict[str, Any]:
    """Plain-Python (YAML-safe) description of a signal: title, type, axes with units."""
    axes = []
    for dim in ds[DATA_VAR].dims:
        attrs = ds[dim].attrs if dim in ds.coords else {}
        navigate = attrs.get("navigate")
        axes.append(
            {
                "dim": str(dim),
                "name": None if attrs.get("long_name") is None else str(attrs["long_name"]),
                "units": None if attrs.get("units") is None else str(attrs["units"]),
                "navigate": None if navigate is None else bool(navigate),
                "size": int(ds.sizes[dim]),
            }
        )
    return {
        "title": str(ds.attrs.get("title", "")),
        "signal_type": str(ds.attrs.get("signal_type", "")),
        "signal": str(ds.attrs.get("zspy_signal", "")),
        "axes": axes,
    }


class ZspySource(DataSource):
    """One signal of a HyperSpy ``.zspy`` store, as an :class:`xarray.Dataset`.

    Parameters
    ----------
    urlpath
        Required. A local directory or zip file, or an fsspec URL (``s3://bucket/run.zspy``,
        ``zip::s3://...``, ``memory://...``), as for :func:`intake_zspy.open_dataset`.
    signal
        The ``Experiments/<name>`` group to read (a title with ``/`` also works); default
        (``None`` or ``""``): the first in name order.
    chunks
        Dask chunks of :meth:`to_dask`, which also set the partitions (see the module
        docstring): ``None`` for the stored chunks, a dict of dim -> size (other dims
        keep their stored chunks), an int or ``"auto"``.
    storage_options
        Passed to fsspec (credentials, ``endpoint_url``, ...).
    metadata
        Extra metadata; :meth:`discover` adds a summary of the signal to it.

    Raises
    ------
    TypeError
        An argument is missing, unknown (the message suggests the intended one) or has
        the wrong type; checked without touching the store.

    Notes
    -----
    Nothing is read when the source is made; :meth:`discover` reads metadata only.
    The source pickles as its arguments and reopens the store where it is unpickled.
    """

    name = "zspy"
    container = "xarray"
    version = __version__
    partition_access = True
    # set by intake's DictSerialiseMixin.__new__
    _captured_init_args: tuple[Any, ...]
    _captured_init_kwargs: dict[str, Any]

    def __init__(
        self,
        urlpath: str | os.PathLike[str] | None = None,
        signal: str | None = None,
        chunks: Chunks = None,
        storage_options: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        check_no_extra_args(type(self).__name__, kwargs, _ARGS)
        self.urlpath = check_urlpath(urlpath)
        if signal is not None and not isinstance(signal, str):
            raise TypeError(f"signal must be a signal name (str) or None, not {signal!r}")
        self.signal = signal or None
        self.chunks = check_chunks(chunks)
        options = check_mapping("storage_options", storage_options)
        super().__init__(metadata=check_mapping("metadata", metadata))
        self.storage_options = options
        self._ds: xr.Dataset | None = None
        self._blocks: dict[str, tuple[int, ...]] = {}
        self._nav: list[str] = []
        self._npartitions = 0
        self._normalise_captured()

    def _normalise_captured(self) -> None:
        """Captured arguments as ``yaml()``, pickling and ``==`` need them.

        A path object becomes a string (YAML-safe) and the positional arguments a tuple
        (intake's unpickling restores them as a list, which would break equality).
        """
        args: list[Any] = list(self._captured_init_args)
        if args:
            args[0] = self.urlpath
        elif "urlpath" in self._captured_init_kwargs:
            self._captured_init_kwargs["urlpath"] = self.urlpath
        self._captured_init_args = tuple(args)

    # -- metadata ----------------------------------------------------------------------

    def _open(self, **kwargs: Any) -> xr.Dataset:
        return open_dataset(
            self.urlpath,
            signal=self.signal,
            storage_options=self.storage_options or None,
            **kwargs,
        )

    def _lazy(self) -> xr.Dataset:
        self._load_metadata()
        assert self._ds is not None
        return self._ds

    def _get_schema(self) -> Schema:
        # cache=False: reading must not keep the whole array in the source's dataset
        ds = self._open(chunks=None, cache=False)
        try:
            blocks = block_sizes(ds, self.chunks)
        except BaseException:
            ds.close()
            raise
        self._ds = ds
        self._blocks = blocks
        self._nav = navigation_dims(ds)
        grid = self._grid()
        var = ds[DATA_VAR]
        return Schema(
            dtype=var.dtype,
            shape=tuple(int(n) for n in var.shape),
            npartitions=math.prod(grid),
            extra_metadata=_summary(ds),
        )

    @property
    def npartitions(self) -> int:
        """Number of partitions (reads the metadata on first use)."""
        self._load_metadata()
        return self._npartitions

    @npartitions.setter
    def npartitions(self, value: int) -> None:
        self._npartitions = int(value)

    @property
    def dims(self) -> tuple[str, ...]:
        """Dims of the data variable, in array order."""
        return tuple(str(d) for d in self._lazy()[DATA_VAR].dims)

    @property
    def partition_dims(self) -> tuple[str, ...]:
        """The navigation dims, along which partitions split the data."""
        self._load_metadata()
        return tuple(self._nav)

    @property
    def partition_grid(self) -> tuple[int, ...]:
        """Number of partitions along each of :attr:`partition_dims`."""
        self._load_metadata()
        return self._grid()

    def _grid(self) -> tuple[int, ...]:
        return tuple(len(self._blocks[d]) for d in self._nav)

    def discover(self) -> dict[str, Any]:
        """Read the metadata only and describe the data.

        Returns
        -------
        dict
            ``dtype``, ``shape``, ``dims``, ``chunks`` (``{dim: block sizes}`` of
            :meth:`to_dask`), ``npartitions``, ``partition_dims`` and ``metadata``
            (with ``title``, ``signal_type``, ``signal`` and ``axes``: name, units,
            navigate and size of each dim).
        """
        self._load_metadata()
        return {
            "dtype": self.dtype,
            "shape": self.shape,
            "dims": self.dims,
            "chunks": dict(self._blocks),
            "npartitions": self.npartitions,
            "partition_dims": self.partition_dims,
            "metadata": self.metadata,
        }

    # -- reading -----------------------------------------------------------------------

    def read(self) -> xr.Dataset:
        """Load the whole signal into memory.

        Returns
        -------
        xarray.Dataset
            Backed by numpy arrays; independent of the source (closing either leaves
            the other usable).
        """
        return self._lazy().compute()

    def to_dask(self) -> xr.Dataset:
        """The signal as a dask-backed Dataset (lazy; nothing is read yet).

        The store is opened anew, so the Dataset outlives :meth:`close`; its dask blocks
        are the partitions' grid refined along the signal dims by the chunks. It works
        with ``dask.distributed``: the graph pickles the store's URL and options.
        """
        self._load_metadata()
        ds = self._open(chunks=None, cache=False)
        return _chunked(ds, self.chunks)

    def _region(self, block: tuple[int, ...]) -> dict[str, slice]:
        region = {}
        for dim, i in zip(self._nav, block, strict=True):
            sizes = self._blocks[dim]
            start = sum(sizes[:i])
            region[dim] = slice(start, start + sizes[i])
        return region

    def _get_partition(self, i: int | tuple[int, ...]) -> xr.Dataset:
        block = partition_index(i, self.partition_grid)
        return self._lazy().isel(self._region(block)).compute()

    def read_partition(self, i: int | tuple[int, ...]) -> xr.Dataset:
        """Load one partition: one block of the navigation grid, whole signal dims.

        Parameters
        ----------
        i
            Partition number (C order of :attr:`partition_grid`) or block index tuple.

        Returns
        -------
        xarray.Dataset
            In memory, with the coordinates of its slice.

        Raises
        ------
        IndexError
            No such partition.
        TypeError
            ``i`` is neither an int nor a tuple of ints.
        """
        self._load_metadata()
        return self._get_partition(i)

    def read_chunked(self) -> Iterator[xr.Dataset]:
        """Yield the partitions one at a time, in C order of :attr:`partition_grid`.

        Each is read when the generator reaches it. Combining them along the
        navigation dims (e.g. :func:`xarray.combine_nested` over the grid) gives
        :meth:`read`.
        """
        self._load_metadata()
        for block in itertools.product(*(range(n) for n in self.partition_grid)):
            yield self._get_partition(block)

    def _close(self) -> None:
        if self._ds is not None:
            self._ds.close()
        self._ds = None
        self._schema = None
        self._blocks = {}
        self._nav = []
