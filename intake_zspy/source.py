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

import itertools
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import xarray as xr
from intake.source.base import DataSource, Schema

from intake_zspy import __version__
from intake_zspy._args import (
    Chunks,
    check_chunks,
    check_mapping,
    check_no_extra_args,
    check_urlpath,
)
from intake_zspy.dataset import (
    DATA_VAR,
    _chunked,
    block_sizes,
    navigation_dims,
    partition_index,
)
from intake_zspy.format.decode import open_url
from intake_zspy.ops.summary import summarize_signal
from intake_zspy.reader import open_dataset

__all__ = ["ZspySource"]

_ARGS = ("urlpath", "signal", "chunks", "storage_options", "metadata")


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
        file = open_url(self.urlpath, self.storage_options or None)
        # cache=False: reading must not keep the whole array in the source's dataset;
        # the dataset owns the store from here on
        ds = open_dataset(file, signal=self.signal, chunks=None, cache=False)
        try:
            blocks = block_sizes(ds, self.chunks)
            summary = summarize_signal(file.hierarchy, str(ds.attrs["zspy_signal"]))
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
            extra_metadata=summary,
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

    def _repr_html_(self) -> str:
        """The notebook view: summary, axes, metadata tree and a thumbnail when cheap."""
        from intake_zspy.archive._repr import source_html

        return source_html(self.urlpath, self.signal, self.storage_options)
