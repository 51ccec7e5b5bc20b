"""Zarr format 2 arrays: read lazily, written chunk by chunk.

zarr-python 3 cannot open the object arrays (``vlen-array``, ``msgpack2``) that zspy uses
for ragged data and markers, and its general machinery costs time on the plain ones.
:class:`V2Array` reads any v2 array from a :class:`~intake_zspy.storage.KeyValueStore`
given its parsed ``.zarray`` (:class:`~intake_zspy.format.zarray.ArrayMeta`): it computes
chunk keys, and :func:`fill_boxes` fetches the chunks a selection touches in concurrent
batches and decodes them in a thread pool straight into the output.
:class:`ArrayEncoder` is the mirror: the ``.zarray`` document and the encoded chunks of
an array to write.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numcodecs
import numpy as np
from numcodecs.abc import Codec

from intake_zspy.errors import ChunkDecodeError
from intake_zspy.format.codecs import Pipeline
from intake_zspy.format.fetch import (
    FETCH_BATCH,
    FETCH_BYTES,
    FETCHERS,
    THREADS,
    batched,
    fetch_window,
)
from intake_zspy.format.readahead import ReadAhead, in_distributed_worker, reads_are_round_trips
from intake_zspy.format.zarray import ArrayMeta, zarray_document

if TYPE_CHECKING:
    from intake_zspy.storage import KeyInfo, KeyValueStore

__all__ = [
    "DEFAULT_COMPRESSOR",
    "ArrayEncoder",
    "ArrayMeta",
    "Box",
    "V2Array",
    "fill_boxes",
]


class V2Array:
    """A lazily read zarr v2 array.

    Parameters
    ----------
    store
        Where the array lives.
    path
        The array's key prefix, e.g. ``"Experiments/EELS/data"``.
    meta
        Its parsed ``.zarray``.
    """

    __slots__ = ("_ahead", "_pipeline", "meta", "path", "store")

    def __init__(self, store: KeyValueStore, path: str, meta: ArrayMeta) -> None:
        self.store = store
        self.path = path
        self.meta = meta
        self._pipeline: Pipeline | None = None
        self._ahead: ReadAhead | None = None

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.store, self.path, self.meta)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.store, self.path, self.meta = state
        self._pipeline = None
        self._ahead = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.meta.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.meta.dtype

    @property
    def chunks(self) -> tuple[int, ...]:
        return self.meta.chunks

    @property
    def where(self) -> str:
        return f"{self.store.url}: array {self.path!r}"

    def pipeline(self) -> Pipeline:
        """The validated codecs of the array, instantiated once.

        Raises
        ------
        UnsupportedCodecError
            A codec outside the allow-list, invalid parameters, or codecs that do not
            fit the dtype.
        """
        if self._pipeline is None:
            meta = self.meta
            self._pipeline = Pipeline(
                meta.compressor, meta.filters, meta.dtype, meta.chunks, self.where
            )
        return self._pipeline

    # -- reading ---------------------------------------------------------------------

    def get_chunk(self, idx: tuple[int, ...], key: str) -> bytes | None:
        """The stored bytes of one chunk; on object storage through a
        :class:`~intake_zspy.format.readahead.ReadAhead`, so that reading the chunks one
        by one in order (a dask graph) keeps the following ones in flight; not in a
        ``dask.distributed`` worker, which reads only some of them."""
        if self._ahead is None:
            if not reads_are_round_trips(self.store) or in_distributed_worker():
                return self.store.get(key)
            with _AHEAD_LOCK:
                if self._ahead is None:
                    self._ahead = ReadAhead(self)
        return self._ahead.get(idx, key)

    def read(self, selection: tuple[slice, ...] | None = None) -> np.ndarray:
        """Read a box of the array.

        Parameters
        ----------
        selection
            One ``slice`` per dimension (steps allowed); ``None`` reads everything.
        """
        meta = self.meta
        if selection is None:
            selection = tuple(slice(None) for _ in meta.shape)
        picks = [range(*s.indices(n)) for s, n in zip(selection, meta.shape, strict=True)]
        if not all(picks):
            return self.empty(tuple(len(r) for r in picks))
        origin = [min(r[0], r[-1]) for r in picks]
        out = self.empty(tuple(abs(r[-1] - r[0]) + 1 for r in picks))
        fill_boxes(self.store, [(self, out, origin, picks)])
        if all(r.step == 1 for r in picks):
            return out
        return out[tuple(slice(r[0] - o, None, r.step) for r, o in zip(picks, origin, strict=True))]

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised box: :meth:`place` writes every chunk, or the fill value."""
        return np.empty(shape, dtype=self.meta.dtype)

    def fill(self) -> Any:
        """What a missing chunk reads as."""
        meta = self.meta
        if meta.fill_value is not None:
            return meta.fill_value
        return None if meta.is_object else np.zeros((), dtype=meta.dtype)[()]

    def plan(
        self,
        origin: Sequence[int],
        shape: Sequence[int],
        picks: Sequence[range] | None = None,
    ) -> list[tuple[tuple[int, ...], str]]:
        """The chunks (grid index, store key) that a box of the array touches.

        With ``picks`` (the indices a strided selection keeps, per dimension), chunks
        that hold none of them are skipped.
        """
        ranges: list[Sequence[int]] = [
            range(o // c, (o + n - 1) // c + 1) if n else range(0)
            for o, n, c in zip(origin, shape, self.meta.chunks, strict=True)
        ]
        if picks is not None:
            ranges = [
                sorted({i // c for i in pick}) if abs(pick.step) > c else whole
                for whole, pick, c in zip(ranges, picks, self.meta.chunks, strict=True)
            ]
        return [
            (idx, f"{self.path}/{self.meta.chunk_key(idx)}") for idx in itertools.product(*ranges)
        ]

    def place(
        self,
        out: np.ndarray,
        origin: Sequence[int],
        idx: tuple[int, ...],
        key: str,
        raw: bytes | None,
    ) -> None:
        """Decode one chunk into its overlap with the box ``out`` (at ``origin``).

        A missing chunk (``raw is None``) writes the fill value. A chunk that covers a
        C-contiguous part of ``out`` is decompressed straight into it; others go through
        a scratch buffer reused by the thread.
        """
        meta = self.meta
        src, dst = [], []
        whole = True
        for i, o, n, c, size in zip(idx, origin, out.shape, meta.chunks, meta.shape, strict=True):
            lo, hi = max(i * c, o), min((i + 1) * c, o + n)
            src.append(slice(lo - i * c, hi - i * c))
            dst.append(slice(lo - o, hi - o))
            whole = whole and hi - lo == c and c <= size
        target = out[tuple(dst)] if dst else out  # out[()] would be a scalar, not a view
        if raw is None:
            target[...] = self.fill()
            return
        if whole and target.flags.c_contiguous and meta.order == "C" and not meta.is_object:
            self.decode_chunk(raw, key, into=target)
            return
        target[...] = self.decode_chunk(raw, key, into=_scratch(meta))[tuple(src)]

    def decode_chunk(self, raw: bytes, key: str, into: np.ndarray | None = None) -> np.ndarray:
        """Decode one chunk's bytes into an array of the full chunk shape.

        ``into`` (a C-contiguous array of the chunk's shape and dtype) receives the
        decompressed bytes when the codecs allow it, saving an allocation per chunk.

        Raises
        ------
        ChunkDecodeError
            The bytes do not decode into exactly the declared number of items.
        """
        meta = self.meta
        pipeline = self.pipeline()
        try:
            if meta.is_object:
                items = pipeline.decode(raw)
                return np.asarray(items, dtype=object).reshape(meta.chunks, order=meta.order)
            buf = pipeline.decode(raw, into if meta.order == "C" else None)
            if into is not None and buf is into:
                return into
            arr = np.frombuffer(buf, dtype=meta.dtype)
            expected = math.prod(meta.chunks) * meta.dtype.itemsize
            if arr.nbytes != expected:
                raise ValueError(f"{arr.nbytes} bytes decoded, expected {expected}")
            chunk = arr.reshape(meta.chunks, order=meta.order)
            if into is not None:
                into[...] = chunk
                return into
            return chunk
        except Exception as exc:
            raise ChunkDecodeError(
                f"{self.store.url}: chunk {key!r} of array {self.path!r} is corrupted or "
                f"truncated: {exc}"
            ) from exc


_local = threading.local()
_AHEAD_LOCK = threading.Lock()


def _scratch(meta: ArrayMeta) -> np.ndarray | None:
    """A per-thread buffer of one chunk (page faults of fresh buffers cost more than decoding)."""
    if meta.is_object or meta.order != "C":
        return None
    nbytes = math.prod(meta.chunks) * meta.dtype.itemsize
    buf: np.ndarray | None = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(nbytes, dtype=np.uint8)
        _local.buf = buf
    return buf[:nbytes].view(meta.dtype).reshape(meta.chunks)


Box = tuple[V2Array, np.ndarray, Sequence[int], Sequence[range] | None]


def _fetch_size(item: tuple[Any, ...], sizes: Mapping[str, KeyInfo] | None) -> int:
    """A chunk's stored size if the store was listed, else its decoded size (an upper
    bound for compressed data)."""
    meta: ArrayMeta = item[0].meta
    key: str = item[4]
    info = sizes.get(key) if sizes is not None else None
    if info is not None and info.size is not None:
        return int(info.size)
    itemsize = 64 if meta.is_object else int(meta.dtype.itemsize)
    return math.prod(meta.chunks) * itemsize


def fill_boxes(store: KeyValueStore, boxes: Sequence[Box]) -> None:
    """Fill boxes ``(array, out, origin, picks)`` of (possibly several) arrays of one store.

    The chunks of all boxes are fetched in small concurrent batches, several in flight
    (see :func:`~intake_zspy.format.fetch.fetch_window`), and each chunk is handed to a
    thread pool that decodes it straight into its box as soon as its batch lands. Fetched
    bytes waiting to be decoded stay within
    :data:`~intake_zspy.format.fetch.FETCH_BYTES`, as do those in flight.
    """
    work = [
        (array, out, origin, idx, key)
        for array, out, origin, picks in boxes
        for idx, key in array.plan(origin, out.shape, picks)
    ]
    if not work:
        return
    if len(work) == 1:
        array, out, origin, idx, key = work[0]
        array.place(out, origin, idx, key, array.get_chunk(idx, key))
        return
    sizes = store.sizes()

    def size_of(item: tuple[Any, ...]) -> int:
        return _fetch_size(item, sizes)

    batches = batched(work, size_of, FETCH_BATCH // 4, FETCH_BYTES // (2 * FETCHERS))
    waiting: deque[tuple[Future[None], int]] = deque()
    queued = 0
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for batch, raws in fetch_window(store.get_many, batches, lambda item: item[4], size_of):
            for array, out, origin, idx, key in batch:
                nbytes = size_of((array, out, origin, idx, key))
                future = pool.submit(array.place, out, origin, idx, key, raws[key])
                waiting.append((future, nbytes))
                queued += nbytes
            del raws
            while waiting and (queued > FETCH_BYTES or waiting[0][0].done()):
                done, nbytes = waiting.popleft()
                done.result()
                queued -= nbytes
        for future, _ in waiting:
            future.result()


# -- writing -------------------------------------------------------------------------

#: HyperSpy's default: Blosc zstd, level 1, byte shuffle.
DEFAULT_COMPRESSOR: Codec = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)


class ArrayEncoder:
    """Encodes one array: its ``.zarray`` document and its chunks.

    Parameters
    ----------
    shape, dtype, chunks
        The array's shape, numpy dtype and chunk shape.
    compressor
        A numcodecs codec or ``None``.
    object_codec
        For object arrays: the filter that serialises elements (``VLenArray``,
        ``MsgPack``, ``VLenUTF8``).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        chunks: tuple[int, ...],
        compressor: Codec | None = DEFAULT_COMPRESSOR,
        object_codec: Codec | None = None,
    ) -> None:
        if dtype.kind == "O" and object_codec is None:
            raise TypeError("object arrays need an object codec")
        self.shape = shape
        self.dtype = dtype
        self.chunks = tuple(
            max(1, min(c, s)) if s else max(1, c) for c, s in zip(chunks, shape, strict=True)
        )
        self.compressor = compressor
        self.filters = [object_codec] if object_codec is not None else []

    def zarray(self) -> dict[str, Any]:
        """The array's ``.zarray`` document."""
        return zarray_document(self.shape, self.dtype, self.chunks, self.compressor, self.filters)

    def grid(self) -> Iterator[tuple[int, ...]]:
        """Every chunk index, C order."""
        return itertools.product(
            *(range(math.ceil(s / c)) for s, c in zip(self.shape, self.chunks, strict=True))
        )

    def region(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """The part of the array chunk ``index`` covers."""
        return tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index, self.chunks, self.shape, strict=True)
        )

    @staticmethod
    def key(index: tuple[int, ...]) -> str:
        return "/".join(map(str, index)) if index else "0"

    def encode_chunk(self, block: np.ndarray) -> bytes:
        """Encode the data of one chunk (edge chunks are padded to the full shape)."""
        if block.shape != self.chunks:
            padded = (
                np.zeros(self.chunks, dtype=self.dtype)
                if self.dtype.kind != "O"
                else np.full(self.chunks, 0, dtype=object)
            )
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        buf: Any = np.ascontiguousarray(block, dtype=self.dtype)
        for codec in self.filters:
            buf = codec.encode(buf)
        if self.compressor is not None:
            buf = self.compressor.encode(buf)
        return bytes(buf)
