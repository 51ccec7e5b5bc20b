"""Encode Python objects into zspy's zarr v2 layout: the mirror of :mod:`.dicts`.

Everything here produces *items* (``{key: bytes}``): metadata documents and encoded
chunks. Writing them to a store, in a crash-safe order, is the writer's job.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numcodecs
import numpy as np

from intake_zspy.format import names

__all__ = [
    "DEFAULT_COMPRESSOR",
    "ArrayEncoder",
    "ItemEncoder",
    "dumps",
    "json_safe",
]

#: HyperSpy's default: Blosc zstd, level 1, byte shuffle.
DEFAULT_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)


def json_safe(value: Any, where: str = "") -> Any:
    """Plain JSON types for an attribute value (numpy scalars and arrays converted)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = _bytes_to_str(value, where)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), where)
    if isinstance(value, list | tuple):
        return [json_safe(v, where) for v in value]
    if isinstance(value, Mapping):
        return {_key(k, where): json_safe(v, where) for k, v in value.items()}
    raise TypeError(f"{where}: cannot store a {type(value).__name__} as a JSON attribute")


def dumps(doc: Mapping[str, Any]) -> bytes:
    """Serialise a metadata document the way zarr 2 does (sorted keys, indent 4)."""
    return json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=True, allow_nan=True).encode()


def _key(key: Any, where: str) -> str:
    """A dictionary key as text (any text is a valid attribute name)."""
    if isinstance(key, str):
        return key
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"{where}: dictionary key {key!r} ({type(key).__name__}) is not a string")


_SEPARATORS = re.compile(r"[/\\]+")
_RESERVED = frozenset({"", ".", "..", *names.METADATA_DOCS, names.ZMETADATA})


def node_path(key: str, where: str) -> str:
    """The group or array path a dictionary key becomes, relative to its group.

    As in HyperSpy (through zarr 2), ``/`` and ``\\`` in a key that holds a dictionary or
    an array make nested groups: ``{"Sub/Group": {...}}`` is stored, and read back, as
    ``{"Sub": {"Group": {...}}}``.

    Raises
    ------
    ValueError
        The key names no node zarr can store (empty, ``.``, ``..``, a metadata document
        name such as ``.zattrs``, or a NUL character).
    """
    parts = [p for p in _SEPARATORS.split(key) if p]
    if not parts or "\0" in key or any(p in _RESERVED for p in parts):
        raise ValueError(
            f"{where}: key {key!r} cannot be stored as a group or array name (neither zarr "
            "nor HyperSpy can store it); rename it"
        )
    return "/".join(parts)


def _bytes_to_str(value: bytes, where: str) -> str:
    if b"\x00" in value:
        raise ValueError(f"{where}: bytes containing NUL cannot be stored in zspy")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: bytes that are not UTF-8 cannot be stored in zspy") from exc


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


def _list_attribute(value: list[Any] | tuple[Any, ...], where: str) -> list[Any]:
    """A list under a key holding ``/``: a JSON list attribute, as HyperSpy reads one.

    (A ``_list_`` array or group would be split at the ``/``: HyperSpy reads that back
    as something else.) Tuples come back as lists.
    """
    items = json_safe(list(value), where)
    if not all(v is None or isinstance(v, bool | int | float | str) for v in items):
        raise ValueError(
            f"{where}: a list of lists, dictionaries or arrays under a key holding '/' "
            "cannot be stored so that HyperSpy reads it back; rename the key"
        )
    return items  # type: ignore[no-any-return]


def _is_signal_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and "data" in value and "axes" in value


def _sequence_array(items: list[Any] | tuple[Any, ...]) -> np.ndarray | None:
    """A 1-D array for a homogeneous sequence of numbers or strings, else ``None``."""
    kinds = {type(v) for v in items}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is str:
        return np.array(items, dtype=object)
    if kind in (bool, int, float, complex) or issubclass(kind, np.number | np.bool_):
        array = np.asarray(items)
        return array if array.ndim == 1 and array.dtype.kind in "biufc" else None
    return None


