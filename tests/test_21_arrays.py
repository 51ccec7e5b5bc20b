"""Zarr v2 array decoding, checked against arrays written by zarr-python 3 itself.

zarr writes the ``.zarray`` and chunks (``zarr_format=2``); :class:`V2Array` reads them
back through :func:`open_store` and must agree with numpy indexing of the original data.
Object arrays, which zarr 3 cannot write, are built by hand with numcodecs as zspy does.
"""

from __future__ import annotations

import itertools
import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numcodecs
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zarr.storage import FsspecStore, LocalStore, MemoryStore

from intake_zspy.errors import ChunkDecodeError, UnsupportedCodecError, ZspyFormatError
from intake_zspy.format.arrays import ArrayMeta, V2Array
from intake_zspy.storage import KeyValueStore, open_store
from tests.builders import CountingStore

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")

BLOSC = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
RNG_SEED = 20240611


@pytest.fixture(params=["dir", "zarr-memory", "fsspec-memory"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """(zarr store to write with, what to hand to ``open_store``)."""
    if request.param == "dir":
        yield LocalStore(tmp_path), tmp_path
    elif request.param == "zarr-memory":
        store = MemoryStore()
        yield store, store
    else:
        url = f"memory://test-20-arrays-{uuid.uuid4().hex}/a.zspy"
        yield FsspecStore.from_url(url), url
        fsspec.filesystem("memory").rm(url.split("/a.zspy")[0], recursive=True)


def write(store: Any, data: np.ndarray, chunks: tuple[int, ...], *, name: str = "arr",
          sep: str = "/", compressor: Any = BLOSC, fill_value: Any = None,
          order: str = "C") -> zarr.Array:  # fmt: skip
    arr = zarr.create_array(
        store=store, name=name, shape=data.shape, chunks=chunks, dtype=data.dtype,
        zarr_format=2, compressors=compressor, fill_value=fill_value, order=order,
        chunk_key_encoding={"name": "v2", "separator": sep}, config={"write_empty_chunks": True},
    )  # fmt: skip
    arr[...] = data
    return arr


def open_v2(location: Any, path: str = "arr") -> V2Array:
    store = location if isinstance(location, KeyValueStore) else open_store(location)
    meta = ArrayMeta.from_json(json.loads(store.get(f"{path}/.zarray")), path)
    return V2Array(store, path, meta)


def sample(dtype: Any, shape: tuple[int, ...], rng: np.random.Generator, nan: bool = True
           ) -> np.ndarray:  # fmt: skip
    dt = np.dtype(dtype)
    if dt.subdtype is not None:
        return sample(dt.subdtype[0], shape + dt.subdtype[1], rng, nan=False)
    if dt.names:
        out = np.zeros(shape, dt)
        for name in dt.names:
            out[name] = sample(dt[name], shape, rng, nan=False)
        return out
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        native = dt.newbyteorder("=")
        return rng.integers(info.min, info.max, shape, dtype=native, endpoint=True).astype(dt)
    if dt.kind in "fc":
        out = (rng.standard_normal(shape) * 100).astype(dt)
        if dt.kind == "c":
            out = out + 1j * rng.standard_normal(shape).astype(dt)
        out.reshape(-1)[:nan] = np.nan
        return out.astype(dt)
    if dt.kind in "mM":
        return rng.integers(-(2**40), 2**40, shape).astype(dt)
    words = ["", "a", "bc", "def", "ghij", "klmno"]
    return np.array(rng.choice(words, shape)).astype(dt)


DTYPES = ["i1", "<i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8",
          "<c8", "<c16", "?", ">f4", ">i2", ">u8", ">c16", "<M8[ns]", ">m8[s]", "S5", "<U3",
          [("a", "<f4"), ("b", ">i2"), ("c", "?")]]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("sep", "compressor"), [("/", BLOSC), (".", None)], ids=["nested", "flat"])
def test_dtypes(place: tuple[Any, Any], dtype: Any, sep: str, compressor: Any) -> None:
    writer, location = place
    data = sample(dtype, (7, 5), np.random.default_rng(RNG_SEED))  # edge chunks on both axes
    write(writer, data, (3, 2), sep=sep, compressor=compressor)
    array = open_v2(location)
    assert array.meta.separator == sep
    assert f"arr/2{sep}2" in open_store(location).list()
    for sel in [None, (slice(None), slice(None)), (slice(1, 6, 2), slice(None, None, -1))]:
        result = array.read(sel)
        assert result.dtype == data.dtype
        np.testing.assert_array_equal(result, data[sel or ...])


def test_fortran_order(tmp_path: Path) -> None:
    data = np.arange(35.0).reshape(7, 5)
    write(LocalStore(tmp_path), data, (3, 2), order="F")
    array = open_v2(tmp_path)
    assert array.meta.order == "F"
    np.testing.assert_array_equal(array.read(), data)
    np.testing.assert_array_equal(array.read((slice(2, 5), slice(1, 4))), data[2:5, 1:4])


def test_structured_with_subarray_field(tmp_path: Path) -> None:
    """zarr 3 drops the field shape of ``("values", "<f8", (2,))``; write it by hand."""
    dt = np.dtype([("values", "<f8", (2,)), ("std", "<f8"), ("is_set", "?")])
    data = sample(dt, (5,), np.random.default_rng(RNG_SEED))
    descr = [["values", "<f8", [2]], ["std", "<f8"], ["is_set", "|b1"]]
    chunks = {"0": data[:3].tobytes(), "1": np.resize(data[3:], 3).tobytes()}
    overrides = {"dtype": descr, "shape": [5], "chunks": [3], "fill_value": None}
    write_raw(tmp_path, "arr", overrides, chunks, BLOSC)
    result = open_v2(tmp_path).read()
    assert result.dtype == dt
    np.testing.assert_array_equal(result, data)


def test_nested_structured_dtype() -> None:
    descr = [["pos", [["x", "<f4"], ["y", "<f4"]]], ["n", "<i4"]]
    meta = ArrayMeta.from_json(doc(dtype=descr, fill_value=None), "arr")
    assert meta.dtype == np.dtype([("pos", [("x", "<f4"), ("y", "<f4")]), ("n", "<i4")])


# -- fill values and missing chunks --------------------------------------------------------

FILLS = [
    ("<f8", np.nan), ("<f4", -np.inf), ("<f2", np.nan), (">f8", 2.5), ("<c8", 1 + 2j),
    ("<i2", -7), ("<u8", 2**64 - 1), ("?", True), ("<M8[ns]", np.datetime64("NaT")),
    ("<m8[s]", np.timedelta64(5, "s")),
    (np.dtype([("a", "<f4"), ("b", "<i2")]), np.void((1.5, 3), dtype=[("a", "<f4"), ("b", "<i2")])),
    pytest.param("<c16", complex(np.nan, 1)),
    pytest.param("S3", b"ab"),
    pytest.param("S5", b""),
    pytest.param("<U3", "ab"),
]  # fmt: skip


@pytest.mark.parametrize(("dtype", "fill"), FILLS, ids=lambda v: str(v).replace(" ", ""))
def test_missing_chunks_read_as_fill_value(tmp_path: Path, dtype: Any, fill: Any) -> None:
    data = sample(dtype, (6, 4), np.random.default_rng(RNG_SEED))
    reference = write(LocalStore(tmp_path), data, (2, 3), fill_value=fill)
    for key in ["arr/0/0", "arr/2/1"]:
        (tmp_path / key).unlink()
    expected = reference[...]  # zarr's own reading of the same store
    array = open_v2(tmp_path)
    np.testing.assert_array_equal(array.read(), expected)
    np.testing.assert_array_equal(array.read((slice(5, 0, -2), slice(None))), expected[5:0:-2])
    got, want = array.read((slice(0, 1), slice(0, 1)))[0, 0], np.asarray(fill, dtype)[()]
    assert got.tobytes() == want.tobytes()  # the fill value, bit for bit


def test_no_fill_value_reads_zeros(tmp_path: Path) -> None:
    write(LocalStore(tmp_path), np.ones((4,), "<i4"), (2,), fill_value=None)
    (tmp_path / "arr" / "1").unlink()
    np.testing.assert_array_equal(open_v2(tmp_path).read(), [1, 1, 0, 0])


def test_zero_dimensional(place: tuple[Any, Any]) -> None:
    writer, location = place
    write(writer, np.array(3.5), (), fill_value=np.nan)
    array = open_v2(location)
    assert "arr/0" in array.store.list()
    for sel in [(), None]:
        result = array.read(sel)
        assert (result.shape, result.dtype, result[()]) == ((), np.float64, 3.5)
    if isinstance(location, Path):
        (location / "arr" / "0").unlink()
        assert np.isnan(open_v2(location).read(())[()])


@pytest.mark.parametrize(
    "sel",
    [(slice(3, 3), slice(None)), (slice(5, 2), slice(None)), (slice(None), slice(2, 5, -1)),
     (slice(10, 20), slice(1, 2)), (slice(-1, -8, 1), slice(None, None, -1))],
)  # fmt: skip
def test_empty_selection_fetches_nothing(tmp_path: Path, sel: tuple[slice, ...]) -> None:
    data = np.arange(35, dtype="<i4").reshape(7, 5)
    write(LocalStore(tmp_path), data, (3, 2))
    store = CountingStore(open_store(tmp_path))
    array = open_v2(store)
    store.requested.clear()
    result = array.read(sel)
    assert (result.shape, result.dtype) == (data[sel].shape, data.dtype)
    assert store.requested == []


def test_empty_array(tmp_path: Path) -> None:
    write(LocalStore(tmp_path), np.zeros((0, 4), "<f4"), (1, 2))
    result = open_v2(tmp_path).read()
    assert (result.shape, result.dtype) == ((0, 4), np.float32)


@pytest.mark.parametrize(
    "sel",
    [(slice(None, None, -1), slice(None)), (slice(5, 1, -2), slice(None, None, -3)),
     (slice(-1, -8, -3), slice(4, None, -1)), (slice(None, None, -7), slice(1, 2, -1)),
     (slice(6, 5, -1), slice(0, 5, 4)), (slice(None, None, -100), slice(-100, 100, 3))],
)  # fmt: skip
def test_negative_and_large_steps(place: tuple[Any, Any], sel: tuple[slice, ...]) -> None:
    writer, location = place
    data = np.arange(35.0).reshape(7, 5)
    write(writer, data, (3, 2))
    np.testing.assert_array_equal(open_v2(location).read(sel), data[sel])


# -- property: random shapes, chunks, selections, missing chunks ---------------------------

_BOUND = st.one_of(st.none(), st.integers(-8, 8))
_SLICES = st.builds(slice, _BOUND, _BOUND, st.one_of(st.none(), st.integers(-4, 4).filter(bool)))


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, ...]:
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=1, max_size=4)))
    low = [1 if len(shape) <= 2 else max(1, math.ceil(n / 3)) for n in shape]  # <= 81 chunks
    chunks = tuple(draw(st.integers(lo, n + 2)) for lo, n in zip(low, shape, strict=True))
    grid = [range(math.ceil(n / c)) for n, c in zip(shape, chunks, strict=True)]
    missing = draw(st.sets(st.sampled_from(list(itertools.product(*grid)) or [None])))
    sel = tuple(draw(_SLICES) for _ in shape)
    return shape, chunks, missing - {None}, sel, draw(st.sampled_from(["/", "."]))


