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
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numcodecs
import numpy as np

from intake_zspy.errors import ChunkDecodeError, LimitExceededError, ZspyFormatError
from intake_zspy.format.codecs import Pipeline
from intake_zspy.format.fetch import THREADS, batched, fetch_ahead
from intake_zspy.format.limits import get_limits

if TYPE_CHECKING:
    from intake_zspy.storage import KeyInfo, KeyValueStore

__all__ = [
    "DEFAULT_COMPRESSOR",
    "ArrayEncoder",
    "ArrayMeta",
    "Box",
    "V2Array",
    "fill_boxes",
    "flatten_ragged",
    "parse_dtype",
    "unflatten_ragged",
]


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

    The chunks of all boxes are fetched in concurrent batches (one round trip each on
    remote stores; see :mod:`~intake_zspy.format.fetch`) and decoded by a thread pool
    while the next batch is fetched.
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
    sizes = store.sizes()
    batches = batched(work, lambda item: _fetch_size(item, sizes))
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for batch, raws in fetch_ahead(store.get_many, batches, lambda item: item[4]):
            futures = [
                pool.submit(array.place, out, origin, idx, key, raws[key])
                for array, out, origin, idx, key in batch
            ]
            for future in futures:
                future.result()


# -- writing -------------------------------------------------------------------------

#: HyperSpy's default: Blosc zstd, level 1, byte shuffle.
DEFAULT_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)


def _fill_value_json(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "O":
        return 0
    if dtype.kind == "b":
        return False
    if dtype.kind in "iu":
        return 0
    if dtype.kind == "f":
        return 0.0
    if dtype.kind == "c":
        return [0.0, 0.0]
    return base64.standard_b64encode(np.zeros((), dtype=dtype).tobytes()).decode()


def _dtype_json(dtype: np.dtype[Any]) -> Any:
    if dtype.fields is not None:
        return [list(field) for field in dtype.descr]
    return dtype.str


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
        compressor: Any = DEFAULT_COMPRESSOR,
        object_codec: Any = None,
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
        return {
            "chunks": list(self.chunks),
            "compressor": self.compressor.get_config() if self.compressor else None,
            "dimension_separator": "/",
            "dtype": _dtype_json(self.dtype),
            "fill_value": _fill_value_json(self.dtype),
            "filters": [f.get_config() for f in self.filters] or None,
            "order": "C",
            "shape": list(self.shape),
            "zarr_format": 2,
        }

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


# -- ragged (object) arrays: flattened with their shapes, and back ---------------------


def flatten_ragged(data: np.ndarray, where: str) -> tuple[np.ndarray, Any, np.ndarray | None]:
    """Flatten a ragged object array, choose its object codec and collect element shapes.

    Elements that are numeric arrays use ``vlen-array``; other arrays (strings) and
    lists use ``msgpack2``; plain strings use ``vlen-utf8``. Array elements are stored
    flattened, with their shapes in a ``_ragged_shapes_`` companion.
    """
    items = [x for x in data.ravel() if x is not None]
    if items and all(isinstance(x, str) for x in items):
        return data, numcodecs.VLenUTF8(), None
    arrays = bool(items) and all(isinstance(x, np.ndarray) for x in items)
    numeric = arrays and all(x.dtype.kind in "biuf" for x in items)
    element = np.result_type(*{x.dtype for x in items}) if numeric else None
    flat = np.empty(data.shape, dtype=object)
    shapes = np.empty(data.shape, dtype=object) if arrays else None
    for index in np.ndindex(data.shape):
        x: Any = data[index]
        if arrays:
            x = np.zeros(0, dtype=element) if x is None else np.asarray(x, dtype=element)
            shapes[index] = np.asarray(x.shape, dtype="<i8")  # type: ignore[index]
            x = x.ravel() if numeric else x.ravel().tolist()
        elif isinstance(x, np.ndarray):
            x = x.tolist()
        flat[index] = x
    if numeric:
        assert element is not None
        return flat, numcodecs.VLenArray(element.str), shapes
    codec = numcodecs.MsgPack()
    try:
        codec.encode(flat.ravel())
    except Exception as exc:
        raise TypeError(f"{where}: object array items cannot be stored (msgpack: {exc})") from exc
    return flat, codec, shapes


def unflatten_ragged(flat: np.ndarray, shapes: np.ndarray, where: str = "") -> np.ndarray:
    """Give each element of a ragged object array its stored shape.

    Raises
    ------
    ZspyFormatError
        The shape table does not match the array: another shape, or an element whose
        length is not the product of its stored shape.
    """
    if shapes.shape != flat.shape:
        raise ZspyFormatError(
            f"{where}: ragged shape table of shape {shapes.shape} for data of shape {flat.shape}"
        )
    out = np.empty(flat.shape, dtype=object)
    for index in np.ndindex(flat.shape):
        item = flat[index]
        shape = shapes[index]
        if item is not None and shape is not None:
            if not (isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu"):
                raise ZspyFormatError(f"{where}: ragged shape {shape!r} at {index}")
            dims = tuple(shape.tolist())
            try:
                item = np.asarray(item)
            except ValueError as exc:
                raise ZspyFormatError(f"{where}: element {index}: {exc}") from exc
            if min(dims, default=0) < 0 or item.ndim != 1 or item.size != math.prod(dims):
                raise ZspyFormatError(
                    f"{where}: element {index} holds {item.size} values, its stored shape "
                    f"{dims} needs {math.prod(dims)}"
                )
            item = item.reshape(dims)
        out[index] = item
    return out
