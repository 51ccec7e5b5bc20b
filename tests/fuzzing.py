"""A seeded mutation fuzzer for the intake-zspy reader.

Small good stores (built here with :mod:`tests.builders`, the shared corpus, or stores
given with ``--source``) are read as ``{key: bytes}``, mutated by small functions chosen
with ``random.Random`` (seeded per mutant, so any mutant can be rebuilt from the campaign
seed and its index), written as a directory or a zip file, and read three ways:

- eager: ``open_dataset(p)``, ``ds["data"].values``, every attribute and coordinate touched
  (and the whole read repeated once more at the end);
- dask: ``open_dataset(p, chunks={})["data"].compute()``;
- tree: ``open_datatree(p).load()``.

Oracles (a broken one is a FAIL):

1. every exception is a :class:`~intake_zspy.errors.ZspyError` (others are recorded with
   their traceback);
2. its message names the store path;
3. ``MemoryError`` and ``RecursionError`` are FAILs whatever else holds (the campaign runs
   under an address-space limit, so absurd allocations fail fast);
4. a read that takes longer than the timeout is a FAIL ("hang"), as is a crash;
5. a semantics-preserving mutation (re-indented JSON, no ``.zmetadata``, flat instead of
   nested chunk keys, zip instead of directory, stale duplicate zip members) reads equal
   to the unmutated store (values, dtype, coords, attrs);
6. a successful eager read gives identical bytes when repeated, and equals the dask read
   (uninitialised memory returned as data differs between reads).

Warnings never fail a mutant (they are counted by category).

Use from pytest::

    report = run_campaign_subprocess(seed=1, mutants=200)
    assert not report.fails, report.format()

or from the command line::

    python -m tests.fuzzing --seed 1 --mutants 400 [--source DIR ...] [--json out.json]
    python -m tests.fuzzing --seed 1 --only 17 --keep /tmp/m17   # rebuild one mutant
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import faulthandler
import io
import json
import math
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC_NAMES = (".zgroup", ".zattrs", ".zarray")
ZMETADATA = ".zmetadata"
#: Address space of the campaign process: absurd allocations raise MemoryError (a FAIL).
AS_LIMIT = 4 * 2**30
#: Seconds one read may take before the campaign process is stopped ("hang").
READ_TIMEOUT = 20.0
READS = ("eager", "dask", "tree", "eager-again")

Items = dict[str, bytes]


# == sources ================================================================================


@dataclass(frozen=True)
class Source:
    """A good store to mutate: its name and every key of it."""

    name: str
    items: Mapping[str, bytes]


def dumps(doc: Any, **kwargs: Any) -> bytes:
    options: dict[str, Any] = {"indent": 4, "sort_keys": True}
    options.update(kwargs)
    return json.dumps(doc, **options).encode()


def is_doc(key: str) -> bool:
    return key.rsplit("/", 1)[-1] in DOC_NAMES


def consolidate(items: Items) -> Items:
    """(Re)write ``.zmetadata`` from the per-node documents."""
    docs = {k: json.loads(v) for k, v in sorted(items.items()) if is_doc(k)}
    items.pop(ZMETADATA, None)
    items[ZMETADATA] = dumps({"metadata": docs, "zarr_consolidated_format": 1})
    return items


def _rechunk(
    items: Items, path: str, data: np.ndarray, chunks: tuple[int, ...], compressor: Any
) -> None:
    """Store ``data`` at ``path`` again with other chunks and compressor."""
    from intake_zspy.format.arrays import ArrayEncoder

    encoder = ArrayEncoder(data.shape, data.dtype, chunks, compressor)
    for key in [k for k in items if k.startswith(f"{path}/")]:
        del items[key]
    items[f"{path}/.zarray"] = dumps(encoder.zarray())
    for index in encoder.grid():
        items[f"{path}/{encoder.key(index)}"] = encoder.encode_chunk(data[encoder.region(index)])


def builtin_sources() -> list[Source]:
    """Small stores covering the layouts the reader handles (deterministic)."""
    from intake_zspy.format.arrays import DEFAULT_COMPRESSOR
    from tests.builders import encode_store, signal_dict, uniform_axis

    rng = np.random.default_rng(20260)
    out: list[Source] = []

    def add(name: str, items: Items) -> None:
        out.append(Source(name, consolidate(items)))

    data = rng.normal(size=(4, 6, 5))
    axes = [
        uniform_axis(4, "y", "nm", scale=0.5, offset=-1.0),
        uniform_axis(6, "x", "nm", scale=0.5),
        uniform_axis(5, "Energy loss", "eV", scale=0.25, offset=280.0, navigate=False),
    ]
    model: dict[str, Any] = {
        "components": [
            {"name": "Gaussian", "parameters": [{"name": "A", "value": 1.5, "free": True}]},
        ],
        "_whitelist": {"spectrum": None},
    }
    items = encode_store(
        {
            "float": signal_dict(
                data,
                axes,
                title="float",
                signal_type="EELS",
                original_metadata={"DM": {"Exposure": 0.5, "Name": "µ-probe", "Empty": []}},
            )
        },
        consolidated=False,
        # encode_store unpacks (owner, model) pairs, whatever its annotation says
        models={"fit": ("/Experiments/float", model)},
    )
    _rechunk(items, "Experiments/float/data", data, (2, 3, 5), DEFAULT_COMPRESSOR)
    add("float64-3d", items)

    data = (np.arange(20, dtype="<i2").reshape(4, 5) - 7) * 300
    items = encode_store({"int": signal_dict(data, title="int")}, consolidated=False)
    _rechunk(items, "Experiments/int/data", data, (2, 5), numcodecs.GZip(level=1))
    add("int16-gzip", items)

    data = np.linspace(-1, 1, 12, dtype=">f4").reshape(3, 4)
    items = encode_store({"be": signal_dict(data, title="be")}, consolidated=False)
    _rechunk(items, "Experiments/be/data", data, (1, 4), None)
    add("big-endian-uncompressed", items)

    record = np.dtype([("values", "<f8"), ("std", "<f4"), ("is_set", "?")])
    data = np.zeros((3, 4), dtype=record)
    fields: Any = data  # structured field assignment, which numpy's stubs do not type
    fields["values"] = np.arange(12).reshape(3, 4) / 4
    fields["std"] = 0.5
    fields["is_set"] = np.arange(12).reshape(3, 4) % 2 == 0
    add("structured", encode_store({"rec": signal_dict(data, title="rec")}, consolidated=False))

    ragged = np.empty((2, 3), dtype=object)
    for i, j in np.ndindex(2, 3):
        ragged[i, j] = np.arange(2 * (i + j + 1), dtype="<f8").reshape(i + j + 1, 2) - i
    add(
        "ragged",
        encode_store(
            {
                "ragged": signal_dict(
                    ragged,
                    [uniform_axis(2, "y"), uniform_axis(3, "x")],
                    title="ragged",
                    attributes={"ragged": True},
                )
            },
            consolidated=False,
        ),
    )

    offsets = np.empty(4, dtype=object)
    texts = np.empty(4, dtype=object)
    for i in range(4):
        offsets[i] = np.arange(2 * (i + 1), dtype="<f8").reshape(i + 1, 2)
        texts[i] = np.array([f"t{i}{j}" for j in range(i + 1)])
    metadata = {
        "Markers": {"pts": {"kwargs": {"offsets": offsets, "texts": texts}, "name": "pts"}},
        "Acquisition_instrument": {"TEM": {"beam_energy": 200.0, "magnification": 50000}},
    }
    original = {
        "mixed": [1, "a", None, [1, 2], {"k": "v"}],
        "numbers": (1.0, 2.5, -3.0),
        "words": ["alpha", "beta"],
        "empty": [],
        "none": None,
        "flag": True,
        "big": 2**70,
        "nan": float("nan"),
    }
    data = np.arange(20, dtype="<f4").reshape(4, 5)
    add(
        "markers-metadata",
        encode_store(
            {"m": signal_dict(data, title="m", metadata=metadata, original_metadata=original)},
            consolidated=False,
        ),
    )

    functional = {
        "_type": "FunctionalDataAxis",
        "name": "E",
        "units": "eV",
        "navigate": False,
        "is_binned": False,
        "size": 6,
        "expression": "a * x**2 + b",
        "a": 0.5,
        "b": 1.0,
        "x": {"_type": "UniformDataAxis", "size": 6, "scale": 1.0, "offset": 1.0},
    }
    data = np.arange(18, dtype="<f8").reshape(3, 6)
    items = encode_store(
        {"f": signal_dict(data, [uniform_axis(3, "t", "s"), functional], title="f")},
        consolidated=False,
    )
    _rechunk(items, "Experiments/f/data", data, (1, 6), numcodecs.Zstd(level=1))
    add("functional-axis-zstd", items)

    vector = {
        "_type": "DataAxis",
        "name": "x",
        "units": "nm",
        "navigate": True,
        "is_binned": False,
        "axis": np.array([0.0, 0.5, 1.5, 3.0, 5.0]),
    }
    data = np.arange(20, dtype="<u2").reshape(5, 4)
    items = encode_store(
        {"v": signal_dict(data, [vector, uniform_axis(4, navigate=False)], title="v")},
        consolidated=False,
    )
    _rechunk(items, "Experiments/v/data", data, (2, 4), numcodecs.LZ4())
    add("data-axis-lz4", items)

    add(
        "two-signals",
        encode_store(
            {
                "first": signal_dict(np.eye(3) * 2.5, title="first"),
                "second": signal_dict(np.arange(4, dtype="<i4"), title="second"),
            },
            consolidated=False,
        ),
    )
    return out


def load_store(path: Path) -> Items:
    """Every key of a directory or zip store (zip: the last member with a name wins)."""
    items: Items = {}
    if path.is_dir():
        for parent, _, files in os.walk(path):
            for name in files:
                full = Path(parent) / name
                if not full.is_symlink():
                    items[full.relative_to(path).as_posix()] = full.read_bytes()
        return items
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                items[info.filename] = zf.read(info)
    return items


def collect_sources(
    extra: Sequence[Source | str | os.PathLike[str]] = (),
    *,
    builtin: bool = True,
    corpus: bool = True,
) -> list[Source]:
    """The sources of a campaign, in a fixed order: built-in stores, the corpus, then
    ``extra`` (stores given as paths are read; :class:`Source` objects are used as is)."""
    out = builtin_sources() if builtin else []
    given: list[Source | Path] = [s if isinstance(s, Source) else Path(s) for s in extra]
    if corpus:
        from tests.conftest import corpus_files

        given = [*corpus_files(), *given]
    names = {s.name for s in out}
    for item in given:
        name = item.name
        while name in names:
            name = f"{name}+"
        names.add(name)
        out.append(Source(name, item.items if isinstance(item, Source) else load_store(item)))
    return out


# == mutations ==============================================================================


@dataclass
class Mutant:
    """One mutated store, and how it was made."""

    index: int
    source: str
    items: Items
    container: str
    preserving: bool = False
    kinds: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    #: zip members written before the store's own (stale duplicates: the last one wins)
    zip_before: list[tuple[str, bytes]] = field(default_factory=list)
    #: zip members written after the store's own
    zip_after: list[tuple[str, bytes]] = field(default_factory=list)
    #: applied to the bytes of the written zip file
    zip_edit: Callable[[bytes], bytes] | None = None

    def describe(self) -> str:
        return "; ".join(f"{k}: {d}" for k, d in zip(self.kinds, self.descriptions, strict=True))


Mutation = Callable[[random.Random, Mutant], "str | None"]

# fmt: off
_STRINGS = [
    "", "_None_", "abc", "µm", "../x", "a/b", ".zattrs", "NaN", "-Infinity", "1e400", "0", "True",
    "x" * 300, "\x00", "\ud800", "<f8", "__import__('os')",
]
# fmt: on
# fmt: off
_NUMBERS: list[Any] = [
    0, -1, 1, 3, 2**31, 2**63, 2**64 + 5, -(2**63), 10**30, 0.5, -0.0, 1e308, float("nan"),
    float("inf"), -float("inf"),
]
# fmt: on


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["str", "num", "num", "bool", "null", "list", "dict"])
    if depth >= 3 and kind in ("list", "dict"):
        kind = "num"
    if kind == "str":
        return rng.choice(_STRINGS)
    if kind == "num":
        return rng.choice(_NUMBERS)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["a", "id", "x", "", "_None_"]): random_value(rng, depth + 1)}


def _type_name(value: Any) -> str:
    return "number" if type(value) in (int, float) else type(value).__name__


def other_type_value(rng: random.Random, old: Any) -> Any:
    for _ in range(20):
        value = random_value(rng)
        if _type_name(value) != _type_name(old):
            return value
    return None if old is not None else "abc"


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (tuple of keys and indices) to a value inside ``doc``."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) or len(value) < 40 else repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


# -- documents: where they live and how they are written back -------------------------------


def _mode(rng: random.Random, items: Items, key: str) -> str:
    """Edit the per-node document, its copy in .zmetadata, or both."""
    if key == ZMETADATA or ZMETADATA not in items:
        return "node"
    return rng.choice(["both", "both", "node", "zmetadata"])


def _zmetadata(items: Items) -> dict[str, Any] | None:
    try:
        doc = json.loads(items[ZMETADATA])
    except (KeyError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) else None


def _doc(items: Items, key: str, mode: str) -> Any:
    if mode == "zmetadata":
        zmeta = _zmetadata(items)
        return None if zmeta is None else zmeta["metadata"].get(key)
    try:
        return json.loads(items[key])
    except (KeyError, ValueError, RecursionError):
        return None


def _put_doc(items: Items, key: str, doc: Any, mode: str, raw: bytes | None = None) -> None:
    """Write ``doc`` (or the already serialised ``raw``) where ``mode`` says."""
    text = raw if raw is not None else dumps(doc)
    if mode in ("node", "both"):
        items[key] = text
    if mode in ("zmetadata", "both"):
        zmeta = _zmetadata(items)
        if zmeta is None:
            return
        zmeta["metadata"][key] = "__PLACEHOLDER__"
        items[ZMETADATA] = dumps(zmeta).replace(b'"__PLACEHOLDER__"', text)


def _edit_doc(
    rng: random.Random,
    m: Mutant,
    pick: Callable[[str], bool],
    edit: Callable[[random.Random, Any], str | None],
) -> str | None:
    keys = sorted(k for k in m.items if (is_doc(k) or k == ZMETADATA) and pick(k))
    if not keys:
        return None
    key = rng.choice(keys)
    mode = _mode(rng, m.items, key)
    doc = _doc(m.items, key, mode)
    if doc is None:
        return None
    before = json.dumps(doc, sort_keys=True)
    what = edit(rng, doc)
    if what is None or json.dumps(doc, sort_keys=True) == before:
        return None  # not applicable, or no change
    _put_doc(m.items, key, doc, mode)
    return f"{key} [{mode}] {what}"


def _any_doc(key: str) -> bool:
    return True


def _zarray(key: str) -> bool:
    return key.endswith(".zarray")


def _zattrs(key: str) -> bool:
    return key.endswith(".zattrs")


def _axis_attrs(key: str) -> bool:
    parts = key.split("/")
    return key.endswith(".zattrs") and len(parts) >= 2 and parts[-2].startswith("axis-")


# -- breaking mutations on documents ---------------------------------------------------------


def m_value_type(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        paths = list(_paths(doc))
        if not paths:
            return None
        path = rng.choice(paths)
        old = _get(doc, path)
        new = other_type_value(rng, old)
        _set(doc, path, new)
        return f"{'/'.join(map(str, path))}: {_short(old)} -> {_short(new)}"

    return _edit_doc(rng, m, _any_doc, edit)


def m_delete_key(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        paths = [p for p in _paths(doc) if isinstance(_get(doc, p[:-1]), dict)]
        if not paths:
            return None
        path = rng.choice(paths)
        del _get(doc, path[:-1])[path[-1]]
        return f"deleted {'/'.join(map(str, path))}"

    return _edit_doc(rng, m, _any_doc, edit)


# fmt: off
_SIZES: list[Any] = [
    0, -1, -(2**40), 1, 2**31, 2**40, 10**15, 2**63 - 1, 2**64, 2.0, 2.5, float("nan"), "4", None,
    True, [2],
]
# fmt: on


def m_shape_chunks(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        name = rng.choice(["shape", "chunks"])
        old = doc.get(name)
        if not isinstance(old, list):
            return None
        new = list(old)
        how = rng.choice(["entry", "entry", "longer", "shorter", "empty", "whole"])
        if how == "entry" and new:
            new[rng.randrange(len(new))] = rng.choice(_SIZES)
        elif how == "longer":
            new.append(rng.choice([1, 2, 2**40]))
        elif how == "shorter" and new:
            new.pop()
        elif how == "empty":
            new = []
        else:
            doc[name] = rng.choice(["4,5", 20, None, {"0": 4}])
            return f"{name}: {_short(old)} -> {_short(doc[name])}"
        doc[name] = new
        return f"{name}: {_short(old)} -> {_short(new)}"

    return _edit_doc(rng, m, _zarray, edit)


# fmt: off
_DTYPES: list[Any] = [
    "|O", "<U5", "|V8", "<m8", "<M8[s]", "|S3", "|b1", "<f2", ">c16", "<f16", "<i9", "float64",
    "garbage", "", None, 8, [["a", "<f8"], ["b", "|O"]], [["a", "<i4", [2, 3]]], [["a"]], [],
    [["a", "<f8"], ["a", "<f8"]],
]
# fmt: on


def m_dtype(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        old = doc.get("dtype")
        if isinstance(old, str) and len(old) > 1 and old[0] in "<>" and rng.random() < 0.3:
            new: Any = ("<" if old[0] == ">" else ">") + old[1:]
        elif isinstance(old, str) and rng.random() < 0.3:
            new = old[:-1] + rng.choice("1248")  # same kind, other item size
        else:
            new = rng.choice(_DTYPES)
        doc["dtype"] = new
        return f"dtype: {_short(old)} -> {_short(new)}"

    return _edit_doc(rng, m, _zarray, edit)


# fmt: off
_FILLS: list[Any] = [
    "abc", None, "NaN", "Infinity", [1, 2], 1e308, -1, 2**70, True, {"a": 1}, "AAAA", "", 1.5,
    [0.0, "x"],
]
# fmt: on


def m_fill_value(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        old = doc.get("fill_value")
        doc["fill_value"] = rng.choice(_FILLS)
        return f"fill_value: {_short(old)} -> {_short(doc['fill_value'])}"

    return _edit_doc(rng, m, _zarray, edit)


# fmt: off
_ALLOWED_CODECS = [
    "blosc", "zstd", "gzip", "zlib", "bz2", "lzma", "lz4", "shuffle", "delta", "vlen-array",
    "vlen-utf8", "vlen-bytes", "msgpack2", "json2",
]
# fmt: on
# fmt: off
_OTHER_CODECS = [
    "pickle", "categorize", "base64", "fletcher32", "adler32", "crc32", "astype",
    "fixedscaleoffset", "quantize", "packbits", "bitround", "no-such-codec", "",
]
# fmt: on
_CODEC_PARAMS: dict[str, list[Any]] = {
    "cname": ["zstd", "lz4", "blosclz", "zlib", "evil", "", 3],
    "clevel": [0, 1, 9, 10, -1, "5", None],
    "shuffle": [-1, 0, 1, 2, 3, "1"],
    "blocksize": [0, 1, 2**31, -1],
    "level": [1, 9, 99, -100, "1", None],
    "dtype": ["<f8", "<i8", "|O", "<U3", "garbage", None],
    "astype": ["<f8", "|u1", "|O"],
    "elementsize": [0, 1, 8, 3, -8, 2**40],
    "preset": [0, 9, 10, None],
    "acceleration": [1, 0, -5, 2**40],
    "protocol": [5, 2, -1],
    "encoding": ["utf-8", "rot13", 1],
}


def random_codec(rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return rng.choice(["blosc", 3, [], {}])
    codec_id = rng.choice(_ALLOWED_CODECS * 2 + _OTHER_CODECS)
    config: dict[str, Any] = {"id": codec_id}
    for name in rng.sample(sorted(_CODEC_PARAMS), rng.randint(0, 3)):
        config[name] = rng.choice(_CODEC_PARAMS[name])
    return config


def m_codecs(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        if rng.random() < 0.5:
            old = doc.get("compressor")
            doc["compressor"] = None if rng.random() < 0.15 else random_codec(rng)
            return f"compressor: {_short(old)} -> {_short(doc['compressor'])}"
        old = doc.get("filters")
        new = [random_codec(rng) for _ in range(rng.randint(0, 3))]
        odd: list[Any] = [None, [], {"id": "shuffle"}]
        doc["filters"] = new or rng.choice(odd)
        return f"filters: {_short(old)} -> {_short(doc['filters'])}"

    return _edit_doc(rng, m, _zarray, edit)


def m_order_separator(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        name = rng.choice(["order", "dimension_separator", "zarr_format"])
        values: dict[str, list[Any]] = {
            "order": ["C", "F", "X", None, 1, "c"],
            "dimension_separator": [".", "/", "-", "", None, "/../", "\\", 1, "//"],
            "zarr_format": [3, "2", None, 2.0, 1],
        }
        old = doc.get(name)
        doc[name] = rng.choice(values[name])
        return f"{name}: {_short(old)} -> {_short(doc[name])}"

    return _edit_doc(rng, m, _zarray, edit)


# fmt: off
_AXIS_FIELDS = [
    "size", "scale", "offset", "navigate", "is_binned", "_type", "name", "units", "expression",
    "a", "b",
]
# fmt: on


def m_axis_field(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        if not isinstance(doc, dict):
            return None
        name = rng.choice(_AXIS_FIELDS)
        old = doc.get(name)
        choices: list[Any] = [*_SIZES, *_STRINGS[:6], "x +", "foo(x)", "a * x", "x ** 999"]
        choices += ["UniformDataAxis", "DataAxis", "FunctionalDataAxis", "False", "no"]
        doc[name] = rng.choice(choices)
        return f"{name}: {_short(old)} -> {_short(doc[name])}"

    return _edit_doc(rng, m, _axis_attrs, edit)


# fmt: off
_PREFIXED = [
    "_bs_blob", "_datetime_date_x", "_datetime_time_x", "_list_empty_x", "_tuple_empty_x",
    "_sig_x", "_hspy_AxesManager_x", "_list_3_x", "",
]
# fmt: on


def m_prefixed_attr(rng: random.Random, m: Mutant) -> str | None:
    def edit(rng: random.Random, doc: Any) -> str | None:
        if not isinstance(doc, dict):
            return None
        name = rng.choice(_PREFIXED)
        doc[name] = random_value(rng)
        return f"{name!r} = {_short(doc[name])}"

    return _edit_doc(rng, m, _zattrs, edit)


def _text_keys(m: Mutant) -> list[str]:
    return sorted(k for k in m.items if is_doc(k) or k == ZMETADATA)


def m_deep_nesting(rng: random.Random, m: Mutant) -> str | None:
    depth = rng.choice([65, 200, 1500, 5000])
    deep = "[" * depth + "]" * depth if rng.random() < 0.5 else '{"a":' * depth + "1" + "}" * depth

    def edit(rng: random.Random, doc: Any) -> str | None:
        paths = list(_paths(doc))
        if not paths:
            return None
        _set(doc, rng.choice(paths), "__DEEP__")
        return f"a value nested {depth} deep"

    described = _edit_doc(rng, m, _any_doc, edit)
    if described is None:
        return None
    for key in _text_keys(m):
        m.items[key] = m.items[key].replace(b'"__DEEP__"', deep.encode())
    return described


def m_truncate_json(rng: random.Random, m: Mutant) -> str | None:
    keys = _text_keys(m)
    if not keys:
        return None
    key = rng.choice(keys)
    raw = m.items[key]
    cut = rng.randrange(len(raw)) if raw else 0
    m.items[key] = raw[:cut]
    return f"{key} cut to {cut} of {len(raw)} bytes"


def m_invalid_utf8(rng: random.Random, m: Mutant) -> str | None:
    keys = _text_keys(m)
    if not keys:
        return None
    key = rng.choice(keys)
    raw = m.items[key]
    at = rng.randrange(len(raw) + 1)
    junk = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", "é".encode("latin-1")])
    m.items[key] = raw[:at] + junk + raw[at:]
    return f"{key}: {junk!r} inserted at {at}"


def m_delete_doc(rng: random.Random, m: Mutant) -> str | None:
    keys = sorted(k for k in m.items if is_doc(k))
    if not keys:
        return None
    key = rng.choice(keys)
    mode = _mode(rng, m.items, key)
    if mode in ("node", "both"):
        del m.items[key]
    if mode in ("zmetadata", "both"):
        zmeta = _zmetadata(m.items)
        if zmeta is not None:
            zmeta["metadata"].pop(key, None)
            m.items[ZMETADATA] = dumps(zmeta)
    return f"{key} [{mode}] deleted"


def m_extra_axis(rng: random.Random, m: Mutant) -> str | None:
    signals = sorted(
        k.rsplit("/", 2)[0]
        for k in m.items
        if k.startswith("Experiments/") and k.endswith("/data/.zarray")
    )
    if not signals:
        return None
    signal = rng.choice(signals)
    i = rng.choice([0, 1, 2, 3, 7])
    axis = {"_type": "UniformDataAxis", "size": rng.choice([1, 3, 5]), "navigate": True}
    axis.update(scale=1.0, offset=0.0, name="extra", units="_None_", is_binned=False)
    mode = _mode(rng, m.items, "")
    for name, doc in ((".zgroup", {"zarr_format": 2}), (".zattrs", axis)):
        _put_doc(m.items, f"{signal}/axis-{i}/{name}", doc, mode)
    return f"{signal}/axis-{i} [{mode}] added"


# -- breaking mutations on chunks --------------------------------------------------------------


def _chunk_keys(items: Items) -> list[str]:
    return sorted(k for k in items if not is_doc(k) and k != ZMETADATA)


def m_chunk(rng: random.Random, m: Mutant) -> str | None:
    keys = _chunk_keys(m.items)
    if not keys:
        return None
    key = rng.choice(keys)
    raw = m.items[key]
    how = rng.choice(["truncate", "empty", "flip", "flip", "append", "swap", "delete", "header"])
    if how == "truncate" and raw:
        cut = rng.randrange(len(raw))
        m.items[key] = raw[:cut]
        return f"{key}: cut to {cut} of {len(raw)} bytes"
    if how == "empty":
        m.items[key] = b""
        return f"{key}: emptied"
    if how == "append":
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        m.items[key] = raw + extra
        return f"{key}: {len(extra)} bytes appended"
    if how == "swap" and len(keys) > 1:
        other = rng.choice([k for k in keys if k != key])
        m.items[key], m.items[other] = m.items[other], raw
        return f"{key} <-> {other}"
    if how == "delete":
        del m.items[key]
        return f"{key}: deleted"
    if how == "header" and len(raw) >= 16:
        # the first 16 bytes hold the lengths of most codecs: make one of them absurd
        buf = bytearray(raw)
        at = rng.choice([0, 4, 8, 12])
        struct.pack_into("<I", buf, at, rng.choice([0, 1, 2**31 - 1, 2**32 - 1, len(raw) * 1000]))
        m.items[key] = bytes(buf)
        return f"{key}: uint32 at {at} set"
    if not raw:
        return None
    buf = bytearray(raw)
    flips = rng.randint(1, 8)
    for _ in range(flips):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    m.items[key] = bytes(buf)
    return f"{key}: {flips} bits flipped"


# -- breaking mutations of the zip container ----------------------------------------------


def _flip_in(raw: bytes, lo: int, hi: int, rng: random.Random) -> bytes:
    buf = bytearray(raw)
    if hi > lo:
        buf[rng.randrange(lo, hi)] ^= 1 << rng.randrange(8)
    return bytes(buf)


def m_zip_damage(rng: random.Random, m: Mutant) -> str | None:
    m.container = "zip"
    how = rng.choice(["central", "member", "truncate", "duplicate", "hostile-name"])
    seed = rng.randrange(2**32)
    if how == "central":

        def central(raw: bytes) -> bytes:
            lo = raw.rfind(b"PK\x05\x06")
            start = struct.unpack_from("<I", raw, lo + 16)[0] if lo >= 0 else 0
            return _flip_in(raw, start, len(raw), random.Random(seed))

        m.zip_edit = central
        return "a bit flipped in the central directory"
    if how == "member":

        def member(raw: bytes) -> bytes:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                infos = [i for i in zf.infolist() if i.file_size]
            r = random.Random(seed)
            info = r.choice(infos)
            n, k = struct.unpack_from("<HH", raw, info.header_offset + 26)
            start = info.header_offset + 30 + n + k
            return _flip_in(raw, start, start + info.compress_size, r)

        m.zip_edit = member
        return "a bit flipped in a member's data"
    if how == "truncate":
        fraction = rng.random()
        m.zip_edit = lambda raw: raw[: int(len(raw) * fraction)]
        return f"file cut to {fraction:.2f} of its length"
    if how == "duplicate":
        key = rng.choice(sorted(m.items))
        content = rng.choice([b"", b"{}", b"garbage", m.items[rng.choice(sorted(m.items))]])
        m.zip_after.append((key, content))
        return f"a later member {key!r} with other content"
    name = rng.choice(["../evil", "/abs", "Experiments/../../evil", "a\\..\\b", "./.zattrs"])
    m.zip_after.append((name, b"{}"))
    return f"a member named {name!r}"


BREAKING: dict[str, tuple[Mutation, int]] = {
    "value-type": (m_value_type, 6),
    "delete-key": (m_delete_key, 3),
    "shape-chunks": (m_shape_chunks, 4),
    "dtype": (m_dtype, 4),
    "fill-value": (m_fill_value, 2),
    "codecs": (m_codecs, 4),
    "order-separator": (m_order_separator, 2),
    "axis-field": (m_axis_field, 4),
    "prefixed-attr": (m_prefixed_attr, 2),
    "deep-nesting": (m_deep_nesting, 1),
    "truncate-json": (m_truncate_json, 2),
    "invalid-utf8": (m_invalid_utf8, 1),
    "delete-doc": (m_delete_doc, 2),
    "extra-axis": (m_extra_axis, 1),
    "chunk": (m_chunk, 8),
    "zip-damage": (m_zip_damage, 3),
}


# -- semantics-preserving mutations -------------------------------------------------------------


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def p_reindent(rng: random.Random, m: Mutant) -> str | None:
    keys = _text_keys(m)
    if not keys:
        return None
    chosen = rng.sample(keys, min(len(keys), rng.randint(1, 4)))
    indent = rng.choice([None, 0, 1, 2, 8])
    for key in chosen:
        doc = json.loads(m.items[key])
        separators = (",", ":") if indent is None and rng.random() < 0.5 else None
        m.items[key] = json.dumps(
            _shuffled(doc, rng),
            indent=indent,
            separators=separators,
            ensure_ascii=rng.random() < 0.5,
        ).encode()
    return f"{len(chosen)} documents re-serialised (indent={indent}, keys shuffled)"


def p_drop_zmetadata(rng: random.Random, m: Mutant) -> str | None:
    if ZMETADATA not in m.items:
        return None
    del m.items[ZMETADATA]
    # an earlier zip member of that name would become the current one
    m.zip_before = [(k, v) for k, v in m.zip_before if k != ZMETADATA]
    return ".zmetadata removed"


def p_separator(rng: random.Random, m: Mutant) -> str | None:
    """Flat chunk keys for nested ones (or the reverse), renamed consistently."""
    arrays = sorted(k[: -len("/.zarray")] for k in m.items if k.endswith("/.zarray"))
    zmeta = _zmetadata(m.items)
    changed = 0
    for path in arrays:
        doc = json.loads(m.items[f"{path}/.zarray"])
        old = doc.get("dimension_separator") or "."
        new = "." if old == "/" else "/"
        if len(doc.get("shape", [])) < 2:
            continue
        prefix = f"{path}/"
        chunks = [k for k in m.items if k.startswith(prefix) and not is_doc(k[len(prefix) :])]
        if any("/" in k[len(prefix) :] and old != "/" for k in chunks):
            continue
        for key in chunks:
            m.items[prefix + key[len(prefix) :].replace(old, new)] = m.items.pop(key)
        if new == "." and rng.random() < 0.5:
            doc.pop("dimension_separator", None)
        else:
            doc["dimension_separator"] = new
        m.items[f"{path}/.zarray"] = dumps(doc)
        if zmeta is not None:
            zmeta["metadata"][f"{path}/.zarray"] = doc
        changed += 1
    if not changed:
        return None
    if zmeta is not None:
        m.items[ZMETADATA] = dumps(zmeta)
    return f"{changed} arrays switched between flat and nested chunk keys"


def p_as_zip(rng: random.Random, m: Mutant) -> str | None:
    m.container = "zip"
    return "written as a zip file"


def p_stale_duplicates(rng: random.Random, m: Mutant) -> str | None:
    """Earlier zip members with the names of later ones (zarr 2 zips have them): the last
    member with a name is the current one."""
    m.container = "zip"
    keys = rng.sample(sorted(m.items), min(len(m.items), rng.randint(1, 3)))
    for key in keys:
        m.zip_before.append((key, rng.choice([b"", b"{}", b"stale content"])))
    return f"stale earlier copies of {', '.join(keys)}"


PRESERVING: dict[str, tuple[Mutation, int]] = {
    "reindent": (p_reindent, 3),
    "drop-zmetadata": (p_drop_zmetadata, 2),
    "separator": (p_separator, 2),
    "as-zip": (p_as_zip, 1),
    "stale-duplicates": (p_stale_duplicates, 2),
}


def _pick(rng: random.Random, table: Mapping[str, tuple[Mutation, int]]) -> str:
    names = sorted(table)
    return rng.choices(names, weights=[table[n][1] for n in names])[0]


def make_mutant(seed: int, index: int, sources: Sequence[Source]) -> Mutant:
    """Mutant ``index`` of the campaign ``seed`` (a pure function of both and the sources)."""
    rng = random.Random(f"zspy-fuzz:{seed}:{index}")
    source = sources[rng.randrange(len(sources))]
    container = "zip" if index % 2 else "directory"
    m = Mutant(index, source.name, dict(source.items), container)
    m.preserving = rng.random() < 0.2
    table = PRESERVING if m.preserving else BREAKING
    wanted = 1 if rng.random() < 0.7 else 2
    for _ in range(20):
        if len(m.kinds) >= wanted:
            break
        kind = _pick(rng, table)
        described = table[kind][0](rng, m)
        if described is not None:
            m.kinds.append(kind)
            m.descriptions.append(described)
    if not m.kinds:
        m.kinds.append("none")
        m.descriptions.append("no mutation applied")
    return m


# == writing and reading ===========================================================================


def _safe_key(key: str) -> bool:
    parts = key.split("/")
    return bool(key) and not key.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def write_mutant(m: Mutant, where: Path) -> Path:
    """Write the mutant as a directory or zip file below ``where``; return its path."""
    if m.container == "directory":
        path = where / "store.zspy"
        for key, value in m.items.items():
            if not _safe_key(key):
                raise ValueError(f"unsafe key for a directory store: {key!r}")
            target = path / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(value)
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = where / "store.zip"
    last = [".zattrs", ZMETADATA]
    order = [k for k in m.items if k not in last] + [k for k in last if k in m.items]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for key, value in m.zip_before:
                zf.writestr(key, value)
            for key in order:
                zf.writestr(key, m.items[key])
            for key, value in m.zip_after:
                zf.writestr(key, value)
    raw = buf.getvalue()
    if m.zip_edit is not None:
        raw = m.zip_edit(raw)
    path.write_bytes(raw)
    return path


def _touch(value: Any) -> None:
    """Walk a decoded value (attrs): every leaf converted, every array read."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            str(k)
            _touch(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _touch(v)
    elif isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            for v in value.ravel():
                _touch(v)
        else:
            value.tobytes()
    else:
        repr(value)


def _snapshot(ds: Any) -> dict[str, Any]:
    """What a read gave: data, dims, coords and attrs, as plain objects."""
    data = ds["data"]
    return {
        "dims": tuple(map(str, data.dims)),
        "dtype": str(data.dtype),
        "values": np.asarray(data.values),
        "data_attrs": dict(data.attrs),
        "coords": {
            str(name): (tuple(map(str, c.dims)), np.asarray(c.values), dict(c.attrs))
            for name, c in ds.coords.items()
        },
        "attrs": dict(ds.attrs),
    }


def read_eager(url: str) -> dict[str, Any]:
    import intake_zspy

    ds = intake_zspy.open_dataset(url)
    try:
        ds.load()
        _touch(ds.attrs)
        for coord in ds.coords.values():
            _touch(coord.values)
            _touch(coord.attrs)
        return _snapshot(ds)
    finally:
        ds.close()


def read_dask(url: str) -> dict[str, Any]:
    import intake_zspy

    ds = intake_zspy.open_dataset(url, chunks={})
    try:
        data = ds["data"].compute()
        return {"dtype": str(data.dtype), "values": np.asarray(data.values)}
    finally:
        ds.close()


def read_tree(url: str) -> dict[str, Any]:
    import intake_zspy

    tree = intake_zspy.open_datatree(url)
    try:
        tree.load()
        return {
            node.path: _snapshot(node.to_dataset(inherit=False))
            for node in tree.subtree
            if "data" in node.data_vars
        }
    finally:
        tree.close()


READERS: dict[str, Callable[[str], Any]] = {
    "eager": read_eager,
    "dask": read_dask,
    "tree": read_tree,
    "eager-again": read_eager,
}


def deep_diff(a: Any, b: Any, where: str = "") -> str | None:
    """The first difference between two decoded values (``None`` when equal).

    Arrays compare bitwise (same dtype, shape and bytes); dict order does not matter; NaN
    equals NaN.
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{where}: {type(a).__name__} vs {type(b).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        if a.dtype.kind == "O":
            for index in np.ndindex(a.shape):
                diff = deep_diff(a[index], b[index], f"{where}{list(index)}")
                if diff:
                    return diff
            return None
        if np.ascontiguousarray(a).tobytes() != np.ascontiguousarray(b).tobytes():
            return f"{where}: array values differ"
        return None
    if type(a) is not type(b):
        return (
            f"{where}: {type(a).__name__} {_short(repr(a))} vs {type(b).__name__} {_short(repr(b))}"
        )
    if isinstance(a, Mapping):
        if set(a) != set(b):
            return f"{where}: keys {sorted(map(str, set(a) ^ set(b)))[:5]} differ"
        for key in a:
            diff = deep_diff(a[key], b[key], f"{where}/{key}")
            if diff:
                return diff
        return None
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return f"{where}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = deep_diff(x, y, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(a, float | np.floating) and math.isnan(a) and math.isnan(b):
        return None
    try:
        same = bool(a == b)
    except Exception as exc:  # noqa: BLE001 - a value that cannot even be compared
        return f"{where}: cannot compare: {exc}"
    return None if same else f"{where}: {_short(repr(a))} vs {_short(repr(b))}"


# == the campaign =================================================================================


@dataclass
class Fail:
    index: int | None
    source: str
    read: str
    oracle: str
    detail: str


@dataclass
class Result:
    """What one mutant (or one unmutated source, ``index is None``) gave."""

    index: int | None
    source: str
    kinds: list[str]
    description: str
    container: str
    preserving: bool
    outcomes: dict[str, str]
    fails: list[Fail]
    warnings: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["fails"] = [f.__dict__ for f in self.fails]
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Result:
        fields = dict(doc)
        fields["fails"] = [Fail(**f) for f in doc["fails"]]
        return cls(**fields)


@dataclass
class Report:
    """A campaign's results, with summaries."""

    seed: int
    mutants: int
    sources: list[str]
    results: list[Result] = field(default_factory=list)
    references: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fails(self) -> list[Fail]:
        return [f for r in [*self.references, *self.results] for f in r.fails]

    def outcome_counts(self) -> collections.Counter[str]:
        """Reads per outcome: ``ok`` or the exception class name."""
        return collections.Counter(o for r in self.results for o in r.outcomes.values())

    def kind_counts(self) -> dict[str, collections.Counter[str]]:
        """Per mutation kind: mutants whose reads all succeeded, that raised, that failed."""
        out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for r in self.results:
            verdict = (
                "FAIL"
                if r.fails
                else "ok"
                if all(o == "ok" for o in r.outcomes.values())
                else "error"
            )
            for kind in dict.fromkeys(r.kinds):
                out[kind][verdict] += 1
        return dict(out)

    def format(self) -> str:
        lines = [
            (
                f"zspy fuzz campaign: seed {self.seed}, {len(self.results)} of {self.mutants} "
                f"mutants, {len(self.sources)} sources, {self.seconds:.1f} s"
            ),
            "reads per outcome:",
        ]
        for outcome, count in sorted(self.outcome_counts().items(), key=lambda kv: -kv[1]):
            lines.append(f"  {outcome:<28} {count}")
        lines.append("mutants per kind (ok / error / FAIL):")
        for kind, counts in sorted(self.kind_counts().items()):
            lines.append(
                f"  {kind:<20} {counts['ok']:>4} / {counts['error']:>4} / {counts['FAIL']:>4}"
            )
        warned = collections.Counter[str]()
        for r in self.results:
            warned.update(r.warnings)
        if warned:
            lines.append("warnings: " + ", ".join(f"{k} {v}" for k, v in sorted(warned.items())))
        bad_refs = [r for r in self.references if any(o != "ok" for o in r.outcomes.values())]
        for r in bad_refs:
            lines.append(f"unmutated source {r.source} does not read: {r.outcomes}")
        fails = [r for r in [*self.references, *self.results] if r.fails]
        lines.append(f"FAIL: {sum(len(r.fails) for r in fails)} in {len(fails)} mutants")
        for r in fails:
            lines.append(
                f"- seed {self.seed} index {r.index} source {r.source} ({r.container}): "
                f"{r.description}"
            )
            lines.extend(_describe_fails(r.fails))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "mutants": self.mutants,
            "sources": self.sources,
            "seconds": self.seconds,
            "outcomes": dict(self.outcome_counts()),
            "kinds": {k: dict(v) for k, v in self.kind_counts().items()},
            "references": [r.to_json() for r in self.references],
            "results": [r.to_json() for r in self.results],
        }