@settings(max_examples=120, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(case=cases())
def test_random_selections_match_numpy(case: tuple[Any, ...]) -> None:
    shape, chunks, missing, sel, sep = case
    data = np.arange(math.prod(shape), dtype="<i4").reshape(shape)
    store_dict: dict[str, Any] = {}
    write(MemoryStore(store_dict=store_dict), data, chunks, sep=sep, fill_value=-1)
    expected = data.copy()
    for idx in missing:
        del store_dict["arr/" + sep.join(map(str, idx))]
        expected[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks, strict=True))] = -1
    result = open_v2(MemoryStore(store_dict=store_dict)).read(sel)
    assert result.dtype == data.dtype
    np.testing.assert_array_equal(result, expected[sel])


# -- object arrays (zarr 3 cannot write these) ---------------------------------------------


def doc(**overrides: Any) -> dict[str, Any]:
    base = {"zarr_format": 2, "shape": [5], "chunks": [2], "dtype": "<f8", "fill_value": 0,
            "order": "C", "filters": None, "compressor": None}  # fmt: skip
    return base | overrides


def write_raw(root: Path, path: str, overrides: dict[str, Any], chunks: dict[str, Any],
              compressor: Any = None, filters: tuple[Any, ...] = ()) -> None:  # fmt: skip
    """Write a ``.zarray`` and chunks encoded with numcodecs, as zarr 2 would."""
    compressor_json = compressor.get_config() if compressor is not None else None
    filters_json = [f.get_config() for f in filters] or None
    (root / path).mkdir(parents=True, exist_ok=True)
    meta = doc(**overrides, compressor=compressor_json, filters=filters_json)
    (root / path / ".zarray").write_text(json.dumps(meta))
    for key, chunk in chunks.items():
        buf = chunk
        for codec in filters:
            buf = codec.encode(buf)
        (root / path / key).parent.mkdir(parents=True, exist_ok=True)
        (root / path / key).write_bytes(compressor.encode(buf) if compressor else bytes(buf))


