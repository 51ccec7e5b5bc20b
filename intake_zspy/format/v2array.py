"""Zarr format 2 arrays, decoded with numcodecs.

zarr-python 3 cannot open the object arrays (``vlen-array``, ``msgpack2``) that zspy uses
for ragged data and markers, and its general machinery costs time on the plain ones. This
module reads any v2 array from a :class:`~intake_zspy._store.KeyValueStore`: it parses
``.zarray``, computes chunk keys, fetches the chunks a selection touches in one concurrent
batch and decodes them in a thread pool straight into the output.
"""

from __future__ import annotations

import base64
import itertools
import math
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numcodecs
import numpy as np

from intake_zspy.errors import ChunkDecodeError, UnsupportedCodecError, ZspyFormatError

if TYPE_CHECKING:
    from numcodecs.abc import Codec

    from intake_zspy._store import KeyInfo, KeyValueStore

__all__ = [
    "FETCH_BATCH",
    "FETCH_BYTES",
    "ArrayMeta",
    "V2Array",
    "batched",
    "fill_boxes",
    "parse_dtype",
]

#: Chunks fetched per round trip when reading many of them ...
FETCH_BATCH = 256
#: ... as long as their stored size stays within this budget. Chunks decode straight
#: into the result, so fetched bytes are what a read holds beyond it (two batches).
FETCH_BYTES = 64 * 2**20
_THREADS = max(2, os.cpu_count() or 2)


