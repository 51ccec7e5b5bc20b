"""Dump what the reference implementation reads from a ``.zspy`` store, losslessly, as JSON.

This script runs **inside the HyperSpy virtual environment** (see ``env.py``)::

    python tests/hyperspy/dump_reference.py STORE OUT.json [--via rsciio|hyperspy]
    python tests/hyperspy/dump_reference.py --out-dir DIR STORE [STORE ...] [--via ...]

The second form dumps many stores in one process (HyperSpy's import costs
about a second) to ``DIR/<store file name>.<via>.json`` each.

``--via rsciio`` (default)
    Calls ``rsciio.zspy.file_reader(STORE, lazy=False)`` and dumps the list
    of signal dictionaries it returns, unchanged: every key RosettaSciIO puts
    there (``data``, ``axes``, ``metadata``, ``original_metadata``,
    ``attributes`` (which holds ``learning_results``, ``_lazy``, ``ragged``...),
    ``package``, ``package_version``, ``models``).
``--via hyperspy``
    Calls ``hyperspy.api.load(STORE)`` and dumps, for each signal (always a
    list), a dict with ``class`` (signal class name), ``title``, ``ragged``,
    ``data``, ``axes`` (list in array order of
    ``axes_manager.as_dictionary()`` entries, each extended with ``values``,
    the axis vector, ``index_in_array`` and ``key``), ``metadata``
    (``metadata.as_dictionary()`` without the ``General.FileIO`` record that
    ``hs.load`` itself appends, whose timestamp is "now"),
    ``original_metadata``,
    ``learning_results`` (the public attributes of ``s.learning_results``)
    and ``models`` (``s.models._models.as_dictionary()``).

The main environment decodes the result with ``reference.load_reference``.

JSON encoding
-------------
Plain JSON values stand for themselves: ``null`` is None, ``true``/``false``
are bools, strings are str, integers are Python ints of any size (Python's
``json`` writes integers beyond 64 bits exactly), finite floats are written
with ``repr`` precision and read back bit-exact, JSON arrays are lists and
JSON objects with string keys are dicts. Everything else is a one-key object
whose key is a tag:

``{"__ndarray__": {"dtype": D, "shape": [...], "b64": B}}``
    A non-object numpy array. ``D`` is ``dtype.str`` (``"<f4"``, ``">i2"``,
    ``"|b1"``, ``"<U3"``...) for unstructured dtypes and ``dtype.descr``
    as nested JSON lists for structured ones (``[["R", "|u1"], ...]``, a
    field's optional third item is its sub-array shape); either form goes
    back through ``numpy.dtype``. ``B`` is the base64 of the C-order raw
    bytes (``tobytes()``), so byte order, NaN payloads and padding survive.
``{"__objarray__": {"shape": [...], "items": [...]}}``
    An object array; ``items`` are the encoded elements in flat C order.
``{"__npscalar__": {"dtype": D, "value": V}}``
    A numpy scalar (``np.float32(1.5)``, ``np.bool_(True)``, ``np.str_``...).
    ``V`` is the encoded ``item()`` for bool, integer, float, complex, str
    and bytes scalars, and the encoded 0-d ``__ndarray__`` for the others
    (structured ``np.void``, ``datetime64``...).
``{"__tuple__": [...]}``
    A tuple.
``{"__bytes__": B}``
    A bytes object (base64).
``{"__float__": "nan" | "inf" | "-inf"}``
    A non-finite Python float.
``{"__complex__": [re, im]}``
    A Python complex (each part encoded as a float).
``{"__datetime__": ISO}``
    A ``datetime.datetime`` (ISO string contains ``T``), ``datetime.date``
    (``YYYY-MM-DD``) or ``datetime.time`` (``HH:MM:SS[.ffffff]``).
``{"__dict__": [[K, V], ...]}``
    A dict that plain JSON cannot hold: a key is not a str, or the dict's only
    key is one of these tags.
``{"__object__": {"type": T, "state": S}}``
    An object with a ``_to_dictionary()`` method (HyperSpy signals outside
    ``as_dictionary()``, markers, components): ``T`` is
    ``module.QualifiedName``, ``S`` the encoded dictionary.
``{"__repr__": {"type": T, "repr": R}}``
    Any other object, kept only as its type name and ``repr``.

A dask array met anywhere is computed and stored as an ``__ndarray__``.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

TAGS = frozenset(
    {
        "__ndarray__",
        "__objarray__",
        "__npscalar__",
        "__tuple__",
        "__bytes__",
        "__float__",
        "__complex__",
        "__datetime__",
        "__dict__",
        "__object__",
        "__repr__",
    }
)
"""Keys that mark a tagged value in the JSON encoding."""

_ITEM_KINDS = frozenset("biufcUS")
"""Numpy scalar kinds whose ``item()`` is encoded directly."""


def encode_dtype(dtype: np.dtype[Any]) -> str | list[Any]:
    """Encode a numpy dtype as ``dtype.str`` or, if structured, its ``descr``.

    Parameters
    ----------
    dtype : numpy.dtype
        Any dtype.

    Returns
    -------
    str or list
        A value that ``numpy.dtype`` accepts back (after turning the inner
        lists of a ``descr`` into tuples).
    """
    if dtype.fields is None:
        return dtype.str
    return [_descr_item(item) for item in dtype.descr]


def _descr_item(item: tuple[Any, ...]) -> list[Any]:
    """Turn one ``descr`` entry into JSON lists (recursively for sub-structures)."""
    name, typ, *shape = item
    enc_typ = [_descr_item(sub) for sub in typ] if isinstance(typ, list) else typ
    return [name, enc_typ, *(list(s) for s in shape)]


def _qualname(obj: Any) -> str:
    """Return ``module.QualifiedName`` of the type of ``obj``."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode_float(value: float) -> Any:
    """Encode a Python float, tagging NaN and infinities."""
    if math.isnan(value):
        return {"__float__": "nan"}
    if math.isinf(value):
        return {"__float__": "inf" if value > 0 else "-inf"}
    return value


