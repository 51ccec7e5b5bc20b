"""Zarr format 2 arrays, decoded with numcodecs.

zarr-python 3 cannot open the object arrays (``vlen-array``, ``msgpack2``) that zspy uses
for ragged data and markers, and its general machinery costs time on the plain ones. This
module reads any v2 array from a :class:`~intake_zspy.storage.KeyValueStore`: it parses
``.zarray``, computes chunk keys, fetches the chunks a selection touches in one concurrent
batch and decodes them in a thread pool straight into the output.
"""

from __future__ import annotations

import base64
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from intake_zspy.errors import ChunkDecodeError, LimitExceededError, ZspyFormatError
from intake_zspy.format.codecs import Pipeline
from intake_zspy.format.limits import get_limits

if TYPE_CHECKING:
    from intake_zspy.storage import KeyInfo, KeyValueStore

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


#: dtype kinds a zspy array may hold (object only with an object codec; datetimes only
#: with a unit: xarray cannot take generic ones).
_KINDS = frozenset("biufcSUVOmM")


def _descr(value: Any) -> Any:
    """JSON lists of a structured ``dtype`` entry as the tuples numpy expects."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise ValueError(f"dtype must be a string or a list of fields, not {value!r}")
    fields = []
    for f in value:
        if not isinstance(f, list) or len(f) not in (2, 3) or not isinstance(f[0], str):
            raise ValueError(f"invalid structured dtype field {f!r}")
        if len(f) == 3 and not (isinstance(f[2], list) and all(_is_count(n) for n in f[2])):
            raise ValueError(f"invalid shape in structured dtype field {f!r}")
        fields.append((f[0], _descr(f[1]), *([tuple(f[2])] if len(f) == 3 else [])))
    return fields


def _kinds(dtype: np.dtype[Any]) -> set[str]:
    if dtype.fields is None:
        base = dtype.subdtype[0] if dtype.subdtype is not None else dtype
        return {base.kind} if base.fields is None else _kinds(base)
    return set().union(*(_kinds(f[0]) for f in dtype.fields.values()))


def parse_dtype(descr: Any) -> np.dtype[Any]:
    """The numpy dtype of a ``.zarray`` ``dtype`` entry (string or structured list).

    Raises
    ------
    ValueError
        Not a dtype zarr format 2 describes, an empty one, or object fields in a record.
    """
    try:
        dtype: np.dtype[Any] = np.dtype(_descr(descr))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"invalid dtype {descr!r}: {exc}") from exc
    kinds = _kinds(dtype)
    if not kinds <= _KINDS or (dtype.kind != "O" and "O" in kinds):
        raise ValueError(f"unsupported dtype {descr!r}")
    if dtype.itemsize == 0:
        raise ValueError(f"dtype {descr!r} has no bytes")
    if kinds & set("mM") and (dtype.kind not in "mM" or np.datetime_data(dtype)[0] == "generic"):
        raise ValueError(f"unsupported dtype {descr!r}: datetimes need a unit, outside records")
    return dtype


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _float(value: Any) -> float:
    """A JSON float, where zarr writes NaN and infinities as strings."""
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _decode_fill_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """The fill value as a numpy scalar (zarr v2 JSON conventions), checked for its dtype."""
    if value is None:
        return None
    kind = dtype.kind
    if kind == "O":
        if not isinstance(value, bool | int | float | str):
            raise ValueError(f"fill_value {value!r} of an object array")
        return value
    if dtype.fields is not None or kind in "VS":
        if not isinstance(value, str):
            raise ValueError(f"fill_value {value!r} of a {dtype} array must be base64 text")
        raw = base64.b64decode(value, validate=True)
        if kind == "S" and len(raw) <= dtype.itemsize:
            return np.array(raw, dtype=dtype)[()]
        if len(raw) != dtype.itemsize:
            raise ValueError(f"fill_value holds {len(raw)} bytes, the dtype {dtype.itemsize}")
        return np.frombuffer(raw, dtype=dtype, count=1)[0]
    if kind == "b":
        if not isinstance(value, bool) and value not in (0, 1):
            raise ValueError(f"fill_value {value!r} of a boolean array")
        return np.bool_(bool(value))
    if kind in "iumM":
        number = _integer(value)
        if kind in "iu" and not np.iinfo(dtype).min <= number <= np.iinfo(dtype).max:
            raise ValueError(f"fill_value {number} does not fit {dtype}")
        if kind in "mM" and not -(2**63) <= number < 2**63:
            raise ValueError(f"fill_value {number} does not fit {dtype}")
        return np.array(number, dtype=dtype if kind in "iu" else np.int64).view(dtype)[()]
    if kind == "f":
        return np.array(_float(value), dtype=dtype)[()]
    if kind == "c":
        if isinstance(value, list) and len(value) == 2:
            return np.array(complex(_float(value[0]), _float(value[1])), dtype=dtype)[()]
        return np.array(complex(_float(value)), dtype=dtype)[()]
    if kind == "U" and isinstance(value, str) and len(value) <= dtype.itemsize // 4:
        return np.array(value, dtype=dtype)[()]
    raise ValueError(f"fill_value {value!r} does not fit dtype {dtype}")


def _counts(value: Any, what: str, minimum: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(_is_count(n) and n >= minimum for n in value):
        raise ValueError(f"{what} must be a list of integers >= {minimum}, not {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class ArrayMeta:
    """The content of a ``.zarray`` document, validated."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: Any
    order: Literal["C", "F"]
    separator: str
    compressor: dict[str, Any] | None
    filters: tuple[dict[str, Any], ...]

    @classmethod
    def from_json(cls, doc: Any, where: str) -> ArrayMeta:
        """Parse a ``.zarray`` document; ``where`` names it in error messages.

        Every field is checked against zarr format 2 (no coercion of strings, floats or
        booleans), and sizes against :func:`~intake_zspy.format.limits.get_limits`.

        Raises
        ------
        ZspyFormatError
            A field is missing, has the wrong type or value.
        LimitExceededError
            The array has too many dimensions, or a chunk is too large to decode.
        """
        try:
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
            version = doc.get("zarr_format")
            if version != 2 or isinstance(version, bool | float):
                raise ValueError(f"zarr_format is {version!r}, expected 2")
            if "dtype" not in doc:
                raise ValueError("no dtype")
            dtype = parse_dtype(doc["dtype"])
            shape = _counts(doc.get("shape"), "shape", 0)
            chunks = _counts(doc.get("chunks"), "chunks", 1)
            if len(chunks) != len(shape):
                raise ValueError(f"chunks {list(chunks)} do not fit shape {list(shape)}")
            order = doc.get("order")
            if order not in ("C", "F"):
                raise ValueError(f"order is {order!r}, expected 'C' or 'F'")
            separator = doc.get("dimension_separator", ".")
            if separator not in (".", "/", None):
                raise ValueError(f"dimension_separator is {separator!r}, expected '.' or '/'")
            compressor = doc.get("compressor")
            if compressor is not None and not isinstance(compressor, dict):
                raise ValueError(f"compressor is {compressor!r}, expected an object or null")
            filters = doc.get("filters") or []
            if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
                raise ValueError(f"filters are {filters!r}, expected a list of objects or null")
            fill_value = _decode_fill_value(doc.get("fill_value"), dtype)
        except (TypeError, ValueError) as exc:
            raise ZspyFormatError(f"{where}: invalid .zarray: {exc}") from exc
        limits = get_limits()
        if len(shape) > limits.max_ndim:
            raise LimitExceededError(
                f"{where}: {len(shape)} dimensions, more than the limit of {limits.max_ndim}"
            )
        if math.prod(shape) * dtype.itemsize >= 2**63:
            raise LimitExceededError(f"{where}: shape {list(shape)} cannot exist in memory")
        chunk_bytes = math.prod(chunks) * dtype.itemsize
        if chunk_bytes > limits.max_chunk_bytes:
            raise LimitExceededError(
                f"{where}: chunks {list(chunks)} of {dtype} hold {chunk_bytes} bytes, more "
                f"than the limit of {limits.max_chunk_bytes} (intake_zspy.set_limits)"
            )
        return cls(
            shape=shape,
            chunks=chunks,
            dtype=dtype,
            fill_value=fill_value,
            order=order,
            separator=separator or ".",
            compressor=compressor,
            filters=tuple(filters),
        )

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

    __slots__ = ("_pipeline", "meta", "path", "store")

    def __init__(self, store: KeyValueStore, path: str, meta: ArrayMeta) -> None:
        self.store = store
        self.path = path
        self.meta = meta
        self._pipeline: Pipeline | None = None

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.store, self.path, self.meta)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.store, self.path, self.meta = state
        self._pipeline = None

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
