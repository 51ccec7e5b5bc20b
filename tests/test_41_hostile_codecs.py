"""Hostile codecs: pickle, codecs outside the allow-list, bad codec parameters, chunks that
decode shorter than declared and object codecs with a numeric dtype.

Each test builds the store an attacker (or a broken tool) would hand over and asserts the exact
error type, that the message names the store URL and the path inside it, and that nothing leaks:
no unpickled object, no uninitialised memory returned as values. Reads that could execute code
run in a subprocess, so a library that misbehaves fails the test instead of taking the test run
down.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import intake_zspy
from intake_zspy.errors import ChunkDecodeError, UnsupportedCodecError
from tests.builders import encode_store, signal_dict, uniform_axis
from tests.hostile import (
    BLOSC,
    CHUNKS,
    DATA,
    DATA_KEY,
    MARKERS,
    SIG,
    base_items,
    check_isolated,
    codec,
    dumps,
    encode_chunks,
    expect,
    expect_format_error,
    markers,
    markers_items,
    place,
    put_array,
    read_isolated,
    set_data,
    zarray,
)

# == codecs: pickle, the allow-list, bad parameters =====================================


class _Trap:
    """Pickles into ``open(path, "w")``: unpickling it creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


PICKLE_CASES = ("data-filter", "data-compressor", "markers-filter")


def _pickle_store(case: str, root: Path) -> tuple[str, Path, str]:
    marker = root / f"{case}.unpickled"
    payload = pickle.dumps(_Trap(marker), protocol=5)
    if case == "markers-filter":
        items = markers_items()
        array = f"{MARKERS}/offsets"
        doc = zarray([4], [4], "|O", compressor=None, filters=[{"id": "pickle", "protocol": 5}])
        put_array(items, array, doc, {"0": payload})
    elif case == "data-filter":
        items = base_items()
        array = DATA_KEY
        doc = zarray(
            [4, 5], [4, 5], "|O", compressor=None, filters=[{"id": "pickle", "protocol": 5}]
        )
        put_array(items, array, doc, {"0/0": payload})
    else:
        items = base_items()
        array = DATA_KEY
        doc = zarray([4, 5], [4, 5], "<f8", compressor={"id": "pickle", "protocol": 5})
        put_array(items, array, doc, {"0/0": payload})
    return place(items, root / f"{case}.zspy"), marker, array