class ItemEncoder:
    """Collects the items (``{key: bytes}``) of groups, arrays and dictionaries.

    Parameters
    ----------
    compressor
        Compressor for every array written through this encoder.
    """

    def __init__(self, compressor: Any = DEFAULT_COMPRESSOR) -> None:
        self.compressor = compressor
        self.items: dict[str, bytes] = {}
        self.docs: dict[str, dict[str, Any]] = {}

    def doc(self, key: str, doc: dict[str, Any]) -> None:
        """A metadata document (``.zgroup``, ``.zattrs``, ``.zarray``)."""
        self.docs[key] = doc
        self.items[key] = dumps(doc)

    def group(self, path: str, attrs: Mapping[str, Any] | None = None) -> None:
        """A group with attributes."""
        prefix = f"{path}/" if path else ""
        self.doc(f"{prefix}{names.ZGROUP}", {"zarr_format": 2})
        if attrs:
            self.doc(f"{prefix}{names.ZATTRS}", json_safe(dict(attrs), path))

    def _parents(self, parent: str, rel: str) -> None:
        """The groups a key holding ``/`` implies below ``parent`` (no attributes)."""
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            path = "/".join(filter(None, [parent, *parts[:i]]))
            if f"{path}/{names.ZGROUP}" not in self.docs:
                self.doc(f"{path}/{names.ZGROUP}", {"zarr_format": 2})

    def array(self, path: str, data: np.ndarray, chunks: tuple[int, ...] | None = None) -> None:
        """A whole in-memory array (metadata arrays, axis vectors, small data)."""
        data = np.asarray(data)
        object_codec = None
        if data.dtype.kind == "U":
            data = np.char.encode(data, "utf-8")
        if data.dtype.kind == "O":
            data, object_codec, shapes = _object_payload(data, path)
            if shapes is not None:
                parent, name = path.rsplit("/", 1) if "/" in path else ("", path)
                shapes_path = (
                    f"{parent}/{names.RAGGED_SHAPES}{name}"
                    if parent
                    else f"{names.RAGGED_SHAPES}{name}"
                )
                self._object_array(shapes_path, shapes, numcodecs.VLenArray("<i8"), chunks)
            self._object_array(path, data, object_codec, chunks)
            return
        encoder = ArrayEncoder(data.shape, data.dtype, chunks or data.shape, self.compressor)
        self._write(path, encoder, data)

    def _object_array(
        self, path: str, data: np.ndarray, codec: Any, chunks: tuple[int, ...] | None
    ) -> None:
        encoder = ArrayEncoder(data.shape, data.dtype, chunks or data.shape, self.compressor, codec)
        self._write(path, encoder, data)

    def _write(self, path: str, encoder: ArrayEncoder, data: np.ndarray) -> None:
        self.doc(f"{path}/{names.ZARRAY}", encoder.zarray())
        for index in encoder.grid():
            self.items[f"{path}/{encoder.key(index)}"] = encoder.encode_chunk(
                data[encoder.region(index)]
            )

    def dictionary(
        self, path: str, d: Mapping[str, Any], attrs: Mapping[str, Any] | None = None
    ) -> None:
        """A dictionary in HyperSpy's encoding (the mirror of ``dicts.Decoder.group``)."""
        group_attrs: dict[str, Any] = dict(attrs or {})
        for raw_key, value in d.items():
            key = _key(raw_key, path)
            where = f"{path}/{key}" if path else key
            node = isinstance(value, Mapping | np.ndarray) or hasattr(value, "__array_function__")
            child = where
            if node:
                rel = node_path(key, where)
                child = f"{path}/{rel}" if path else rel
                if "/" in rel:
                    self._parents(path, rel)
            if (
                isinstance(value, Mapping)
                and key.startswith(names.SIGNAL)
                and _is_signal_dict(value)
            ):
                self.signal(child, value, nested=True)
            elif isinstance(value, Mapping):
                self.dictionary(child, value)
            elif value is None:
                group_attrs[key] = names.NONE
            elif node:
                self.array(child, np.asarray(value))
            elif isinstance(value, list | tuple) and _SEPARATORS.search(key) and value:
                group_attrs[key] = _list_attribute(value, where)
            elif isinstance(value, list | tuple):
                self._sequence(path, key, value, group_attrs)
            elif isinstance(value, bytes):
                group_attrs[key] = _bytes_to_str(value, child)
            elif isinstance(value, np.generic):
                group_attrs[key] = value.item()
            elif isinstance(value, bool | int | float | str):
                group_attrs[key] = value
            else:
                raise TypeError(f"{child}: cannot store a {type(value).__name__} in zspy metadata")
        self.group(path, group_attrs)

    def _sequence(
        self, path: str, key: str, value: list[Any] | tuple[Any, ...], attrs: dict[str, Any]
    ) -> None:
        kind = "list" if isinstance(value, list) else "tuple"
        prefix = f"{path}/" if path else ""
        if key.startswith(names.AXES_MANAGER):
            self.dictionary(f"{prefix}{key}", {str(i): v for i, v in enumerate(value)})
            return
        if not value:
            attrs[f"_{kind}_empty_{key}"] = names.NONE
            return
        array = _sequence_array(value)
        if array is not None:
            self.array(f"{prefix}_{kind}_{key}", array)
            return
        self.dictionary(
            f"{prefix}_{kind}_{len(value)}_{key}", {str(i): v for i, v in enumerate(value)}
        )

    def axis(self, path: str, axis: Mapping[str, Any]) -> None:
        """An axis group: attrs, plus the ``axis`` vector or the functional ``x`` axis."""
        attrs = {k: v for k, v in axis.items() if k not in (names.AXIS_VECTOR, names.FUNCTIONAL_X)}
        attrs = {k: (names.NONE if v is None else v) for k, v in attrs.items()}
        if names.AXIS_VECTOR in axis and axis[names.AXIS_VECTOR] is not None:
            self.array(f"{path}/{names.AXIS_VECTOR}", np.asarray(axis[names.AXIS_VECTOR]))
        if isinstance(axis.get(names.FUNCTIONAL_X), Mapping):
            self.axis(f"{path}/{names.FUNCTIONAL_X}", axis[names.FUNCTIONAL_X])
        self.group(path, attrs)

    def signal(self, path: str, signal: Mapping[str, Any], *, nested: bool = False) -> None:
        """A whole (small, in-memory) signal dictionary, e.g. ``_sig_`` in metadata."""
        data = np.asarray(signal["data"])
        self.array(f"{path}/{names.DATA}", data)
        axes = list(signal.get("axes", []))
        if nested:
            axes_path = f"{path}/{names.LIST}{len(axes)}_axes"
            self.group(axes_path)
            for i, axis in enumerate(axes):
                self.axis(f"{axes_path}/{i}", axis)
        else:
            for i, axis in enumerate(axes):
                self.axis(f"{path}/{names.AXIS_PREFIX}{i}", axis)
        for part in (names.METADATA, names.ORIGINAL_METADATA, names.ATTRIBUTES):
            self.dictionary(f"{path}/{part}", signal.get(part) or {})
        package = {
            names.ATTR_PACKAGE: signal.get("package", ""),
            names.ATTR_PACKAGE_VERSION: signal.get("package_version", ""),
        }
        self.group(path, package)

    def consolidated(self) -> bytes:
        """The ``.zmetadata`` document of everything encoded so far."""
        return dumps({"metadata": self.docs, "zarr_consolidated_format": 1})


def _object_payload(data: np.ndarray, where: str) -> tuple[np.ndarray, Any, np.ndarray | None]:
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