class _Watchdog:
    """Stops the process (with every thread's stack on stderr) when a read hangs."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        if self.seconds is None:
            yield
            return
        faulthandler.dump_traceback_later(self.seconds, exit=True)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()


def _attempt(
    read: str, url: str, watchdog: _Watchdog
) -> tuple[str, Any, Fail | None, list[warnings.WarningMessage]]:
    """Run one read: ``(outcome, value, fail, warnings)``."""
    from intake_zspy.errors import ZspyError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with watchdog.guard():
                value = READERS[read](url)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - every exception is an outcome
            name = type(exc).__name__
            fail = None
            if isinstance(exc, MemoryError | RecursionError):
                fail = Fail(None, "", read, name, _format_exc(exc))
            elif not isinstance(exc, ZspyError):
                fail = Fail(None, "", read, "not a ZspyError", _format_exc(exc))
            elif url not in str(exc):
                fail = Fail(None, "", read, "message does not name the store", str(exc))
            return name, None, fail, list(caught)
    return "ok", value, None, list(caught)


def poison_heap(pattern: int = 0xA5) -> None:
    """Fill freed memory with ``pattern``: memory a reader returns uninitialised then holds
    it (numpy caches small freed blocks per size, malloc reuses larger ones), so a repeated
    read differs from the first one."""
    small = [n for n in range(8, 1025, 8) for _ in range(8)]  # numpy's cache: 7 per size
    large = [n for n in (2048, 4096, 8192, 16384, 32768, 65536) for _ in range(4)]
    blocks = [np.full(n, pattern, dtype=np.uint8) for n in (*small, *large)]
    del blocks


def _format_exc(exc: BaseException) -> str:
    """``Type: message`` on the first line, then the end of the traceback."""
    message = " ".join(str(exc).split())
    summary = f"{type(exc).__name__}: {message[:300]}"
    frames = "".join(traceback.format_exception(exc, chain=False))
    return f"{summary}\n{frames[-3000:]}"


def _describe_fails(fails: Sequence[Fail]) -> list[str]:
    """One line per distinct problem (with the reads it hit), then one traceback."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for f in fails:
        first = f.detail.split("\n", 1)[0]
        grouped.setdefault((f.oracle, first[:400]), []).append(f.read)
    lines = [
        f"    {', '.join(reads)}: {oracle}: {first}" for (oracle, first), reads in grouped.items()
    ]
    tails = [f.detail.split("\n", 1)[1] for f in fails if "\n" in f.detail]
    if tails:
        tail = tails[0].rstrip().splitlines()[-16:]
        lines.extend(f"      | {line}" for line in tail)
    return lines


