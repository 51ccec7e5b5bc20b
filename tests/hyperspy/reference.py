"""Decode the JSON written by ``dump_reference.py`` and compare nested values exactly.

This module runs in the **main** environment and needs numpy only. The
encoding is described in the docstring of ``dump_reference.py``; in short,
plain JSON values stand for themselves and tagged one-key objects
(``__ndarray__``, ``__objarray__``, ``__npscalar__``, ``__tuple__``,
``__bytes__``, ``__float__``, ``__complex__``, ``__datetime__``,
``__dict__``, ``__object__``, ``__repr__``) stand for the Python and numpy
values JSON cannot hold.

:func:`load_reference` returns tuples as tuples, arrays with their exact
dtype (including byte order and structured fields) and shape, object arrays
as object ndarrays of decoded items, bytes as bytes and non-finite floats as
floats. Objects dumped through ``_to_dictionary()`` come back as
:class:`ObjectState` and objects kept only as a ``repr`` as
:class:`OpaqueObject`.

:func:`assert_equal_nested` compares two such structures exactly and names
the key path of the first difference.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ObjectState",
    "OpaqueObject",
    "assert_equal_nested",
    "decode",
    "decode_dtype",
    "load_reference",
]


@dataclass(frozen=True)
class OpaqueObject:
    """An object the dump could only keep as its type name and ``repr``.

    Attributes
    ----------
    type : str
        ``module.QualifiedName`` of the original object's type.
    repr : str
        ``repr()`` of the original object.
    """

    type: str
    repr: str


@dataclass
class ObjectState:
    """An object the dump stored through its ``_to_dictionary()`` method.

    Attributes
    ----------
    type : str
        ``module.QualifiedName`` of the original object's type.
    state : Any
        The decoded dictionary.
    """

    type: str
    state: Any


def decode_dtype(spec: str | list[Any]) -> np.dtype[Any]:
    """Rebuild a numpy dtype from ``dtype.str`` or a JSON-listed ``descr``.

    Parameters
    ----------
    spec : str or list
        ``"<f4"``-style string, or a ``descr`` whose tuples became lists.

    Returns
    -------
    numpy.dtype
    """
    if isinstance(spec, str):
        return np.dtype(spec)
    return np.dtype([_descr_field(item) for item in spec])


def _descr_field(item: list[Any]) -> tuple[Any, ...]:
    """Turn one JSON ``descr`` entry back into the tuple numpy expects."""
    name, typ, *shape = item
    dec_typ = [_descr_field(sub) for sub in typ] if isinstance(typ, list) else typ
    if isinstance(name, list):  # (title, name) pairs
        name = tuple(name)
    return (name, dec_typ, *(tuple(s) for s in shape))


def _decode_float(value: Any) -> float:
    """Decode a float that may be tagged as non-finite."""
    if isinstance(value, dict):
        return float(value["__float__"])
    return float(value)


def _decode_ndarray(spec: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Decode the payload of an ``__ndarray__`` tag."""
    dtype = decode_dtype(spec["dtype"])
    shape = tuple(spec["shape"])
    raw = base64.b64decode(spec["b64"])
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _decode_objarray(spec: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Decode the payload of an ``__objarray__`` tag."""
    shape = tuple(spec["shape"])
    items = [decode(item) for item in spec["items"]]
    out = np.empty(shape, dtype=object)
    if len(items) != out.size:
        raise ValueError(f"object array of shape {shape} with {len(items)} items")
    for index, item in zip(np.ndindex(*shape), items, strict=True):
        out[index] = item
    return out


def _decode_npscalar(spec: dict[str, Any]) -> Any:
    """Decode the payload of an ``__npscalar__`` tag."""
    dtype = decode_dtype(spec["dtype"])
    value = decode(spec["value"])
    if isinstance(value, np.ndarray):
        return value[()]
    return dtype.type(value)


def _decode_datetime(text: str) -> datetime.datetime | datetime.date | datetime.time:
    """Decode the ISO string of a ``__datetime__`` tag."""
    if "T" in text:
        return datetime.datetime.fromisoformat(text)
    if ":" in text:
        return datetime.time.fromisoformat(text)
    return datetime.date.fromisoformat(text)


def decode(obj: Any) -> Any:
    """Decode one JSON value of the ``dump_reference`` encoding.

    Parameters
    ----------
    obj : Any
        A value as returned by ``json.load``.

    Returns
    -------
    Any
        The Python / numpy value it stands for.
    """
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((tag, payload),) = obj.items()
        if tag == "__ndarray__":
            return _decode_ndarray(payload)
        if tag == "__objarray__":
            return _decode_objarray(payload)
        if tag == "__npscalar__":
            return _decode_npscalar(payload)
        if tag == "__tuple__":
            return tuple(decode(v) for v in payload)
        if tag == "__bytes__":
            return base64.b64decode(payload)
        if tag == "__float__":
            return float(payload)
        if tag == "__complex__":
            return complex(_decode_float(payload[0]), _decode_float(payload[1]))
        if tag == "__datetime__":
            return _decode_datetime(payload)
        if tag == "__dict__":
            return {_hashable(decode(k)): decode(v) for k, v in payload}
        if tag == "__object__":
            return ObjectState(payload["type"], decode(payload["state"]))
        if tag == "__repr__":
            return OpaqueObject(payload["type"], payload["repr"])
    return {k: decode(v) for k, v in obj.items()}


def _hashable(key: Any) -> Any:
    """Make a decoded dict key hashable (lists become tuples)."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


def load_reference(path: str | Path) -> Any:
    """Load and decode a JSON file written by ``dump_reference.py``.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON file.

    Returns
    -------
    Any
        Usually a list of dicts, one per signal.
    """
    with Path(path).open(encoding="utf-8") as fh:
        return decode(json.load(fh))


# ---------------------------------------------------------------------------
# exact comparison
# ---------------------------------------------------------------------------


def _fail(path: str, message: str) -> None:
    """Raise the AssertionError used by :func:`assert_equal_nested`."""
    raise AssertionError(f"at {path or '<root>'}: {message}")


def _same_float(a: float, b: float) -> bool:
    """Compare floats exactly, NaN equal to NaN, -0.0 equal to 0.0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b


def _compare_arrays(
    actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], path: str
) -> None:
    """Compare two ndarrays: dtype, shape, then values (NaN-aware)."""
    if actual.dtype != expected.dtype:
        _fail(path, f"dtype {actual.dtype!r} != {expected.dtype!r}")
    if actual.shape != expected.shape:
        _fail(path, f"shape {actual.shape} != {expected.shape}")
    if expected.dtype.hasobject:
        for index in np.ndindex(*expected.shape):
            assert_equal_nested(actual[index], expected[index], f"{path}{list(index)}")
        return
    if expected.dtype.names is not None:
        for name in expected.dtype.names:
            _compare_arrays(actual[name], expected[name], f"{path}[{name!r}]")
        return
    kind = expected.dtype.kind
    if kind in "fc":
        equal = np.asarray(actual == expected) | (np.isnan(actual) & np.isnan(expected))
    elif kind == "V":
        equal = np.array(actual.tobytes() == expected.tobytes())
    else:
        equal = np.asarray(actual == expected)
    if not bool(np.all(equal)):
        bad = np.argwhere(~equal)
        first = tuple(int(i) for i in bad[0]) if bad.size else ()
        _fail(
            path,
            f"{int((~equal).sum())} element(s) differ, first at {list(first)}: "
            f"{actual[first]!r} != {expected[first]!r}",
        )


def assert_equal_nested(actual: Any, expected: Any, path: str = "") -> None:
    """Assert that two nested structures are exactly equal.

    Dicts must have the same keys (order ignored), lists and tuples the same
    type, length and items, arrays the same dtype, shape and values (NaN
    equals NaN; object arrays are compared element by element, recursively;
    structured arrays field by field). Numpy scalars compare with their
    dtype. Python scalars compare by type family (bool, int, float,
    complex, str, bytes) and value, NaN equal to NaN.

    Parameters
    ----------
    actual, expected : Any
        The structures to compare.
    path : str, optional
        Key path of ``actual`` inside an enclosing structure, used in the
        error message.

    Raises
    ------
    AssertionError
        At the first difference, with its key path, e.g.
        ``at [0]['axes'][2]['scale']: 0.25 != 0.5``.
    """
    if isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray):
        if not (isinstance(expected, np.ndarray) and isinstance(actual, np.ndarray)):
            _fail(path, f"type {type(actual).__name__} != {type(expected).__name__}")
        _compare_arrays(actual, expected, path)
        return
    if isinstance(expected, np.generic) or isinstance(actual, np.generic):
        if not (isinstance(expected, np.generic) and isinstance(actual, np.generic)):
            _fail(path, f"type {type(actual).__name__} != {type(expected).__name__}")
        _compare_arrays(np.asarray(actual), np.asarray(expected), path)
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            _fail(path, f"type {type(actual).__name__} != dict")
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            _fail(path, f"keys differ: missing {missing!r}, unexpected {extra!r}")
        for key in expected:
            assert_equal_nested(actual[key], expected[key], f"{path}[{key!r}]")
        return
    if isinstance(expected, (list, tuple)):
        if type(actual) is not type(expected):
            _fail(path, f"type {type(actual).__name__} != {type(expected).__name__}")
        if len(actual) != len(expected):
            _fail(path, f"length {len(actual)} != {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_equal_nested(a, e, f"{path}[{i}]")
        return
    if isinstance(expected, ObjectState):
        if not isinstance(actual, ObjectState) or actual.type != expected.type:
            _fail(path, f"{actual!r} is not an object of type {expected.type}")
        assert_equal_nested(actual.state, expected.state, f"{path}.state")
        return
    _compare_scalars(actual, expected, path)


def _scalar_family(value: Any) -> str:
    """Return the comparison family of a Python scalar."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, complex):
        return "complex"
    return type(value).__name__


def _compare_scalars(actual: Any, expected: Any, path: str) -> None:
    """Compare two non-container values exactly."""
    fam_a, fam_e = _scalar_family(actual), _scalar_family(expected)
    if fam_a != fam_e:
        _fail(
            path,
            f"type {type(actual).__name__} != {type(expected).__name__}: {actual!r} != {expected!r}",
        )
    if fam_e == "float":
        equal = _same_float(actual, expected)
    elif fam_e == "complex":
        equal = _same_float(actual.real, expected.real) and _same_float(actual.imag, expected.imag)
    else:
        equal = bool(actual == expected)
    if not equal:
        _fail(path, f"{actual!r} != {expected!r}")