def objects(*items: Any) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def test_vlen_array(tmp_path: Path) -> None:
    elements = [np.arange(n, dtype="<f8") * 1.5 for n in (3, 0, 1, 4, 2)]
    chunks = {"0": objects(*elements[:2]), "1": objects(*elements[2:4]),
              "2": objects(elements[4], np.zeros(0))}  # fmt: skip
    write_raw(tmp_path, "kw/offsets", {"dtype": "|O"}, chunks, BLOSC,
              (numcodecs.VLenArray("<f8"),))  # fmt: skip
    array = open_v2(tmp_path, "kw/offsets")
    assert array.meta.filters == ({"id": "vlen-array", "dtype": "<f8"},)
    result = array.read()
    assert (result.dtype, result.shape) == (object, (5,))
    for got, want in zip(result, elements, strict=True):
        np.testing.assert_array_equal(got, want, strict=True)
    assert [len(v) for v in array.read((slice(None, None, -2),))] == [2, 1, 3]


def test_msgpack2_with_missing_chunk(tmp_path: Path) -> None:
    items = ["a", "béé", [1, 2], ["x", 3.5, "y"], "", "z"]
    msgpack = numcodecs.MsgPack(raw=False, use_bin_type=True, use_single_float=False)
    chunks = {"0": objects(*items[:2]), "1": objects(*items[2:4])}
    write_raw(tmp_path, "kw/texts", {"dtype": "|O", "shape": [6]}, chunks, BLOSC, (msgpack,))
    array = open_v2(tmp_path, "kw/texts")
    assert array.meta.filters[0]["id"] == "msgpack2"
    assert array.read().tolist() == [*items[:4], 0, 0]  # fill_value 0 for chunk 2
    assert array.read((slice(3, 1, -1),)).tolist() == [["x", 3.5, "y"], [1, 2]]