def _check(
    outcomes: dict[str, str],
    values: dict[str, Any],
    reference: dict[str, Any] | None,
    preserving: bool,
) -> list[tuple[str, str, str]]:
    """Oracles 5 and 6: ``[(read, oracle, detail)]``."""
    problems = []
    eager, again, lazy = values.get("eager"), values.get("eager-again"), values.get("dask")
    if (outcomes["eager"] == "ok") != (outcomes["eager-again"] == "ok"):
        problems.append(("eager-again", "repeated read differs", str(outcomes)))
    if eager is not None and again is not None:
        diff = deep_diff(eager, again, "eager")
        if diff:
            problems.append(("eager-again", "repeated read differs", diff))
    if (outcomes["eager"] == "ok") != (outcomes["dask"] == "ok"):
        problems.append(("dask", "eager and dask disagree", str(outcomes)))
    if eager is not None and lazy is not None:
        diff = deep_diff(
            {"dtype": eager["dtype"], "values": eager["values"]}, lazy, "eager vs dask"
        )
        if diff:
            problems.append(("dask", "eager and dask differ", diff))
    if preserving and reference is not None:
        for read in ("eager", "tree"):
            if outcomes[read] != "ok":
                problems.append(
                    (read, "semantics-preserving mutation broke the read", outcomes[read])
                )
                continue
            diff = deep_diff(reference[read], values[read], read)
            if diff:
                problems.append((read, "semantics-preserving mutation changed the result", diff))
    return problems


