"""The ``.zarray`` document of a zarr format 2 array, in both directions.

Reading, :meth:`ArrayMeta.from_json` checks every field of a ``.zarray`` against zarr
format 2 (no coercion of strings, floats or booleans): the dtype (:func:`parse_dtype`,
string or structured list), the fill value in zarr's JSON conventions (NaN and infinities
as strings, bytes as base64), shape, chunks, order, separator and the codec entries (their
ids and parameters are checked later, by :mod:`~intake_zspy.format.codecs`). Sizes are
checked against :func:`~intake_zspy.format.limits.get_limits`.

Writing, :func:`zarray_document` gives the document intake-zspy writes, the way zarr 2
and HyperSpy write it: C order, ``/`` separator, a zero fill value.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from intake_zspy.errors import LimitExceededError, ZspyFormatError
from intake_zspy.format.limits import get_limits

if TYPE_CHECKING:
    from numcodecs.abc import Codec

__all__ = ["ArrayMeta", "parse_dtype", "zarray_document"]


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


# -- writing -------------------------------------------------------------------------


def _fill_value_json(dtype: np.dtype[Any]) -> Any:
    """The zero of ``dtype`` in zarr's JSON conventions: the fill value intake-zspy writes."""
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
    """``dtype`` as a ``.zarray`` entry: its string, or the field list of a record."""
    if dtype.fields is not None:
        return [list(field) for field in dtype.descr]
    return dtype.str


def zarray_document(
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    chunks: tuple[int, ...],
    compressor: Codec | None,
    filters: Sequence[Codec] = (),
) -> dict[str, Any]:
    """The ``.zarray`` of an array written by intake-zspy (the mirror of
    :meth:`ArrayMeta.from_json`).

    Parameters
    ----------
    shape, dtype, chunks
        The array's shape, numpy dtype and chunk shape.
    compressor
        The compressor, or ``None``.
    filters
        The filters (for object arrays: their object codec).
    """
    return {
        "chunks": list(chunks),
        "compressor": compressor.get_config() if compressor is not None else None,
        "dimension_separator": "/",
        "dtype": _dtype_json(dtype),
        "fill_value": _fill_value_json(dtype),
        "filters": [f.get_config() for f in filters] or None,
        "order": "C",
        "shape": list(shape),
        "zarr_format": 2,
    }