def test_vlen_utf8_two_dimensional(tmp_path: Path) -> None:
    full = np.array([[f"r{i}c{j}é" * j for j in range(4)] for i in range(3)], dtype=object)
    padded = np.full((4, 6), "pad", dtype=object)  # edge chunks are stored whole
    padded[:3, :4] = full
    chunks = {f"{i}.{j}": padded[2 * i : 2 * i + 2, 3 * j : 3 * j + 3].copy()
              for i, j in itertools.product(range(2), range(2))}  # fmt: skip
    write_raw(tmp_path, "s", {"dtype": "|O", "shape": [3, 4], "chunks": [2, 3],
                              "fill_value": None}, chunks, None, (numcodecs.VLenUTF8(),))  # fmt: skip
    array = open_v2(tmp_path, "s")
    np.testing.assert_array_equal(array.read(), full)
    np.testing.assert_array_equal(array.read((slice(2, 0, -1), slice(1, 4))), full[2:0:-1, 1:4])


# -- damaged data and bad metadata ---------------------------------------------------------


def check_message(exc: pytest.ExceptionInfo[Exception], *needles: str) -> None:
    for needle in needles:
        assert needle in str(exc.value), (needle, str(exc.value))


def damaged(tmp_path: Path, data: np.ndarray, chunks: tuple[int, ...], how: str) -> None:
    write(LocalStore(tmp_path), data, chunks, compressor=None if how == "size" else BLOSC)
    chunk = tmp_path / "arr" / "0" / "1"
    raw = chunk.read_bytes()
    if how == "random":
        raw = np.random.default_rng(RNG_SEED).bytes(len(raw))
    else:  # truncated, or one item short of the chunk size
        raw = raw[: len(raw) // 2] if how == "truncated" else raw[: -data.dtype.itemsize]
    chunk.write_bytes(raw)


@pytest.mark.parametrize("how", ["random", "truncated", "size"])
@pytest.mark.parametrize("sel", [None, (slice(0, 1), slice(600, 601))], ids=["all", "one"])
def test_damaged_chunk(tmp_path: Path, how: str, sel: Any) -> None:
    data = np.arange(2000.0).reshape(2, 1000)  # compressible: blosc really compresses
    damaged(tmp_path, data, (1, 500), how)
    array = open_v2(tmp_path)
    with pytest.raises(ChunkDecodeError) as exc:
        array.read(sel)
    check_message(exc, "'arr'", "'arr/0/1'", str(tmp_path))
    np.testing.assert_array_equal(array.read((slice(None), slice(0, 500))), data[:, :500])


def test_truncated_uncompressed_blosc_chunk(tmp_path: Path) -> None:
    damaged(tmp_path, np.arange(12.0).reshape(2, 6), (1, 3), "truncated")
    with pytest.raises(ChunkDecodeError):
        open_v2(tmp_path).read()


def test_object_chunk_with_wrong_item_count(tmp_path: Path) -> None:
    codec = numcodecs.VLenUTF8()
    write_raw(tmp_path, "arr", {"dtype": "|O", "shape": [4]},
              {"0": objects("a", "b"), "1": objects("c", "d", "e")}, None, (codec,))  # fmt: skip
    with pytest.raises(ChunkDecodeError) as exc:
        open_v2(tmp_path).read()
    check_message(exc, "'arr'", "'arr/1'")


@pytest.mark.parametrize(
    "config",
    [{"compressor": {"id": "no-such-codec"}}, {"filters": [{"id": "no-such-codec"}]},
     {"compressor": {"id": "blosc", "no_such_option": 1}}],
)  # fmt: skip
def test_unknown_codec(tmp_path: Path, config: dict[str, Any]) -> None:
    (tmp_path / "arr").mkdir()
    (tmp_path / "arr" / ".zarray").write_text(json.dumps(doc(**config)))
    (tmp_path / "arr" / "0").write_bytes(bytes(16))
    with pytest.raises(UnsupportedCodecError) as exc:
        open_v2(tmp_path).read()
    codec_id = (config.get("compressor") or config["filters"][0])["id"]
    check_message(exc, "'arr'", repr(codec_id), str(tmp_path))


@pytest.mark.parametrize(
    "bad",
    [{"zarr_format": 3}, {"zarr_format": None}, {"dtype": None}, {"shape": None},
     {"chunks": None}, {"chunks": [2, 2]}, {"chunks": [0]}, {"dtype": "<x9"},
     {"shape": "five"}, {"fill_value": "not-base64!", "dtype": "|V4"}],
)  # fmt: skip
def test_bad_zarray(bad: dict[str, Any]) -> None:
    document = {k: v for k, v in (doc() | bad).items() if v is not None or k == "fill_value"}
    with pytest.raises(ZspyFormatError) as exc:
        ArrayMeta.from_json(document, "store.zspy: array 'Experiments/a/data'")
    check_message(exc, "Experiments/a/data")


# -- fetching only what a read needs -------------------------------------------------------


@pytest.mark.parametrize(
    ("sel", "keys"),
    [((slice(4, 7), slice(5, 9)), {"1/1", "1/2", "2/1", "2/2"}),
     ((slice(0, 1), slice(0, 1)), {"0/0"}), ((slice(9, 10), slice(11, 12)), {"3/2"}),
     ((slice(8, 2, -1), slice(3, 5)), {"1/0", "1/1", "2/0", "2/1"}),
     ((slice(None), slice(4, 8)), {"0/1", "1/1", "2/1", "3/1"}),
     pytest.param((slice(0, 10, 9), slice(0, 1)), {"0/0", "3/0"})],
)  # fmt: skip
def test_read_fetches_only_touched_chunks(tmp_path: Path, sel: Any, keys: set[str]) -> None:
    data = np.arange(120, dtype="<i8").reshape(10, 12)
    write(LocalStore(tmp_path), data, (3, 4))
    store = CountingStore(open_store(tmp_path))
    array = open_v2(store)
    store.requested.clear()
    np.testing.assert_array_equal(array.read(sel), data[sel])
    assert sorted(store.requested) == sorted(f"arr/{k}" for k in keys)  # each key once