class Campaign:
    """Builds, writes and reads mutants of ``sources`` (in this process)."""

    def __init__(
        self,
        seed: int,
        sources: Sequence[Source],
        workdir: Path,
        *,
        read_timeout: float | None = None,
        skip_references: Sequence[str] = (),
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.seed = seed
        self.sources = list(sources)
        self.workdir = workdir
        self.watchdog = _Watchdog(read_timeout)
        self.skip = set(skip_references)
        self.on_event = on_event or (lambda event: None)
        self.references: dict[str, Result] = {}
        self._reference_values: dict[str, dict[str, Any] | None] = {}

    def _read_all(
        self, url: str
    ) -> tuple[dict[str, str], dict[str, Any], list[Fail], dict[str, int]]:
        outcomes: dict[str, str] = {}
        values: dict[str, Any] = {}
        fails: list[Fail] = []
        warned: collections.Counter[str] = collections.Counter()
        for read in READS:
            self.on_event({"event": "read", "read": read})
            if read == "eager-again":
                poison_heap()
            outcome, value, fail, caught = _attempt(read, url, self.watchdog)
            outcomes[read] = outcome
            if value is not None:
                values[read] = value
            if fail is not None:
                fails.append(fail)
            warned.update(w.category.__name__ for w in caught)
        return outcomes, values, fails, dict(warned)

    def reference(self, source: Source) -> dict[str, Any] | None:
        """The reads of the unmutated source (``None`` if it does not read)."""
        if source.name in self._reference_values:
            return self._reference_values[source.name]
        if source.name in self.skip:
            self._reference_values[source.name] = None
            return None
        self.on_event({"event": "start-reference", "source": source.name})
        m = Mutant(-1, source.name, dict(source.items), "directory", kinds=["none"])
        where = Path(tempfile.mkdtemp(prefix="ref-", dir=self.workdir))
        try:
            url = str(write_mutant(m, where))
            outcomes, values, fails, warned = self._read_all(url)
        finally:
            shutil.rmtree(where, ignore_errors=True)
        for f in fails:
            f.source = source.name
        for read, oracle, detail in _check(outcomes, values, None, False):
            fails.append(Fail(None, source.name, read, oracle, detail))
        result = Result(
            None, source.name, ["none"], "unmutated", "directory", True, outcomes, fails, warned
        )
        self.references[source.name] = result
        self.on_event({"event": "reference", "result": result.to_json()})
        ok = all(outcomes[r] == "ok" for r in ("eager", "tree"))
        self._reference_values[source.name] = values if ok else None
        return self._reference_values[source.name]

    def run_one(self, index: int) -> Result:
        m = make_mutant(self.seed, index, self.sources)
        source = next(s for s in self.sources if s.name == m.source)
        reference = self.reference(source) if m.preserving else None
        self.on_event({"event": "start", "index": index})
        where = Path(tempfile.mkdtemp(prefix=f"m{index}-", dir=self.workdir))
        try:
            try:
                url = str(write_mutant(m, where))
            except (OSError, ValueError) as exc:
                outcomes = dict.fromkeys(READS, "unwritable")
                return self._done(m, outcomes, [], {}, f"{m.describe()} (not written: {exc})")
            outcomes, values, fails, warned = self._read_all(url)
        finally:
            shutil.rmtree(where, ignore_errors=True)
        for read, oracle, detail in _check(outcomes, values, reference, m.preserving):
            fails.append(Fail(index, m.source, read, oracle, detail))
        return self._done(m, outcomes, fails, warned, m.describe())

    def _done(
        self,
        m: Mutant,
        outcomes: dict[str, str],
        fails: list[Fail],
        warned: dict[str, int],
        description: str,
    ) -> Result:
        for f in fails:
            f.index, f.source = m.index, m.source
        result = Result(
            m.index,
            m.source,
            m.kinds,
            description,
            m.container,
            m.preserving,
            outcomes,
            fails,
            warned,
        )
        self.on_event({"event": "result", "result": result.to_json()})
        return result


def run_campaign(
    seed: int,
    mutants: int,
    sources: Sequence[Source | str | os.PathLike[str]] = (),
    *,
    builtin: bool = True,
    corpus: bool = True,
    start: int = 0,
    read_timeout: float | None = None,
) -> Report:
    """Run a campaign in this process (no memory limit, no crash protection).

    Parameters
    ----------
    seed, mutants
        The campaign: mutants ``start .. mutants - 1`` of ``seed``.
    sources, builtin, corpus
        What to mutate (see :func:`collect_sources`).
    read_timeout
        Seconds after which a hanging read stops the process (``None``: no watchdog).

    See Also
    --------
    run_campaign_subprocess : the same in a child process, with limits (use it in tests).
    """
    resolved = collect_sources(sources, builtin=builtin, corpus=corpus)
    report = Report(seed, mutants, [s.name for s in resolved])
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="zspy-fuzz-", dir=scratch_root()) as tmp:
        campaign = Campaign(seed, resolved, Path(tmp), read_timeout=read_timeout)
        for index in range(start, mutants):
            report.results.append(campaign.run_one(index))
        report.references = list(campaign.references.values())
    report.seconds = time.monotonic() - began
    return report