@pytest.fixture(scope="module")
def pickle_reads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every pickle store read in one process that allows numcodecs to unpickle."""
    root = tmp_path_factory.mktemp("pickle")
    stores = {case: _pickle_store(case, root) for case in PICKLE_CASES}
    outcomes = read_isolated(
        [url for url, _, _ in stores.values()], env={"NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE": "1"}
    )
    return {
        case: (url, marker, array, outcomes[url]) for case, (url, marker, array) in stores.items()
    }


@pytest.mark.parametrize("case", PICKLE_CASES)
def test_pickle_codec_is_refused_and_never_unpickled(
    pickle_reads: dict[str, Any], case: str
) -> None:
    url, marker, array, outcomes = pickle_reads[case]
    assert not marker.exists(), f"{case}: the chunk was unpickled (it created {marker})"
    check_isolated(outcomes, "UnsupportedCodecError", url, "pickle", array)


def test_pickle_payload_is_live(tmp_path: Path) -> None:
    """The trap works: unpickling it does create the marker (so the test above means it)."""
    marker = tmp_path / "live"
    pickle.loads(pickle.dumps(_Trap(marker), protocol=5)).close()
    assert marker.exists()


OUTSIDE_ALLOW_LIST: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]] | None, Any]] = {
    "base64": ({"id": "base64"}, None, DATA),
    "fletcher32": ({"id": "fletcher32"}, None, DATA),
    "adler32-filter": (BLOSC, [{"id": "adler32"}], DATA),
    "fixedscaleoffset": (
        BLOSC,
        [{"id": "fixedscaleoffset", "offset": 0, "scale": 1, "dtype": "<f8", "astype": "<i4"}],
        DATA,
    ),
    "categorize": (
        None,
        [{"id": "categorize", "labels": ["a", "b"], "dtype": "|O", "astype": "|u1"}],
        np.array([["a", "b", "a", "b", "a"]] * 4, dtype=object),
    ),
}


@pytest.mark.parametrize("name", sorted(OUTSIDE_ALLOW_LIST))
def test_registered_codec_outside_allow_list_is_refused(tmp_path: Path, name: str) -> None:
    compressor, filters, data = OUTSIDE_ALLOW_LIST[name]
    items = base_items()
    set_data(items, data, CHUNKS, compressor=compressor, filters=filters)
    url = place(items, tmp_path / f"{name}.zspy")
    codec_id = (filters or [compressor or {}])[0]["id"]
    expect(UnsupportedCodecError, url, DATA_KEY, codec_id)


GOOD_COMPRESSORS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "zlib": {"id": "zlib", "level": 1},
    "gzip": {"id": "gzip", "level": 1},
    "bz2": {"id": "bz2", "level": 1},
    "lzma": {"id": "lzma", "preset": 1},
    "zstd": {"id": "zstd", "level": 1},
    "lz4": {"id": "lz4", "acceleration": 1},
    "blosc-lz4": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0},
    "blosc-zstd-bitshuffle": {
        "id": "blosc",
        "cname": "zstd",
        "clevel": 3,
        "shuffle": 2,
        "blocksize": 0,
    },
    "blosc-zlib-noshuffle": {
        "id": "blosc",
        "cname": "zlib",
        "clevel": 1,
        "shuffle": 0,
        "blocksize": 0,
    },
}
GOOD_FILTERS: dict[str, list[dict[str, Any]]] = {
    "shuffle": [{"id": "shuffle", "elementsize": 8}],
    "delta": [{"id": "delta", "dtype": "<f8"}],
    "delta-astype": [{"id": "delta", "dtype": "<f8", "astype": "<f8"}],
    "delta+shuffle": [{"id": "delta", "dtype": "<f8"}, {"id": "shuffle", "elementsize": 8}],
}


def _assert_reads_equal(url: str, expected: np.ndarray) -> None:
    ds = intake_zspy.open_dataset(url)
    assert ds["data"].dtype == expected.dtype
    np.testing.assert_array_equal(ds["data"].values, expected)
    np.testing.assert_array_equal(
        intake_zspy.open_dataset(url, chunks={})["data"].compute().values, expected
    )
    np.testing.assert_array_equal(intake_zspy.open_datatree(url)["s"]["data"].values, expected)


@pytest.mark.parametrize("name", sorted(GOOD_COMPRESSORS))
def test_allowed_compressor_reads_equal(tmp_path: Path, name: str) -> None:
    data = DATA * 1.5 - 3
    items = base_items(data)
    set_data(items, data, (3, 5), compressor=GOOD_COMPRESSORS[name])  # with an edge chunk
    _assert_reads_equal(place(items, tmp_path / f"{name}.zspy"), data)


@pytest.mark.parametrize("name", sorted(GOOD_FILTERS))
def test_allowed_filters_read_equal(tmp_path: Path, name: str) -> None:
    data = np.cumsum(DATA * 0.25, axis=1)
    items = base_items(data)
    set_data(items, data, CHUNKS, compressor={"id": "zlib", "level": 1}, filters=GOOD_FILTERS[name])
    _assert_reads_equal(place(items, tmp_path / f"{name}.zspy"), data)


def test_allowed_object_codecs_read_equal(tmp_path: Path) -> None:
    """vlen-array (ragged data, markers), msgpack2, vlen-utf8, vlen-bytes and json2."""
    ragged = np.empty((2, 3), dtype=object)
    for i, j in np.ndindex(2, 3):
        ragged[i, j] = np.arange(i + j + 1, dtype="<i8") * 3
    axes = [uniform_axis(2), uniform_axis(3)]
    items = encode_store(
        {"s": signal_dict(ragged, axes, title="s", metadata=markers())}, consolidated=False
    )
    words = np.array(["alpha", "µm", ""], dtype=object)
    blobs = np.array([b"\x00\x01", b"", b"xyz"], dtype=object)
    records = np.array([{"a": 1}, [1, 2], "s"], dtype=object)
    for name, flt, value in (
        ("words", {"id": "vlen-utf8"}, words),
        ("blobs", {"id": "vlen-bytes"}, blobs),
        ("records", {"id": "json2", "encoding": "utf-8"}, records),
    ):
        set_data(
            items,
            value,
            (3,),
            filters=[flt],
            path=f"{SIG}/original_metadata/{name}",
            fill_value=None,
        )
    url = place(items, tmp_path / "objects.zspy")
    ds = intake_zspy.open_dataset(url)
    lazy = intake_zspy.open_dataset(url, chunks={})["data"].compute()
    tree = intake_zspy.open_datatree(url)
    for values in (ds["data"].values, lazy.values, tree["s"]["data"].values):
        assert values.shape == (2, 3)
        for (i, j), item in np.ndenumerate(values):
            assert item.dtype == np.dtype("<i8")
            np.testing.assert_array_equal(item, ragged[i, j])
    kwargs = ds.attrs["metadata"]["Markers"]["pts"]["kwargs"]
    assert kwargs["offsets"][3].shape == (4, 2)
    np.testing.assert_array_equal(kwargs["offsets"][3], np.arange(8.0).reshape(4, 2))
    assert [list(t) for t in kwargs["texts"]] == [
        [f"t{i}{j}" for j in range(i + 1)] for i in range(4)
    ]
    original = ds.attrs["original_metadata"]
    assert list(original["words"]) == ["alpha", "µm", ""]
    assert list(original["blobs"]) == [b"\x00\x01", b"", b"xyz"]
    assert list(original["records"]) == [{"a": 1}, [1, 2], "s"]


#: name: (declared compressor, declared filters); the chunks are encoded with sane ones
BAD_PARAMETERS: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]] | None]] = {
    "blosc-cname-evil": ({**BLOSC, "cname": "evil"}, None),
    "blosc-clevel-str": ({**BLOSC, "clevel": "9"}, None),
    "blosc-shuffle-7": ({**BLOSC, "shuffle": 7}, None),
    "gzip-level-99": ({"id": "gzip", "level": 99}, None),
    "zlib-level-str": ({"id": "zlib", "level": "1"}, None),
    "zlib-unknown-parameter": ({"id": "zlib", "level": 1, "evil": True}, None),
    "delta-object": (None, [{"id": "delta", "dtype": "|O"}]),
    "shuffle-elementsize-0": (None, [{"id": "shuffle", "elementsize": 0}]),
}
_SANE = {
    "blosc": BLOSC,
    "gzip": {"id": "gzip", "level": 1},
    "zlib": {"id": "zlib", "level": 1},
    "delta": {"id": "delta", "dtype": "<f8"},
    "shuffle": {"id": "shuffle", "elementsize": 8},
}


@pytest.mark.parametrize("name", sorted(BAD_PARAMETERS))
def test_bad_parameters_of_allowed_codec(tmp_path: Path, name: str) -> None:
    compressor, filters = BAD_PARAMETERS[name]
    sane_compressor = None if compressor is None else _SANE[compressor["id"]]
    sane_filters = [_SANE[f["id"]] for f in filters or ()]
    chunks = encode_chunks(DATA, CHUNKS, compressor=sane_compressor, filters=sane_filters)
    items = base_items()
    put_array(
        items,
        DATA_KEY,
        zarray(DATA.shape, CHUNKS, "<f8", compressor=compressor, filters=filters),
        chunks,
    )
    url = place(items, tmp_path / f"{name}.zspy")
    codec_id = (compressor or (filters or [{}])[0])["id"]
    expect(UnsupportedCodecError, url, DATA_KEY, codec_id)


def test_vlen_array_with_object_element_dtype(tmp_path: Path) -> None:
    items = markers_items()
    doc = json.loads(items[f"{MARKERS}/offsets/.zarray"])
    doc["filters"] = [{"id": "vlen-array", "dtype": "|O"}]
    items[f"{MARKERS}/offsets/.zarray"] = dumps(doc)
    url = place(items, tmp_path / "vlen-object.zspy")
    expect(UnsupportedCodecError, url, f"{MARKERS}/offsets", "vlen-array")


# == chunks that decode shorter than declared: process memory returned as data ==========

SHORT_COMPRESSORS = ("zlib", "gzip", "bz2", "lzma", "zstd", "lz4", "blosc-lz4")


@pytest.mark.parametrize("variant", ["itemsize", "chunk-shape", "empty"])
@pytest.mark.parametrize("name", SHORT_COMPRESSORS)
def test_chunk_shorter_than_declared(tmp_path: Path, name: str, variant: str) -> None:
    compressor = GOOD_COMPRESSORS[name]
    assert compressor is not None
    items = base_items()
    canonical = codec(compressor).get_config()
    if variant == "itemsize":  # declared <f8, stored as <f4: half the bytes
        chunks = encode_chunks(DATA.astype("<f4"), CHUNKS, compressor=compressor)
        doc = zarray(DATA.shape, CHUNKS, "<f8", compressor=canonical)
    elif variant == "chunk-shape":  # declared one (4, 5) chunk, stored a (2, 5) block
        chunks = {"0/0": encode_chunks(DATA[:2], CHUNKS, compressor=compressor)["0/0"]}
        doc = zarray(DATA.shape, DATA.shape, "<f8", compressor=canonical)
    else:  # a chunk that decompresses to nothing
        chunks = {"0/0": bytes(codec(compressor).encode(b""))}
        doc = zarray(DATA.shape, CHUNKS, "<f8", compressor=canonical)
    put_array(items, DATA_KEY, doc, chunks)
    url = place(items, tmp_path / "short.zspy")
    expect(ChunkDecodeError, url, re.compile(rf"{DATA_KEY}/[01]/0\b"))


def test_object_codec_with_numeric_dtype(tmp_path: Path) -> None:
    """A vlen-array filter decodes to objects: their addresses must not come back as int64."""
    items = base_items()
    ragged = np.empty((4, 5), dtype=object)
    for index in np.ndindex(4, 5):
        ragged[index] = np.arange(3, dtype="<i8")
    flt = {"id": "vlen-array", "dtype": "<i8"}
    chunks = encode_chunks(ragged, (4, 5), filters=[flt])
    put_array(items, DATA_KEY, zarray((4, 5), (4, 5), "<i8", filters=[flt]), chunks)
    url = place(items, tmp_path / "pointers.zspy")
    expect_format_error(url, DATA_KEY)
