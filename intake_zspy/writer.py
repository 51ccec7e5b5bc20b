"""Write xarray objects as zspy stores that HyperSpy loads unchanged.

Crash safety comes from the order of writes: the root ``.zgroup`` first (it also proves
the target is writable), then every data chunk, then the other metadata documents, and
the root attributes (``file_format``) and ``.zmetadata`` last. An interrupted store
therefore lacks its root attributes, and the reader rejects it with
:class:`~intake_zspy.errors.IncompleteStoreError` instead of returning wrong content.
Existing stores are replaced only once the new one is complete (see :func:`to_zspy`).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import os
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr
from numcodecs.abc import Codec

from intake_zspy._progress import progress_bar
from intake_zspy.dataset_write import dataset_to_signal
from intake_zspy.errors import StoreExistsError
from intake_zspy.format import layout, names
from intake_zspy.format.arrays import DEFAULT_COMPRESSOR, ArrayEncoder
from intake_zspy.format.fetch import THREADS
from intake_zspy.format.hierarchy import ItemEncoder
from intake_zspy.format.model import SignalSpec
from intake_zspy.storage import KeyValueStore, StoreKind, WriteTarget, open_target

__all__ = ["DEFAULT_COMPRESSOR", "to_zspy"]

_PUT_BATCH = 2 * THREADS


def to_zspy(
    obj: xr.DataArray | xr.Dataset | xr.DataTree,
    urlpath: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    store_type: StoreKind | Literal["local"] | None = None,
    overwrite: bool = False,
    compressor: Codec | None = DEFAULT_COMPRESSOR,
    chunks: Mapping[str, int] | Sequence[int] | None = None,
    consolidated: bool = True,
    progress: bool = False,
    signal_dims: int | Sequence[str] | None = None,
) -> str:
    """Write ``obj`` as a zspy store.

    Parameters
    ----------
    obj
        A DataArray, a Dataset with one data variable (``data`` or the only one), or a
        DataTree whose nodes with data each become one ``Experiments/`` signal.
    urlpath
        Where to write: a local path, ``s3://bucket/run.zspy``, ``memory://...``, a path
        or URL ending in ``.zip``, or ``zip::<url>``. Name stores ``.zspy`` (HyperSpy's
        ``hs.load`` recognises them by that extension), zip stores included.
    storage_options
        Passed to fsspec (e.g. s3fs credentials and ``client_kwargs``).
    store_type
        ``"directory"`` (a nested directory, HyperSpy's default; a key prefix on remote
        storage), ``"zip"`` (one file, e.g. ``run.zspy`` with ``store_type="zip"``) or
        ``None`` to infer it from the URL (``.zip`` or ``zip::`` means zip). ``"local"`` is
        accepted for ``"directory"``.
    overwrite
        Replace an existing store. The old store is only removed once the new one is
        complete: locally the new store is written to a temporary sibling and swapped
        in; a zip file is replaced in one rename or one PUT; a remote prefix is written
        to a temporary prefix first, then copied over the old one with its root
        attributes last.
    compressor
        A numcodecs compressor, or ``None`` for none; HyperSpy's default is Blosc zstd
        level 1 with shuffle.
    chunks
        Chunk shape of the data, by dim name or as a tuple. Default: the dask chunks of
        dask data, else the chunks of the store the data was read from (kept in
        ``encoding["chunks"]``), else whole signals per chunk up to about 32 MB.
    consolidated
        Also write ``.zmetadata`` (what RosettaSciIO >= 0.15 writes).
    progress
        Show a progress bar while data chunks are written.
    signal_dims
        Signal dims of objects whose coordinates carry no ``navigate`` attrs (see
        :func:`intake_zspy.dataset_write.dataset_to_signal`).

    Returns
    -------
    str
        The URL written.

    Warns
    -----
    ZspyNameWarning
        A zip store whose name does not end in ``.zspy`` (``hs.load`` would not load it).

    Raises
    ------
    StoreExistsError
        The target exists and ``overwrite`` is false (a ``FileExistsError``); nothing is
        touched.
    TypeError, ValueError
        The object cannot be stored as zspy; raised before anything is written.
    """
    return write_to(
        obj,
        open_target(urlpath, storage_options, store_type),
        overwrite=overwrite,
        compressor=compressor,
        chunks=chunks,
        consolidated=consolidated,
        progress=progress,
        signal_dims=signal_dims,
    )


def write_to(
    obj: xr.DataArray | xr.Dataset | xr.DataTree,
    target: WriteTarget,
    *,
    overwrite: bool = False,
    compressor: Any = DEFAULT_COMPRESSOR,
    chunks: Mapping[str, int] | Sequence[int] | None = None,
    consolidated: bool = True,
    progress: bool = False,
    signal_dims: int | Sequence[str] | None = None,
) -> str:
    """:func:`to_zspy` into an opened :class:`~intake_zspy.storage.WriteTarget`.

    Everything is validated and the metadata encoded before the first byte is written.
    """
    plan = _Plan(_signal_specs(obj, signal_dims), compressor, chunks)
    if target.exists() and not overwrite:
        raise StoreExistsError(f"{target.url}: already exists; pass overwrite=True to replace it")
    with target.staging(last=layout.LAST) as store:
        plan.write(store, progress=progress, consolidated=consolidated)
    return target.url


def _signal_specs(
    obj: xr.DataArray | xr.Dataset | xr.DataTree, signal_dims: int | Sequence[str] | None
) -> list[SignalSpec]:
    if isinstance(obj, xr.DataTree):
        specs = []
        for node in obj.subtree:
            if node.data_vars:
                ds = node.to_dataset(inherit=False)
                if "zspy_signal" not in ds.attrs and node.name:
                    ds.attrs["zspy_signal"] = str(node.name)
                specs.append(dataset_to_signal(ds, signal_dims=signal_dims))
        if not specs:
            raise ValueError("the DataTree has no node with data to write")
    elif isinstance(obj, xr.DataArray | xr.Dataset):
        specs = [dataset_to_signal(obj, signal_dims=signal_dims)]
    else:
        raise TypeError(
            f"cannot write a {type(obj).__name__}; pass a DataArray, Dataset or DataTree"
        )
    groups = [s.group for s in specs]
    if len(set(groups)) != len(groups):
        raise ValueError(f"two signals would share an Experiments/ group name: {groups}")
    return specs


def _check_dtype(dtype: np.dtype[Any], group: str) -> None:
    fields: Mapping[str, Any] = dtype.fields or {}
    kinds = [f[0].base.kind for f in fields.values()] or [dtype.kind]
    if dtype.kind != "O" and not all(kind in "biufc" for kind in kinds):
        raise TypeError(
            f"signal {group!r}: data of dtype {dtype} cannot be stored in zspy (HyperSpy "
            "stores booleans, integers, floats, complex numbers, structured records of "
            "those, and ragged object arrays)"
        )


def _requested_chunks(
    chunks: Mapping[str, int] | Sequence[int], shape: tuple[int, ...], dims: Sequence[str]
) -> tuple[int, ...]:
    if isinstance(chunks, Mapping):
        unknown = set(chunks) - set(dims)
        if unknown:
            raise ValueError(f"chunks names unknown dims {sorted(unknown)}; dims are {list(dims)}")
        values = [chunks.get(d, n) for d, n in zip(dims, shape, strict=True)]
    else:
        values = list(chunks)
        if len(values) != len(shape):
            raise ValueError(f"chunks {tuple(values)} do not match the data's {len(shape)} dims")
    return tuple(
        n if c in (None, -1) else max(1, min(int(c), max(n, 1)))
        for c, n in zip(values, shape, strict=True)
    )


@dataclass
class _DataJob:
    path: str
    data: Any
    encoder: ArrayEncoder


class _Plan:
    """Every item to write, prepared (and validated) before the first byte is written."""

    def __init__(
        self,
        specs: list[SignalSpec],
        compressor: Codec | None,
        chunks: Mapping[str, int] | Sequence[int] | None,
    ) -> None:
        self.meta = ItemEncoder(compressor)
        self.jobs: list[_DataJob] = []
        self.groups = [spec.group for spec in specs]
        layout.encode_root(self.meta)
        for spec in specs:
            self._signal(spec, compressor, chunks)
        layout.encode_models(self.meta, specs)

    def _signal(
        self,
        spec: SignalSpec,
        compressor: Codec | None,
        chunks: Mapping[str, int] | Sequence[int] | None,
    ) -> None:
        dtype = np.dtype(spec.data.dtype)
        _check_dtype(dtype, spec.group)
        data_path = layout.encode_signal(self.meta, spec)
        shape = tuple(int(n) for n in spec.data.shape)
        if dtype.kind == "O":  # ragged: encoded whole, with its element shapes
            self.meta.array(data_path, np.asarray(spec.data))
            return
        if chunks is not None:
            chunk_shape = _requested_chunks(chunks, shape, spec.dims)
        elif _is_dask(spec.data):
            chunk_shape = tuple(max(c) if c else 1 for c in spec.data.chunks)
        elif spec.stored_chunks is not None:
            chunk_shape = spec.stored_chunks
        else:
            navigate = [bool(axis["navigate"]) for axis in spec.axes]
            chunk_shape = layout.default_chunks(shape, dtype.itemsize, navigate)
        encoder = ArrayEncoder(shape, dtype, chunk_shape, compressor)
        self.meta.doc(f"{data_path}/{names.ZARRAY}", encoder.zarray())
        self.jobs.append(_DataJob(data_path, spec.data, encoder))

    def write(self, store: KeyValueStore, *, progress: bool, consolidated: bool) -> None:
        items = dict(self.meta.items)
        if consolidated:
            items[names.ZMETADATA] = self.meta.consolidated()
        # the groups down to each signal first: any later interruption reads as incomplete
        first = layout.first_keys(self.groups)
        try:
            store.put_many({key: items.pop(key) for key in first})
        except OSError as exc:
            raise type(exc)(f"{store.url}: cannot write there: {exc}") from exc
        for job in self.jobs:
            _write_data(store, job, progress)
        last = [(key, items.pop(key)) for key in layout.LAST if key in items]
        store.put_many(items)
        for key, value in last:
            store.put_many({key: value})


def _is_dask(data: Any) -> bool:
    return type(data).__module__.startswith("dask")


def _write_data(store: KeyValueStore, job: _DataJob, progress: bool) -> None:
    if _is_dask(job.data):
        _write_dask(store, job, progress)
        return
    data = np.asarray(job.data)
    indices = list(job.encoder.grid())
    bar = progress_bar(len(indices), f"writing {job.path}", "chunk", progress)

    def encode(index: tuple[int, ...]) -> tuple[str, bytes]:
        return f"{job.path}/{job.encoder.key(index)}", job.encoder.encode_chunk(
            data[job.encoder.region(index)]
        )

    # Encoders never wait for writes: a sliding window of encode tasks, and finished
    # chunks written in batches by one writer thread (concurrently on remote stores).
    pending: dict[str, bytes] = {}
    writing: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=THREADS) as pool, ThreadPoolExecutor(1) as writer:
        todo = iter(indices)
        window = collections.deque(
            pool.submit(encode, i) for i in itertools.islice(todo, 2 * THREADS)
        )
        while window:
            key, value = window.popleft().result()
            pending[key] = value
            following = next(todo, None)
            if following is not None:
                window.append(pool.submit(encode, following))
            if len(pending) >= _PUT_BATCH or not window:
                if writing is not None:
                    writing.result()
                writing = writer.submit(store.put_many, pending)
                if bar is not None:
                    bar.update(len(pending))
                pending = {}
        if writing is not None:
            writing.result()
    if bar is not None:
        bar.close()


def _put_block(
    block: np.ndarray,
    store: KeyValueStore,
    path: str,
    encoder: ArrayEncoder,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """Encode and write one dask block (one chunk); a 1-element placeholder is returned."""
    assert block_info is not None
    index = tuple(block_info[0]["chunk-location"])
    store.put_many({f"{path}/{encoder.key(index)}": encoder.encode_chunk(np.asarray(block))})
    return np.ones((1,) * block.ndim, dtype=bool)


def _write_dask(store: KeyValueStore, job: _DataJob, progress: bool) -> None:
    """Each dask block is one chunk, encoded and written by the task that computes it."""
    import dask

    data = job.data.rechunk(job.encoder.chunks)
    # map_blocks keeps the graph one layer (a delayed per block scales badly)
    # (bound with partial: dask need not walk the store and encoder for every block)
    write = functools.partial(_put_block, store=store, path=job.path, encoder=job.encoder)
    written = data.map_blocks(
        write,
        dtype=bool,
        chunks=tuple((1,) * n for n in data.numblocks),
        name=f"zspy-write-{uuid.uuid4().hex}",
        meta=np.empty((0,) * data.ndim, dtype=bool),
    )
    tasks = [written]
    client = _distributed_client()
    if client is not None:
        # wait for every write before raising, so no late write outlives the cleanup
        from distributed import progress as show_progress
        from distributed import wait

        futures = client.compute(tasks)
        if progress:
            show_progress(futures)
        wait(futures)
        client.gather(futures)
        return
    from dask.diagnostics import ProgressBar

    # a pool of our own: leaving the ``with`` waits for running writes even on error
    bar = ProgressBar() if progress else contextlib.nullcontext()
    with ThreadPoolExecutor(max_workers=THREADS) as pool, bar:
        dask.compute(*tasks, scheduler="threads", pool=pool)


def _distributed_client() -> Any:
    """The active dask.distributed client, if dask would use one."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None