def run_campaign_subprocess(
    seed: int,
    mutants: int,
    sources: Sequence[str | os.PathLike[str]] = (),
    *,
    builtin: bool = True,
    corpus: bool = True,
    as_limit: int = AS_LIMIT,
    read_timeout: float = READ_TIMEOUT,
    max_restarts: int = 25,
) -> Report:
    """Run a campaign in a child process with an address-space limit and a watchdog.

    A crash or a hang of the child is a FAIL of the mutant being read; the campaign then
    goes on from the next mutant in a new child.

    Parameters
    ----------
    sources
        Stores (directories or zip files) to mutate besides the built-in ones and the
        corpus (see ``builtin`` and ``corpus``).
    as_limit
        ``RLIMIT_AS`` of the child, in bytes.
    read_timeout
        Seconds one read may take.
    """
    began = time.monotonic()
    names = [s.name for s in collect_sources(sources, builtin=builtin, corpus=corpus)]
    report = Report(seed, mutants, names)
    results: dict[int, Result] = {}
    references: dict[str, Result] = {}
    skip: list[str] = []
    env = {k: v for k, v in os.environ.items() if k != "NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONFAULTHANDLER"] = "1"
    with tempfile.TemporaryDirectory(prefix="zspy-fuzz-") as tmp:
        events_path = Path(tmp) / "events.jsonl"
        start = 0
        for _ in range(max_restarts + 1):
            if start >= mutants:
                break
            command = [
                sys.executable,
                "-m",
                "tests.fuzzing",
                "--worker",
                str(events_path),
                "--seed",
                str(seed),
                "--mutants",
                str(mutants),
                "--start",
                str(start),
                "--as-limit",
                str(as_limit),
                "--read-timeout",
                str(read_timeout),
                *(["--no-builtin"] if not builtin else []),
                *(["--no-corpus"] if not corpus else []),
                *(f"--skip-reference={name}" for name in skip),
                *(f"--source={s}" for s in sources),
            ]
            with open(Path(tmp) / "stderr.txt", "w+") as stderr:
                proc = subprocess.run(
                    command,
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    check=False,
                )
                stderr.seek(0)
                err = stderr.read()
            events = _read_events(events_path)
            started: dict[str, Any] | None = None
            reading = "?"
            finished = False
            for event in events:
                if event["event"] in ("start", "start-reference"):
                    started = event
                    reading = "?"
                elif event["event"] == "read":
                    reading = event["read"]
                elif event["event"] == "result":
                    result = Result.from_json(event["result"])
                    assert result.index is not None
                    results[result.index] = result
                    started = None
                elif event["event"] == "reference":
                    references[event["result"]["source"]] = Result.from_json(event["result"])
                    started = None
                elif event["event"] == "done":
                    finished = True
            if finished and proc.returncode == 0:
                break
            if "Timeout (" in err:
                why, summary = "hang", f"no result within {read_timeout:g} s"
            else:
                why, summary = "crash", f"the process died (exit status {proc.returncode})"
            detail = f"{summary}\n{err[-4000:]}"
            if started is None:
                raise RuntimeError(f"fuzz worker failed outside any read: {detail}")
            if started["event"] == "start-reference":
                name = started["source"]
                fail = Fail(None, name, reading, why, detail)
                references[name] = Result(
                    None, name, ["none"], "unmutated", "directory", True, {}, [fail], {}
                )
                skip.append(name)
                start = max(results, default=-1) + 1
                continue
            index = started["index"]
            m = make_mutant(seed, index, collect_sources(sources, builtin=builtin, corpus=corpus))
            fail = Fail(index, m.source, reading, why, detail)
            results[index] = Result(
                index, m.source, m.kinds, m.describe(), m.container, m.preserving, {}, [fail], {}
            )
            start = index + 1
    report.results = [results[i] for i in sorted(results)]
    report.references = list(references.values())
    report.seconds = time.monotonic() - began
    return report


