"""Hostile documents: damaged or invalid metadata, zip members and layout.

Every error that is not ours (malformed ragged shapes, msgpack extension types, absurd sizes,
damaged or truncated zips, bad axis expressions, deeply nested JSON, oversized documents,
invalid ``.zarray`` fields, separators, ``_bs_`` attributes, axis fields and functional
parameters, axis groups that do not match the dimensions) must be a ``ZspyError`` naming the
store URL and the path inside it, never a ``MemoryError`` or ``RecursionError``. Reads that
could allocate absurd amounts of memory run in a subprocess (with an address-space limit).
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from intake_zspy.errors import DamagedStoreError, LimitExceededError
from intake_zspy.format.limits import set_limits
from tests.builders import encode_store, signal_dict, uniform_axis
from tests.hostile import (
    CHUNKS,
    DATA,
    DATA_KEY,
    FIRST_CHUNK,
    MARKERS,
    SIG,
    base_items,
    check_isolated,
    codec,
    consolidate,
    dumps,
    edit_doc,
    encode_chunks,
    expect,
    expect_format_error,
    markers_items,
    place,
    read,
    read_isolated,
    set_data,
)

# == errors that are not ours: every one must be a ZspyError naming store and path ======


def _ragged_items() -> dict[str, bytes]:
    ragged = np.empty((2, 3), dtype=object)
    for i, j in np.ndindex(2, 3):
        ragged[i, j] = np.arange(2 * (i + j + 1), dtype="<f8").reshape(i + j + 1, 2)
    return encode_store(
        {"s": signal_dict(ragged, [uniform_axis(2), uniform_axis(3)], title="s")},
        consolidated=False,
    )


def _shapes_table(shapes: list[Any], shape: Sequence[int]) -> np.ndarray:
    table = np.empty(len(shapes), dtype=object)
    for i, s in enumerate(shapes):
        table[i] = np.asarray(s, dtype="<i8")
    return table.reshape(shape)


@pytest.mark.parametrize(
    ("shapes", "table_shape"),
    [
        ([[1, 2], [2, 2], [3, 3], [2, 2], [3, 2], [4, 2]], (2, 3)),  # 9 elements for 6
        ([[1, 2], [2, 2], [-1], [2, 2], [3, 2], [4, 2]], (2, 3)),  # a negative dimension
        ([[1, 2], [2, 2], [3, -2], [2, 2], [3, 2], [4, 2]], (2, 3)),
        ([[1, 2], [2, 2], [3, 2], [2, 2], [3, 2], [4, 2]], (6,)),  # wrong ndim
    ],
    ids=["counts", "negative", "negative-product", "ndim"],
)
def test_malformed_ragged_shapes(
    tmp_path: Path, shapes: list[Any], table_shape: tuple[int, ...]
) -> None:
    items = _ragged_items()
    table = _shapes_table(shapes, table_shape)
    set_data(
        items,
        table,
        table_shape,
        filters=[{"id": "vlen-array", "dtype": "<i8"}],
        path=f"{SIG}/_ragged_shapes_data",
    )
    url = place(items, tmp_path / "ragged.zspy")
    expect_format_error(url, f"{SIG}/")


def test_msgpack_extension_type(tmp_path: Path) -> None:
    items = markers_items()
    key = f"{MARKERS}/texts/0"
    comp = codec(json.loads(items[f"{MARKERS}/texts/.zarray"])["compressor"])
    raw = comp.decode(items[key]) if comp is not None else items[key]
    decoded = msgpack.unpackb(bytes(raw), raw=False)
    decoded[0] = msgpack.ExtType(42, b"\x00\x01")
    payload = msgpack.packb(decoded, use_bin_type=True)
    items[key] = comp.encode(payload) if comp is not None else payload
    url = place(items, tmp_path / "ext.zspy")
    expect_format_error(url, f"{MARKERS}/texts")


def _absurd(kind: str) -> dict[str, bytes]:
    items = base_items()
    key = f"{DATA_KEY}/.zarray"
    if kind == "huge-shape":
        edit_doc(items, key, {"shape": [10**15, 10**15]})
        for i in (0, 1):
            edit_doc(items, f"{SIG}/axis-{i}/.zattrs", {"size": 10**15})
    elif kind == "huge-chunks":
        edit_doc(items, key, {"chunks": [2**40, 5]})
    elif kind == "huge-metadata-array":  # metadata arrays are read whole when opening
        items = base_items(original_metadata={"values": np.arange(4.0)})
        edit_doc(items, f"{SIG}/original_metadata/values/.zarray", {"shape": [10**15]})
    elif kind == "long-axis":
        edit_doc(items, key, {"shape": [2**40, 5]})
        edit_doc(items, f"{SIG}/axis-0/.zattrs", {"size": 2**40})
    else:
        assert kind == "many-dims"
        edit_doc(items, key, {"shape": [1] * 40, "chunks": [1] * 40})
        for chunk in [k for k in items if k.startswith(f"{DATA_KEY}/") and k[-1].isdigit()]:
            del items[chunk]  # missing chunks read as the fill value
        for i in range(40):
            edit_doc(items, f"{SIG}/axis-{i}/.zgroup", {"zarr_format": 2})
            edit_doc(items, f"{SIG}/axis-{i}/.zattrs", dict(uniform_axis(1)))
    return items


ABSURD = ("huge-shape", "huge-chunks", "huge-metadata-array", "long-axis", "many-dims")


@pytest.fixture(scope="module")
def absurd_reads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("absurd")
    urls = {kind: place(_absurd(kind), root / f"{kind}.zspy") for kind in ABSURD}
    outcomes = read_isolated(list(urls.values()))
    return {kind: (url, outcomes[url]) for kind, url in urls.items()}


@pytest.mark.parametrize("kind", ABSURD)
def test_absurd_sizes_are_format_errors_not_memory_errors(
    absurd_reads: dict[str, Any], kind: str
) -> None:
    url, outcomes = absurd_reads[kind]
    check_isolated(outcomes, "ZspyFormatError", url, SIG)


def test_non_numeric_axis_scale(tmp_path: Path) -> None:
    items = base_items()
    edit_doc(items, f"{SIG}/axis-1/.zattrs", {"scale": "abc"})
    expect_format_error(place(items, tmp_path / "scale.zspy"), f"{SIG}/axis-1")


def _central_entry(raw: bytes, name: str) -> int:
    """Offset of ``name``'s entry in the zip's central directory."""
    pos = raw.find(b"PK\x01\x02")
    while pos != -1:
        size = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46 : pos + 46 + size] == name.encode():
            return pos
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise KeyError(name)


def _damage_member(path: Path, name: str, how: str) -> None:
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    local = info.header_offset
    central = _central_entry(bytes(raw), name)
    if how == "crc":
        n, m = struct.unpack_from("<HH", raw, local + 26)
        raw[local + 30 + n + m + info.file_size // 2] ^= 0x01
    elif how == "method":
        struct.pack_into("<H", raw, local + 8, 99)
        struct.pack_into("<H", raw, central + 10, 99)
    else:
        assert how == "encrypted"
        for offset in (local + 6, central + 8):
            flags = struct.unpack_from("<H", raw, offset)[0]
            struct.pack_into("<H", raw, offset, flags | 0x1)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("member", [".zmetadata", FIRST_CHUNK])
@pytest.mark.parametrize("how", ["crc", "method", "encrypted"])
def test_damaged_zip_member(tmp_path: Path, member: str, how: str) -> None:
    url = place(base_items(), tmp_path / "damaged.zspy", "zip")
    _damage_member(Path(url), member, how)
    expect(DamagedStoreError, url, member)


@pytest.mark.parametrize(
    "form",
    [
        "{path}",
        "zip::{path}",
        "zip::file://{path}",
        "simplecache::zip::file://{path}",
        "zip::simplecache::file://{path}",
    ],
)
def test_truncated_zip_names_the_url(tmp_path: Path, form: str) -> None:
    whole = Path(place(base_items(), tmp_path / "whole.zspy", "zip")).read_bytes()
    path = tmp_path / "truncated.zip"
    path.write_bytes(whole[: len(whole) // 2])
    url = form.format(path=path)
    options = {"simplecache": {"cache_storage": str(tmp_path / "cache")}} if "cache" in url else {}
    expect(DamagedStoreError, url, storage_options=options or None)


@pytest.mark.parametrize("expression", ["x +", "foo(x)", "a * x + ", "x ** ** 2"])
def test_bad_axis_expression_names_the_store(tmp_path: Path, expression: str) -> None:
    items = base_items()
    edit_doc(
        items,
        f"{SIG}/axis-1/.zattrs",
        {"_type": "FunctionalDataAxis", "expression": expression, "a": 2.0},
    )
    items[f"{SIG}/axis-1/x/.zgroup"] = dumps({"zarr_format": 2})
    items[f"{SIG}/axis-1/x/.zattrs"] = dumps(uniform_axis(5, navigate=False))
    expect_format_error(place(items, tmp_path / "expr.zspy"), f"{SIG}/axis-1", expression)


@pytest.mark.parametrize("consolidated", [False, True])
@pytest.mark.parametrize("nesting", ["lists", "objects"])
def test_deeply_nested_json(tmp_path: Path, consolidated: bool, nesting: str) -> None:
    depth = 2000
    deep = "[" * depth + "]" * depth if nesting == "lists" else '{"a": ' * depth + "1" + "}" * depth
    key = f"{SIG}/original_metadata/.zattrs"
    items = base_items()
    items[key] = b'{"deep": "PLACEHOLDER"}'
    if consolidated:
        consolidate(items)
        items[".zmetadata"] = items[".zmetadata"].replace(b'"PLACEHOLDER"', deep.encode())
    items[key] = items[key].replace(b'"PLACEHOLDER"', deep.encode())
    url = place(items, tmp_path / "deep.zspy", consolidated=False)
    for error in expect_format_error(url):
        assert key in str(error) or ".zmetadata" in str(error), str(error)


def test_document_size_limit(tmp_path: Path) -> None:
    url = place(base_items(), tmp_path / "big.zspy")
    assert Path(url, ".zmetadata").stat().st_size > 1000
    with set_limits(max_document_bytes=1000):
        errors = expect(LimitExceededError, url, ".zmetadata")
    assert all("max_document_bytes" in str(e) or "1000" in str(e) for e in errors), errors
    with set_limits(max_document_bytes=10**6):
        np.testing.assert_array_equal(read(url)["data"].values, DATA)
    np.testing.assert_array_equal(read(url)["data"].values, DATA)


# == invalid documents ==================================================================


@pytest.fixture
def int_store(tmp_path: Path) -> Callable[[Mapping[str, Any]], str]:
    """An int64 store whose data ``.zarray`` gets some fields changed."""

    def make(changes: Mapping[str, Any]) -> str:
        data = DATA.astype("<i8")
        items = base_items(data)
        edit_doc(items, f"{DATA_KEY}/.zarray", changes)
        return place(items, tmp_path / "edited.zspy")

    return make


@pytest.mark.parametrize(
    "changes",
    [
        {"dtype": None},
        {"dtype": "<i9"},
        {"dtype": 8},
        {"shape": [4.0, 5]},
        {"shape": [4.5, 5]},
        {"shape": [-4, 5]},
        {"shape": "45"},
        {"chunks": [2.0, 5]},
        {"chunks": [0, 5]},
        {"chunks": [2]},
        {"order": "X"},
        {"order": None},
        {"fill_value": "abc"},
        {"fill_value": [1, 2]},
        {"fill_value": 1.5},
        {"fill_value": True},
        {"dimension_separator": "-"},
        {"compressor": "blosc"},
        {"filters": {"id": "shuffle"}},
        {"zarr_format": "2"},
    ],
    ids=lambda c: "-".join(f"{k}={v!r}" for k, v in c.items()),
)
def test_invalid_zarray_field(int_store: Callable[[Mapping[str, Any]], str], changes: Any) -> None:
    expect_format_error(int_store(changes), DATA_KEY)


def test_dimension_separator_cannot_leave_the_store(tmp_path: Path) -> None:
    items = base_items()
    edit_doc(items, f"{DATA_KEY}/.zarray", {"dimension_separator": "/../../../../../"})
    url = place(items, tmp_path / "store" / "sep.zspy")
    # what a reader following the separator would read: a chunk planted outside the store
    (tmp_path / "store" / "0").write_bytes(encode_chunks(DATA * 0 + 666, CHUNKS)["0/0"])
    expect_format_error(url, DATA_KEY)


def test_bytes_attribute_must_hold_text(tmp_path: Path) -> None:
    items = base_items()
    key = f"{SIG}/original_metadata/.zattrs"
    items[key] = dumps({"_bs_blob": 1_000_000})
    expect_format_error(place(items, tmp_path / "bs.zspy"), f"{SIG}/original_metadata", "_bs_blob")


@pytest.mark.parametrize(
    "changes",
    [
        {"navigate": "False"},
        {"is_binned": "no"},
        {"scale": True},
        {"offset": [0.0]},
        {"size": "5"},
        {"name": ["E"]},
        {"_type": "NoSuchAxis"},
    ],
    ids=lambda c: "-".join(f"{k}={v!r}" for k, v in c.items()),
)
def test_invalid_axis_field(tmp_path: Path, changes: dict[str, Any]) -> None:
    items = base_items()
    edit_doc(items, f"{SIG}/axis-1/.zattrs", changes)
    expect_format_error(place(items, tmp_path / "axis.zspy"), f"{SIG}/axis-1")


@pytest.mark.parametrize("value", [None, "abc", [1.0], {"v": 1}])
def test_functional_axis_bad_parameter(tmp_path: Path, value: Any) -> None:
    items = base_items()
    edit_doc(
        items,
        f"{SIG}/axis-1/.zattrs",
        {"_type": "FunctionalDataAxis", "expression": "a * x + b", "a": value, "b": 1.0},
    )
    items[f"{SIG}/axis-1/x/.zgroup"] = dumps({"zarr_format": 2})
    items[f"{SIG}/axis-1/x/.zattrs"] = dumps(uniform_axis(5, navigate=False))
    expect_format_error(place(items, tmp_path / "param.zspy"), f"{SIG}/axis-1")


# == inconsistent layout ================================================================


def test_more_axis_groups_than_dimensions(tmp_path: Path) -> None:
    items = base_items()
    items[f"{SIG}/axis-2/.zgroup"] = dumps({"zarr_format": 2})
    items[f"{SIG}/axis-2/.zattrs"] = dumps(uniform_axis(3, navigate=False))
    expect_format_error(place(items, tmp_path / "axes.zspy"), SIG, "axis-2")


def test_fewer_axis_groups_than_dimensions(tmp_path: Path) -> None:
    items = base_items()
    for key in [k for k in items if k.startswith(f"{SIG}/axis-1/")]:
        del items[key]
    expect_format_error(place(items, tmp_path / "axes.zspy"), SIG)