def _descr(value: Any) -> Any:
    """JSON lists of a structured ``dtype`` entry as the tuples numpy expects."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [(f[0], _descr(f[1]), *([tuple(f[2])] if len(f) > 2 else [])) for f in value]
    return value


def parse_dtype(descr: Any) -> np.dtype[Any]:
    """The numpy dtype of a ``.zarray`` ``dtype`` entry (string or structured list)."""
    dtype: np.dtype[Any] = np.dtype(_descr(descr))
    return dtype


def _float(value: Any) -> float:
    """A JSON float, where zarr writes NaN and infinities as strings."""
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return float(value)


def _decode_fill_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """The fill value as a numpy scalar (zarr v2 JSON conventions)."""
    if value is None or dtype.kind == "O":
        return value
    if dtype.kind == "f":
        return np.array(_float(value), dtype=dtype)[()]
    if dtype.kind == "c":
        if isinstance(value, list):
            return np.array(complex(_float(value[0]), _float(value[1])), dtype=dtype)[()]
        return np.array(complex(value), dtype=dtype)[()]
    if dtype.kind == "U":
        return np.array(value, dtype=dtype)[()]
    if dtype.kind in "VS" or dtype.fields is not None:
        raw = base64.standard_b64decode(value)
        if dtype.kind == "S":
            return np.array(raw, dtype=dtype)[()]
        return np.frombuffer(raw.ljust(dtype.itemsize, b"\0"), dtype=dtype, count=1)[0]
    return np.array(value, dtype=dtype)[()]


@dataclass(frozen=True)
class ArrayMeta:
    """The content of a ``.zarray`` document."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: Any
    order: Literal["C", "F"]
    separator: str
    compressor: dict[str, Any] | None
    filters: tuple[dict[str, Any], ...]

    @classmethod
    def from_json(cls, doc: dict[str, Any], where: str) -> ArrayMeta:
        """Parse a ``.zarray`` document; ``where`` names it in error messages."""
        try:
            if doc.get("zarr_format") != 2:
                raise ValueError(f"zarr_format is {doc.get('zarr_format')!r}, expected 2")
            dtype = parse_dtype(doc["dtype"])
            shape = tuple(int(n) for n in doc["shape"])
            chunks = tuple(int(n) for n in doc["chunks"])
            if len(chunks) != len(shape) or any(c <= 0 for c in chunks):
                raise ValueError(f"chunks {chunks} do not fit shape {shape}")
            return cls(
                shape=shape,
                chunks=chunks,
                dtype=dtype,
                fill_value=_decode_fill_value(doc.get("fill_value"), dtype),
                order="F" if doc.get("order") == "F" else "C",
                separator=doc.get("dimension_separator") or ".",
                compressor=doc.get("compressor"),
                filters=tuple(doc.get("filters") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ZspyFormatError(f"{where}: invalid .zarray: {exc}") from exc

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of chunks along each dimension."""
        return tuple(
            math.ceil(s / c) if c else 0 for s, c in zip(self.shape, self.chunks, strict=True)
        )

    @property
    def is_object(self) -> bool:
        return self.dtype.kind == "O"

    def chunk_key(self, index: Sequence[int]) -> str:
        """The key of a chunk relative to the array (``"0.1"`` or ``"0/1"``)."""
        if not index:
            return "0"
        return self.separator.join(str(i) for i in index)


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

    __slots__ = ("_codecs", "meta", "path", "store")

    def __init__(self, store: KeyValueStore, path: str, meta: ArrayMeta) -> None:
        self.store = store
        self.path = path
        self.meta = meta
        self._codecs: tuple[Codec | None, tuple[Codec, ...]] | None = None

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.store, self.path, self.meta)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.store, self.path, self.meta = state
        self._codecs = None

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

    def codecs(self) -> tuple[Codec | None, tuple[Codec, ...]]:
        """The compressor and the filters, instantiated once."""
        if self._codecs is None:
            self._codecs = (
                self._codec(self.meta.compressor) if self.meta.compressor else None,
                tuple(self._codec(f) for f in self.meta.filters),
            )
        return self._codecs

    def _codec(self, config: dict[str, Any]) -> Codec:
        try:
            return numcodecs.get_codec(dict(config))
        except (ValueError, KeyError, TypeError) as exc:
            raise UnsupportedCodecError(
                f"{self.where} uses codec {config.get('id')!r}, which numcodecs "
                f"{numcodecs.__version__} cannot provide ({exc})"
            ) from exc

    # -- reading ---------------------------------------------------------------------

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
        """
        meta = self.meta
        compressor, filters = self.codecs()
        try:
            plain = not filters and not meta.is_object
            if compressor is not None and compressor.codec_id == "blosc":
                expected = math.prod(meta.chunks) * meta.dtype.itemsize if plain else None
                _check_blosc_length(raw, expected)
            if into is not None and compressor is not None and plain:
                compressor.decode(raw, out=into.reshape(-1).view(np.uint8))
                return into
            buf: Any = compressor.decode(raw) if compressor is not None else raw
            for codec in reversed(filters):
                buf = codec.decode(buf)
            if meta.is_object:
                arr = np.asarray(buf, dtype=object)
                if arr.size != math.prod(meta.chunks):
                    raise ValueError(f"{arr.size} items, expected {math.prod(meta.chunks)}")
                return arr.reshape(meta.chunks, order=meta.order)
            arr = np.frombuffer(buf, dtype=meta.dtype)
            if arr.size != math.prod(meta.chunks):
                raise ValueError(
                    f"{arr.nbytes} bytes decoded, expected "
                    f"{math.prod(meta.chunks) * meta.dtype.itemsize}"
                )
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


def _check_blosc_length(raw: bytes, expected: int | None) -> None:
    """Blosc trusts its header: a truncated buffer would be read past its end.

    The 16-byte header holds, after four 1-byte fields, ``nbytes`` (the decoded size),
    ``blocksize`` and ``cbytes`` (the whole compressed length) as little-endian uint32.
    """
    if len(raw) < 16:
        raise ValueError(f"{len(raw)} bytes, shorter than a blosc header")
    nbytes, _, cbytes = struct.unpack_from("<III", raw, 4)
    if cbytes != len(raw):
        raise ValueError(f"blosc header announces {cbytes} bytes, found {len(raw)}")
    if expected is not None and nbytes != expected:
        raise ValueError(f"{nbytes} bytes decoded, expected {expected}")


Box = tuple["V2Array", np.ndarray, Sequence[int], Sequence[range] | None]


T = TypeVar("T")


def batched(
    items: Iterable[T], size_of: Callable[[T], int], count: int, max_bytes: int
) -> Iterator[list[T]]:
    """Consecutive runs of ``items``: at most ``count`` items and ``max_bytes`` each.

    An item larger than ``max_bytes`` makes a batch of its own.
    """
    batch: list[T] = []
    size = 0
    for item in items:
        nbytes = size_of(item)
        if batch and (len(batch) >= count or size + nbytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += nbytes
    if batch:
        yield batch


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

    The chunks of all boxes are fetched in concurrent batches of ``FETCH_BATCH`` keys
    (one round trip each on remote stores) and decoded by a thread pool.
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
        array.place(out, origin, idx, key, store.get(key))
        return
    # fetch the next batch while this one decodes: transfer and CPU overlap
    sizes = store.sizes()
    batches = list(batched(work, lambda item: _fetch_size(item, sizes), FETCH_BATCH, FETCH_BYTES))
    with ThreadPoolExecutor(max_workers=_THREADS) as pool, ThreadPoolExecutor(1) as fetcher:
        pending = fetcher.submit(store.get_many, [item[4] for item in batches[0]])
        for i, batch in enumerate(batches):
            raws = pending.result()
            if i + 1 < len(batches):
                pending = fetcher.submit(store.get_many, [item[4] for item in batches[i + 1]])
            futures = [
                pool.submit(array.place, out, origin, idx, key, raws[key])
                for array, out, origin, idx, key in batch
            ]
            for future in futures:
                future.result()