def scratch_root() -> str | None:
    """Where mutants are written: a RAM file system when there is one (mutants are many
    small files), else the default temporary directory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


# == command line ===================================================================================


def _worker(args: argparse.Namespace) -> int:
    """Run mutants ``--start ..`` with the limits, appending events to ``--worker``."""
    if args.as_limit:
        resource.setrlimit(resource.RLIMIT_AS, (args.as_limit, args.as_limit))
    faulthandler.enable()
    sources = collect_sources(args.source, builtin=args.builtin, corpus=args.corpus)
    with (
        open(args.worker, "a") as out,
        tempfile.TemporaryDirectory(prefix="zspy-fuzz-", dir=scratch_root()) as tmp,
    ):

        def emit(event: dict[str, Any]) -> None:
            out.write(json.dumps(event) + "\n")
            out.flush()

        campaign = Campaign(
            args.seed,
            sources,
            Path(tmp),
            read_timeout=args.read_timeout,
            skip_references=args.skip_reference,
            on_event=emit,
        )
        for index in range(args.start, args.mutants):
            campaign.run_one(index)
        emit({"event": "done"})
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    """Rebuild mutant ``--only`` and read it here, showing every outcome."""
    sources = collect_sources(args.source, builtin=args.builtin, corpus=args.corpus)
    m = make_mutant(args.seed, args.only, sources)
    print(f"seed {args.seed} index {args.only}: source {m.source} ({m.container})")
    print(f"  {m.describe()}")
    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="zspy-mutant-"))
    keep.mkdir(parents=True, exist_ok=True)
    url = str(write_mutant(m, keep))
    print(f"  written to {url}")
    for read in READS:
        outcome, _, fail, caught = _attempt(read, url, _Watchdog(None))
        print(f"  {read}: {outcome}" + (f" -- FAIL {fail.oracle}\n{fail.detail}" if fail else ""))
        for w in caught:
            print(f"    warning {w.category.__name__}: {w.message}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzzing", description="Seeded mutation fuzzing of the zspy reader."
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mutants", type=int, default=400)
    parser.add_argument("--source", action="append", default=[], help="a store to mutate too")
    parser.add_argument("--no-builtin", dest="builtin", action="store_false")
    parser.add_argument("--no-corpus", dest="corpus", action="store_false")
    parser.add_argument("--json", metavar="PATH", help="write the whole report as JSON")
    parser.add_argument("--as-limit", type=int, default=AS_LIMIT, help="RLIMIT_AS of the reads")
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT)
    parser.add_argument("--in-process", action="store_true", help="no child process, no limits")
    parser.add_argument("--only", type=int, metavar="INDEX", help="rebuild and read one mutant")
    parser.add_argument("--keep", metavar="DIR", help="with --only: where to write the mutant")
    parser.add_argument("--worker", metavar="EVENTS", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--skip-reference", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    if args.only is not None:
        return _reproduce(args)
    if args.in_process:
        report = run_campaign(
            args.seed,
            args.mutants,
            args.source,
            builtin=args.builtin,
            corpus=args.corpus,
            read_timeout=args.read_timeout,
        )
    else:
        report = run_campaign_subprocess(
            args.seed,
            args.mutants,
            args.source,
            builtin=args.builtin,
            corpus=args.corpus,
            as_limit=args.as_limit,
            read_timeout=args.read_timeout,
        )
    print(report.format())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1, default=str))
    return 1 if report.fails else 0


if __name__ == "__main__":
    sys.exit(main())
