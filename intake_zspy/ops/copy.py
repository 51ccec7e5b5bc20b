"""Copy a store to another URL or store type, optionally rechunked and recompressed.

Without new chunks or a new compressor the stored objects are copied as they are (no
decoding, no encoding) in bounded batches through the fetch-ahead pipeline, in the
crash-safe order of :mod:`~intake_zspy.format.layout`, with a fresh ``.zmetadata``.
Otherwise the copy streams through dask: each signal is opened with dask chunks that
read whole target chunks straight from the source (or the source chunks, split
afterwards, when the target chunks are smaller), and :func:`intake_zspy.to_zspy`
encodes and writes each block in the task that computes it. Memory stays around a few
blocks per worker thread.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from intake_zspy.errors import StoreExistsError
from intake_zspy.format import layout

if TYPE_CHECKING:
    from numcodecs.abc import Codec

    from intake_zspy.format.decode import ZspyFile
    from intake_zspy.storage import KeyValueStore, StoreKind, WriteTarget

__all__ = [
    "KEEP",
    "ChunkRule",
    "SignalPlan",
    "copy",
    "plan_signals",
    "source_defaults",
    "split_chunks",
]

#: ``compressor=KEEP``: write with the source's data compressor.
KEEP: Final = "keep"


@dataclass(frozen=True)
class ChunkRule:
    """Target chunks: by dim name, by position, or whole signals up to a size.

    ``by_dim`` and ``by_position`` hold a size per dim (``None``: the whole dim); dims
    not named keep their stored chunks. ``auto_bytes`` applies the default rule of
    :func:`~intake_zspy.format.layout.default_chunks` with that budget.
    """

    by_dim: Mapping[str, int | None] = field(default_factory=dict)
    by_position: tuple[int | None, ...] | None = None
    auto_bytes: int | None = None

    @classmethod
    def of(cls, chunks: ChunkSpec) -> ChunkRule | None:
        """The rule for the ``chunks`` argument of :func:`copy` (``None``: keep)."""
        if chunks is None or isinstance(chunks, ChunkRule):
            return chunks
        if chunks == "auto":
            return cls(auto_bytes=layout.TARGET_CHUNK_BYTES)
        if isinstance(chunks, Mapping):
            return cls(by_dim={str(k): _size(v) for k, v in chunks.items()})
        if isinstance(chunks, Sequence) and not isinstance(chunks, str):
            return cls(by_position=tuple(_size(v) for v in chunks))
        raise TypeError(
            f"chunks={chunks!r}: pass None, 'auto', a dict by dim name or a tuple per dim"
        )

    def check_dims(self, all_dims: set[str]) -> None:
        """Fail on dim names that no signal of the store has.

        Raises
        ------
        ValueError
            A name is unknown.
        """
        unknown = sorted(set(self.by_dim) - all_dims)
        if unknown:
            raise ValueError(
                f"chunks names dims {unknown} that no signal has; dims are {sorted(all_dims)}"
            )

    def resolve(
        self,
        dims: Sequence[str],
        shape: Sequence[int],
        stored: Sequence[int],
        navigate: Sequence[bool],
        itemsize: int,
    ) -> tuple[int, ...]:
        """The chunk shape of one signal's data.

        Parameters
        ----------
        dims, shape, stored, navigate
            Per dim: its name, size, stored chunk size, whether it is a navigation dim.
        itemsize
            Bytes per element.

        Raises
        ------
        ValueError
            Positional chunks do not match the number of dims.
        """
        if self.auto_bytes is not None:
            return layout.default_chunks(shape, itemsize, navigate, self.auto_bytes)
        if self.by_position is not None:
            if len(self.by_position) != len(shape):
                raise ValueError(
                    f"chunks gives {len(self.by_position)} sizes, but a signal has "
                    f"{len(shape)} dims {list(dims)}; name the dims instead"
                )
            wanted = list(self.by_position)
        else:
            wanted = [self.by_dim.get(d, s) for d, s in zip(dims, stored, strict=True)]
        return tuple(
            max(1, n) if w is None else max(1, min(w, max(n, 1)))
            for w, n in zip(wanted, shape, strict=True)
        )


ChunkSpec = (
    ChunkRule | Literal["auto", "hdf5"] | Mapping[str, int | None] | Sequence[int | None] | None
)


def _size(value: Any) -> int | None:
    if value is None or value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"chunk size {value!r}: pass an integer >= 1, or -1/None for the whole dim"
        )
    return value


@dataclass
class SignalPlan:
    """How one signal is read and written by :func:`copy`."""

    name: str
    dims: list[str]
    shape: tuple[int, ...]
    stored: tuple[int, ...]
    target: tuple[int, ...]
    read: tuple[int, ...]
    ragged: bool
    compressor: dict[str, Any] | None

    def describe(self) -> str:
        """``"chunks (a, b) -> (c, d)"``, ``"chunks (a, b) kept"`` or the ragged case."""
        if self.ragged:
            return "ragged, written whole"
        if self.target == self.stored:
            return f"chunks {self.stored} kept"
        return f"chunks {self.stored} -> {self.target}"


def plan_signals(file: ZspyFile, chunks: ChunkSpec = None) -> list[SignalPlan]:
    """The chunks each signal of ``file`` is read with and written with.

    Read chunks are the target chunks where those are at least the stored ones (dask then
    reads each target chunk straight from the source), else the stored chunks (split
    into target chunks afterwards), so every stored chunk is read about once.

    Raises
    ------
    ValueError
        ``chunks`` names dims no signal has, or gives sizes for the wrong number of dims.
    """
    from intake_zspy.format.model import RaggedArray, dim_names

    rule = "hdf5" if chunks == "hdf5" else ChunkRule.of(chunks)
    plans = []
    for name in file.signal_names():
        sig = file.signal(name)
        dims = dim_names(sig.axes)
        meta = sig.data.flat.meta if isinstance(sig.data, RaggedArray) else sig.data.meta
        shape = meta.shape
        stored = tuple(max(1, min(ch, n)) for ch, n in zip(meta.chunks, shape, strict=True))
        target = stored
        navigate = [a.navigate is not False for a in sig.axes]
        if rule == "hdf5" and not meta.is_object:
            target = split_chunks(stored, meta.dtype.itemsize, navigate, layout.TARGET_CHUNK_BYTES)
        elif isinstance(rule, ChunkRule) and not meta.is_object:
            target = rule.resolve(dims, shape, stored, navigate, meta.dtype.itemsize)
        read = tuple(max(t, s) for t, s in zip(target, stored, strict=True))
        plans.append(
            SignalPlan(name, dims, shape, stored, target, read, meta.is_object, meta.compressor)
        )
    if isinstance(rule, ChunkRule):
        rule.check_dims({d for p in plans for d in p.dims})
    return plans


def copy(
    src: Any,
    dst: str | os.PathLike[str],
    *,
    chunks: ChunkSpec = None,
    compressor: Codec | Literal["keep"] | None = KEEP,
    store_type: StoreKind | None = None,
    overwrite: bool = False,
    consolidated: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    target_storage_options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> str:
    """Copy a zspy store, optionally rechunked and recompressed.

    Parameters
    ----------
    src
        The source store (anything :func:`intake_zspy.open_dataset` takes), or a
        HyperSpy ``.hspy`` file: converted to zspy (see :func:`source_defaults`).
    dst
        The target: a path, a ``.zip`` path, ``zip::<url>`` or a URL prefix.
    chunks
        ``None`` keeps the stored chunks; ``"auto"`` whole signals per chunk, navigation
        dims tiled up to about 32 MiB (the writer's default rule); a dict by dim name or
        a tuple per dim (``-1``/``None``: the whole dim; dims not named keep theirs); or
        a :class:`ChunkRule`.
    compressor
        A numcodecs compressor, ``None`` for none, or ``"keep"`` for the source's.
    store_type
        ``"directory"`` or ``"zip"``; default: inferred from ``dst``.
    overwrite
        Replace an existing target, once the new store is complete.
    consolidated
        Write ``.zmetadata``.
    storage_options, target_storage_options
        fsspec options of the source and of the target (default: the source's).
    progress
        Show a progress bar (needs tqdm).

    Returns
    -------
    str
        The URL written.

    Raises
    ------
    StoreExistsError
        The target exists and ``overwrite`` is false.
    ValueError
        ``chunks`` does not fit the store's signals.
    """
    from intake_zspy.format.decode import open_url
    from intake_zspy.storage import open_target

    dst_options = storage_options if target_storage_options is None else target_storage_options
    target = open_target(dst, dst_options, store_type)
    if target.exists() and not overwrite:
        raise StoreExistsError(f"{target.url}: already exists; pass overwrite=True to replace it")
    file = open_url(src, storage_options)
    store = file.store
    try:
        chunks, compressor = source_defaults(file, chunks, compressor)
        plans = plan_signals(file, chunks)
        if chunks is None and compressor == KEEP:
            return _copy_raw(store, file, target, consolidated, progress)
        if compressor == KEEP:
            compressor = source_compressor(plans[0])
        from intake_zspy.writer import write_to  # xarray and dask: only to rechunk

        return write_to(
            _open_tree(file, plans),
            target,
            overwrite=overwrite,
            compressor=compressor,
            consolidated=consolidated,
            progress=progress,
        )
    finally:
        if src is not store and src is not file:  # an opened store or file stays open
            store.close()


def source_defaults(
    file: ZspyFile, chunks: ChunkSpec, compressor: Codec | Literal["keep"] | None
) -> tuple[ChunkSpec, Codec | Literal["keep"] | None]:
    """What "keep" means for ``file``: for a HyperSpy ``.hspy`` (HDF5) source, whose
    chunks and compression zarr cannot take over, ``chunks=None`` becomes ``"hdf5"``
    (each stored chunk split along navigation into chunks of at most about 32 MiB, see
    :func:`split_chunks`: objects sized for cloud reads, each HDF5 chunk decompressed
    once) and ``compressor="keep"`` HyperSpy's zspy default (Blosc zstd)."""
    from intake_zspy.storage import HDF5File

    if not isinstance(file.store, HDF5File):
        return chunks, compressor
    from intake_zspy.format.arrays import DEFAULT_COMPRESSOR

    return ("hdf5" if chunks is None else chunks), (
        DEFAULT_COMPRESSOR if compressor == KEEP else compressor
    )


def split_chunks(
    stored: Sequence[int], itemsize: int, navigate: Sequence[bool], budget: int
) -> tuple[int, ...]:
    """Target chunks that tile each stored chunk exactly, up to ``budget`` bytes.

    The largest navigation chunk is replaced by its largest proper divisor until a chunk
    holds at most ``budget`` bytes (or every navigation chunk is 1): every target chunk
    lies inside one stored chunk, so each stored (HDF5) chunk is read and decompressed
    once, and split without copying across chunks.
    """
    chunks = list(stored)
    nav = [i for i, flag in enumerate(navigate) if flag]
    while nav and math.prod(chunks) * itemsize > budget:
        i = max(nav, key=lambda j: (chunks[j], j))
        if chunks[i] == 1:
            break
        chunks[i] = max(d for d in range(1, chunks[i]) if chunks[i] % d == 0)
    return tuple(chunks)


def source_compressor(plan: SignalPlan) -> Codec | None:
    """The compressor a signal's data is stored with (checked against the allow-list)."""
    from intake_zspy.format.codecs import COMPRESSORS, make_codec

    if not plan.compressor:
        return None
    return make_codec(plan.compressor, f"signal {plan.name!r}", COMPRESSORS)


def _open_tree(file: ZspyFile, plans: list[SignalPlan]) -> Any:
    import xarray as xr

    from intake_zspy.reader import open_dataset

    nodes = {}
    for p in plans:
        with warnings.catch_warnings():  # the read chunks may straddle stored ones
            warnings.filterwarnings("ignore", message=".*separate the stored chunks.*")
            ds = open_dataset(file, signal=p.name, chunks=dict(zip(p.dims, p.read, strict=True)))
        if p.target != p.read:
            ds = ds.chunk(dict(zip(p.dims, p.target, strict=True)))
        nodes[f"/{p.name}"] = ds
    return xr.DataTree.from_dict(nodes)


def _copy_raw(
    store: KeyValueStore, file: ZspyFile, target: WriteTarget, consolidated: bool, progress: bool
) -> str:
    """Copy the stored objects unchanged: signal groups first, root attributes last."""
    from intake_zspy._progress import progress_bar
    from intake_zspy.format.fetch import batched, fetch_ahead
    from intake_zspy.format.hierarchy import consolidated_document

    listing = store.list()
    first = [k for k in layout.first_keys(file.signal_names()) if k in listing]
    middle = [k for k in listing if k not in (*first, *layout.LAST)]
    root_attrs, zmetadata = layout.LAST
    bar = progress_bar(len(listing), "copying", "object", progress)

    def present(values: Mapping[str, bytes | None]) -> dict[str, bytes]:
        return {k: v for k, v in values.items() if v is not None}

    with target.staging(last=layout.LAST) as out:
        out.put_many(present(store.get_many(first)))
        batches = batched(middle, lambda k: listing[k].size or 0)
        for keys, values in fetch_ahead(store.get_many, batches, lambda k: k):
            out.put_many(present(values))
            if bar is not None:
                bar.update(len(keys))
        out.put_many(present(store.get_many([root_attrs])))
        if consolidated:
            out.put_many({zmetadata: consolidated_document(file.hierarchy.docs)})
    if bar is not None:
        bar.close()
    return target.url