def _encode_array(arr: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Encode a numpy array (object arrays element by element)."""
    if arr.dtype.hasobject:
        if arr.dtype != np.dtype(object):
            raise TypeError(f"cannot encode structured dtype with objects: {arr.dtype}")
        return {
            "__objarray__": {
                "shape": list(arr.shape),
                "items": [encode(item) for item in arr.ravel(order="C")],
            }
        }
    data = np.ascontiguousarray(arr)
    return {
        "__ndarray__": {
            "dtype": encode_dtype(arr.dtype),
            "shape": list(arr.shape),
            "b64": base64.b64encode(data.tobytes()).decode("ascii"),
        }
    }


def encode(obj: Any) -> Any:
    """Encode ``obj`` into JSON-compatible values with the tags of the module doc.

    Parameters
    ----------
    obj : Any
        A nested structure of dicts, lists, tuples, numpy arrays and scalars,
        Python scalars, bytes, dates and arbitrary objects.

    Returns
    -------
    Any
        A structure made of dict, list, str, int, float, bool and None only,
        with no NaN or infinite float.
    """
    # numpy scalars first: np.float64 is a float and np.str_ is a str.
    if isinstance(obj, np.generic):
        dt = obj.dtype
        value = encode(obj.item()) if dt.kind in _ITEM_KINDS else _encode_array(np.asarray(obj))
        return {"__npscalar__": {"dtype": encode_dtype(dt), "value": value}}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _encode_float(float(obj))
    if isinstance(obj, complex):
        return {"__complex__": [_encode_float(obj.real), _encode_float(obj.imag)]}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, np.ndarray):
        return _encode_array(obj)
    if type(obj).__module__.startswith("dask.") and hasattr(obj, "compute"):
        return _encode_array(np.asarray(obj.compute()))
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, dict):
        plain = all(isinstance(k, str) for k in obj) and not (
            len(obj) == 1 and next(iter(obj)) in TAGS
        )
        if plain:
            return {k: encode(v) for k, v in obj.items()}
        return {"__dict__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return {"__datetime__": obj.isoformat()}
    to_dictionary = getattr(obj, "_to_dictionary", None)
    if callable(to_dictionary):
        return {"__object__": {"type": _qualname(obj), "state": encode(to_dictionary())}}
    return {"__repr__": {"type": _qualname(obj), "repr": repr(obj)}}


# ---------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------


def read_via_rsciio(store: Path) -> list[dict[str, Any]]:
    """Return the signal dictionaries of ``rsciio.zspy.file_reader(store)``.

    Parameters
    ----------
    store : pathlib.Path
        A ``.zspy`` directory or zip file.

    Returns
    -------
    list of dict
        RosettaSciIO's own output (``lazy=False``), unchanged.
    """
    if store.suffix == ".hspy":  # the HDF5 twin of zspy
        from rsciio.hspy import file_reader as read_hspy

        return list(read_hspy(str(store), lazy=False))
    from rsciio.zspy import file_reader

    return list(file_reader(str(store), lazy=False))


def _drop_load_record(metadata: dict[str, Any]) -> dict[str, Any]:
    """Remove the ``General.FileIO`` entry that ``hs.load`` itself just added.

    HyperSpy appends ``{"operation": "load", "timestamp": <now>, ...}`` under
    the next free index when it loads a file; it is not file content and
    would make every dump different.
    """
    fileio = metadata.get("General", {}).get("FileIO")
    if isinstance(fileio, dict) and fileio:
        last = max(fileio, key=lambda k: int(k) if k.isdigit() else -1)
        entry = fileio[last]
        if isinstance(entry, dict) and entry.get("operation") == "load":
            del fileio[last]
    return metadata


def _signal_summary(s: Any) -> dict[str, Any]:
    """Return the dump of one loaded HyperSpy signal (see module doc)."""
    am = s.axes_manager
    axes = []
    for axis, (key, axis_dict) in zip(am._axes, am.as_dictionary().items(), strict=True):
        entry = dict(axis_dict)
        entry["key"] = key
        entry["index_in_array"] = axis.index_in_array
        entry["values"] = np.asarray(axis.axis)
        axes.append(entry)
    learning = {k: v for k, v in vars(s.learning_results).items() if not k.startswith("_")}
    return {
        "class": type(s).__name__,
        "title": s.metadata.General.title,
        "ragged": bool(s.ragged),
        "data": np.asarray(s.data),
        "axes": axes,
        "metadata": _drop_load_record(s.metadata.as_dictionary()),
        "original_metadata": s.original_metadata.as_dictionary(),
        "learning_results": learning,
        "models": s.models._models.as_dictionary(),
    }


def read_via_hyperspy(store: Path) -> list[dict[str, Any]]:
    """Return a summary of every signal ``hyperspy.api.load(store)`` gives.

    Parameters
    ----------
    store : pathlib.Path
        A ``.zspy`` directory or zip file.

    Returns
    -------
    list of dict
        One dict per signal, see the module doc for the keys.
    """
    import hyperspy.api as hs

    hs.set_log_level("ERROR")
    loaded = hs.load(str(store))
    signals = loaded if isinstance(loaded, list) else [loaded]
    return [_signal_summary(s) for s in signals]


def dump(store: Path, out: Path, via: str = "rsciio") -> Any:
    """Read ``store`` with the reference implementation and write ``out``.

    Parameters
    ----------
    store : pathlib.Path
        The ``.zspy`` store to read.
    out : pathlib.Path
        The JSON file to write.
    via : {"rsciio", "hyperspy"}
        Which reference reader to use.

    Returns
    -------
    Any
        The encoded (JSON-compatible) structure that was written.
    """
    if via == "rsciio":
        result: Any = read_via_rsciio(store)
    elif via == "hyperspy":
        result = read_via_hyperspy(store)
    else:
        raise ValueError(f"unknown reader {via!r}")
    encoded = encode(result)
    text = json.dumps(encoded, ensure_ascii=False, allow_nan=False, indent=1)
    out.write_text(text + "\n", encoding="utf-8")
    return encoded


def batch_name(store: Path, via: str) -> str:
    """Return the file name used by ``--out-dir`` for ``store``: ``<name>.<via>.json``."""
    return f"{Path(store).name}.{via}.json"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths",
        type=Path,
        nargs="+",
        help="STORE OUT.json, or with --out-dir one or more stores",
    )
    parser.add_argument("--via", choices=("rsciio", "hyperspy"), default="rsciio")
    parser.add_argument("--out-dir", type=Path, help="dump every STORE into this directory")
    args = parser.parse_args(argv)
    if args.out_dir is None:
        if len(args.paths) != 2:
            parser.error("expected STORE OUT.json (or --out-dir DIR STORE [STORE ...])")
        jobs = [(args.paths[0], args.paths[1])]
    else:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(p, args.out_dir / batch_name(p, args.via)) for p in args.paths]
    warnings.filterwarnings("ignore", message=".*Numba is not installed.*")
    warnings.filterwarnings("ignore", message=".*will be removed in the HyperSpy 3.0")
    warnings.filterwarnings("ignore", message="The NestedDirectoryStore is deprecated")
    logging.getLogger("rsciio").setLevel(logging.ERROR)
    for store, out in jobs:
        dump(store, out, args.via)
    return 0


if __name__ == "__main__":
    sys.exit(main())
