"""``to_zspy`` never destroys or corrupts a store.

- ``overwrite=False`` refuses an existing target with ``FileExistsError`` and touches nothing;
- ``overwrite=True`` replaces the old store only once the new one is complete: a write that
  fails half-way leaves the old store intact and no staging leftovers;
- bad input fails before anything is written;
- a writer process killed (SIGKILL) mid-write leaves nothing that opens as a valid zspy:
  locally the target does not exist (new store) or is the old store (overwrite), and the
  hidden staging sibling is rejected; on S3 a new prefix is written in place and rejected.

Every check runs on each kind of target: local directory, local zip, memory, S3 prefix and
S3 zip (a real moto server, see ``tests/s3server.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import fsspec
import numcodecs.abc
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from intake_zspy import IncompleteStoreError
from intake_zspy.storage import DirectoryStore, FsspecStore, KeyValueStore

REPO = Path(__file__).resolve().parents[1]
SLOW_WRITER = Path(__file__).resolve().parent / "slow_writer.py"

S3 = pytest.mark.s3
KINDS = [
    "directory",
    "zip",
    "memory",
    pytest.param("s3", marks=S3),
    pytest.param("s3zip", marks=S3),
]


# -- data ------------------------------------------------------------------------------


def make_signal(name: str, shape: tuple[int, ...], start: float) -> xr.DataArray:
    """A 3-D spectrum image whose values start at ``start`` (distinct per signal)."""
    values = (np.arange(np.prod(shape), dtype="f4") + np.float32(start)).reshape(shape)
    return xr.DataArray(
        values,
        dims=("t", "y", "energy"),
        coords={
            "t": ("t", np.arange(shape[0]) * 0.5, {"units": "s"}),
            "energy": ("energy", 100.0 + 2.0 * np.arange(shape[2]), {"units": "eV"}),
        },
        name=name,
    )


OLD = make_signal("old", (6, 4, 16), 1000.0)
NEW = make_signal("new", (3, 4, 8), -50.0)


class Boom(RuntimeError):
    """The failure injected into a write."""


class ChunkCounter:
    """How many data chunks the ``put_spy`` fixture has seen written (and wait for more)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count = 0

    def reset(self) -> None:
        with self.cond:
            self.count = 0

    def add(self, n: int) -> None:
        with self.cond:
            self.count += n
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.count >= n, timeout=timeout)


WRITTEN = ChunkCounter()


def _failing_block(block_id: tuple[int, ...] | None = None) -> np.ndarray:
    assert block_id is not None
    if block_id[0] == 5:
        # fail once the 5 other chunks are written (and no write is in flight)
        WRITTEN.wait_for(5)
        raise Boom("block 5 cannot be computed")
    return np.full((1, 4, 16), float(block_id[0]), dtype="f4")


def failing_dask_signal() -> xr.DataArray:
    """A dask-backed signal whose last of 6 blocks raises :class:`Boom`."""
    data = da.map_blocks(
        _failing_block, chunks=((1,) * 6, (4,), (16,)), dtype="f4", meta=np.empty((0, 0, 0), "f4")
    )
    return xr.DataArray(data, dims=("t", "y", "energy"), name="failing")


SENTINEL = np.float32(-777.25)


class FailingCodec(numcodecs.abc.Codec):  # type: ignore[misc]
    """Plain bytes, except that a chunk holding :data:`SENTINEL` cannot be encoded."""

    codec_id = "intake-zspy-test-failing"

    def encode(self, buf: Any) -> bytes:
        raw = np.ascontiguousarray(buf).tobytes()
        if SENTINEL.tobytes() in raw:
            raise Boom("this chunk cannot be encoded")
        return raw

    def decode(self, buf: Any, out: Any = None) -> Any:  # pragma: no cover - never read
        raise NotImplementedError


def sentinel_signal() -> xr.DataArray:
    """An in-memory signal of 12 chunks (``chunks={"t": 1}``) whose last cannot be encoded."""
    values = np.arange(12 * 4 * 16, dtype="f4").reshape(12, 4, 16)
    values[-1, 0, 0] = SENTINEL
    return xr.DataArray(values, dims=("t", "y", "energy"), name="failing")


# -- where to write, and what is there ---------------------------------------------------


@dataclass
class Place:
    """A target of one kind, and a view of everything in its surroundings."""

    kind: str
    url: str
    options: dict[str, Any]
    store_type: str | None
    read_url: str
    fs: fsspec.AbstractFileSystem
    area: str

    def write(self, obj: Any, **kwargs: Any) -> str:
        return intake_zspy.to_zspy(
            obj, self.url, storage_options=self.options, store_type=self.store_type, **kwargs
        )

    def open(self) -> xr.DataTree:
        return intake_zspy.open_datatree(self.read_url, storage_options=self.options)

    def snapshot(self) -> dict[str, Any]:
        """Every file (with its bytes) and directory of the area around the target."""
        if self.kind in ("directory", "zip"):
            out: dict[str, Any] = {}
            for parent, dirs, files in os.walk(self.area):
                rel = Path(parent).relative_to(self.area)
                for d in dirs:
                    out[(rel / d).as_posix()] = "<dir>"
                for name in files:
                    full = Path(parent, name)
                    out[(rel / name).as_posix()] = (full.read_bytes(), full.stat().st_mtime_ns)
            return out
        if self.kind == "memory":
            store = self.fs.store
            files = {k: store[k].getvalue() for k in store if k.startswith(self.area)}
            dirs = {d: "<dir>" for d in self.fs.pseudo_dirs if d.startswith(self.area)}
            return {**files, **dirs}
        self.fs.invalidate_cache()
        keys = self.fs.find(self.area, withdirs=False)
        return self.fs.cat(keys) if keys else {}


def _area_names(place: Place) -> set[str]:
    prefix = place.area.rstrip("/") + "/"
    found = set()
    for key in place.snapshot():
        key = str(key)
        found.add(key.removeprefix(prefix).split("/")[0])
    return found


@pytest.fixture(scope="module")
def module_bucket(s3_storage_options: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """One bucket for this module's S3 tests (each test writes under its own prefix).

    A bucket (and a new s3fs client) per test would cost about a second each; the
    filesystem yielded is the cached instance ``to_zspy`` itself uses, listings uncached.
    """
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = fsspec.filesystem("s3", **s3_storage_options)
    bucket = f"writer-safety-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    try:
        yield bucket, fs
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        cleanup = fsspec.filesystem("s3", skip_instance_cache=True, **s3_storage_options)
        cleanup.rm(bucket, recursive=True)


@pytest.fixture
def make_place(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Place]:
    def make(kind: str) -> Place:
        if kind in ("directory", "zip"):
            area = tmp_path / f"area-{kind}"
            area.mkdir()
            url = str(area / "run.zspy")
            return Place(
                kind,
                url,
                {},
                "zip" if kind == "zip" else None,
                url,
                fsspec.filesystem("file"),
                str(area),
            )
        if kind == "memory":
            fs = request.getfixturevalue("memory_fs")
            url = "memory://area/run.zspy"
            return Place(kind, url, {}, None, url, fs, "/area")
        bucket, fs = request.getfixturevalue("module_bucket")
        options = dict(request.getfixturevalue("s3_storage_options"))
        area = f"{bucket}/{uuid.uuid4().hex[:8]}"
        plain = f"s3://{area}/run.zspy"
        if kind == "s3":
            return Place(kind, plain, options, None, plain, fs, area)
        # zip:: URL on write; the reader recognises the zip object by its bytes
        return Place(kind, f"zip::{plain}", options, None, plain, fs, area)

    return make


def assert_holds(place: Place, expected: xr.DataArray) -> None:
    """The store at ``place`` holds exactly the signal ``expected``, values and axes."""
    assert_url_holds(place.read_url, place.options, expected)


def assert_url_holds(url: str, options: dict[str, Any], expected: xr.DataArray) -> None:
    tree = intake_zspy.open_datatree(url, storage_options=options)
    signals = {name: node.to_dataset() for name, node in tree.children.items()}
    assert list(signals) == [expected.name]
    ds = signals[str(expected.name)]
    assert ds.attrs["title"] == expected.name
    assert ds["data"].dims == expected.dims
    assert ds["data"].dtype == expected.dtype
    np.testing.assert_array_equal(ds["data"].values, expected.values)
    np.testing.assert_array_equal(ds["energy"].values, expected["energy"].values)
    assert ds["energy"].attrs["units"] == "eV"
    assert ds["t"].attrs["units"] == "s"


@pytest.fixture
def put_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key any store is asked to write during the test."""
    keys: list[str] = []
    lock = threading.Lock()

    def spying(original: Any) -> Any:
        def spy(self: KeyValueStore, items: Any) -> None:
            with lock:
                keys.extend(items)
            original(self, items)
            WRITTEN.add(sum(_is_data_chunk(k) for k in items))

        return spy

    WRITTEN.reset()
    for cls in (FsspecStore, DirectoryStore):
        monkeypatch.setattr(cls, "put_many", spying(cls.put_many))
    return keys


@pytest.fixture
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary directory (where zip stores are staged) for this test only."""
    path = tmp_path / "tempdir"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def _is_data_chunk(key: str) -> bool:
    head, sep, tail = key.partition("/data/")
    return bool(sep) and head.startswith("Experiments/") and not tail.startswith(".")


# -- overwrite=False --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_existing_store_is_refused_and_untouched(kind: str, make_place: Any) -> None:
    place = make_place(kind)
    place.write(OLD)
    before = place.snapshot()
    assert before
    with pytest.raises(FileExistsError, match="already exists"):
        place.write(NEW)
    with pytest.raises(FileExistsError):
        place.write(NEW, overwrite=False)
    assert place.snapshot() == before
    assert_holds(place, OLD)


@pytest.mark.parametrize("existing", ["file", "directory"])
def test_existing_non_zspy_target_is_refused_and_untouched(existing: str, tmp_path: Path) -> None:
    target = tmp_path / "run.zspy"
    if existing == "file":
        target.write_bytes(b"not a store")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        intake_zspy.to_zspy(NEW, target)
    with pytest.raises(FileExistsError):
        intake_zspy.to_zspy(NEW, target, store_type="zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.zspy"]
    if existing == "file":
        assert target.read_bytes() == b"not a store"
    else:
        assert [p.name for p in target.iterdir()] == ["notes.txt"]
        assert (target / "notes.txt").read_text() == "keep me"


def test_accessor_refuses_existing_store(tmp_path: Path) -> None:
    target = tmp_path / "run.zspy"
    assert OLD.zspy.to_zspy(target) == str(target)
    with pytest.raises(FileExistsError):
        NEW.to_dataset().zspy.to_zspy(target)
    NEW.to_dataset().zspy.to_zspy(target, overwrite=True)
    assert_url_holds(str(target), {}, NEW)


# -- overwrite=True ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_overwrite_replaces_with_new_content(
    kind: str, make_place: Any, private_tempdir: Path
) -> None:
    place = make_place(kind)
    place.write(OLD)
    assert_holds(place, OLD)
    returned = place.write(NEW, overwrite=True)
    assert returned == place.read_url
    assert_holds(place, NEW)  # one signal: nothing of the old store is left
    assert _area_names(place) == {"run.zspy"}  # no staging or backup sibling left
    assert list(private_tempdir.iterdir()) == []  # no zip staging left either
    if kind in ("directory", "memory", "s3"):
        keys = [str(k) for k in place.snapshot()]
        assert not [k for k in keys if "Experiments/old" in k]
        assert any("Experiments/new/data/" in k for k in keys)


@pytest.mark.parametrize(("first", "second"), [("local", "zip"), ("zip", "local")])
def test_overwrite_changes_store_type(first: str, second: str, tmp_path: Path) -> None:
    target = tmp_path / "run.zspy"
    intake_zspy.to_zspy(OLD, target, store_type=first)
    intake_zspy.to_zspy(NEW, target, store_type=second, overwrite=True)
    assert target.is_dir() == (second == "local")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.zspy"]
    assert_url_holds(str(target), {}, NEW)


# -- failures in the middle of a write --------------------------------------------------

FAILURES = {
    "dask-block": (failing_dask_signal, {}),
    "compressor": (sentinel_signal, {"compressor": FailingCodec(), "chunks": {"t": 1}}),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("kind", KINDS)
def test_failed_overwrite_keeps_old_store(
    kind: str, failure: str, make_place: Any, put_spy: list[str], private_tempdir: Path
) -> None:
    place = make_place(kind)
    place.write(OLD)
    before = place.snapshot()
    put_spy.clear()
    WRITTEN.reset()
    factory, kwargs = FAILURES[failure]
    with pytest.raises(Boom):
        place.write(factory(), overwrite=True, **kwargs)
    # the failing write did start writing data chunks (into its staging area) ...
    assert any(_is_data_chunk(k) for k in put_spy), put_spy
    # ... yet the old store is byte for byte intact and nothing else is left
    assert place.snapshot() == before
    assert _area_names(place) == {"run.zspy"}
    assert list(private_tempdir.iterdir()) == []
    assert_holds(place, OLD)


@pytest.mark.parametrize("kind", KINDS)
def test_failed_new_write_leaves_no_valid_store(
    kind: str, make_place: Any, private_tempdir: Path, put_spy: list[str]
) -> None:
    place = make_place(kind)
    with pytest.raises(Boom):
        place.write(failing_dask_signal())
    assert any(_is_data_chunk(k) for k in put_spy), put_spy
    assert list(private_tempdir.iterdir()) == []
    # staged elsewhere and removed, or written in place and removed
    assert place.snapshot() == {}
    with pytest.raises(FileNotFoundError):
        place.open()


#: The chunk of block 0 in :func:`in_flight_signal`: slow to encode.
SLOW_MARK = np.float32(-555.5)
ENCODING = threading.Event()


class SlowCodec(numcodecs.abc.Codec):  # type: ignore[misc]
    """Plain bytes; a chunk holding :data:`SLOW_MARK` takes 0.5 s to encode."""

    codec_id = "intake-zspy-test-slow"

    def encode(self, buf: Any) -> bytes:
        raw = np.ascontiguousarray(buf).tobytes()
        if SLOW_MARK.tobytes() in raw:
            ENCODING.set()
            time.sleep(0.5)
        return raw

    def decode(self, buf: Any, out: Any = None) -> Any:  # pragma: no cover - never read
        raise NotImplementedError


def _in_flight_block(block_id: tuple[int, ...] | None = None) -> np.ndarray:
    assert block_id is not None
    if block_id[0] == 1:
        ENCODING.wait(timeout=10)  # block 0's chunk is being encoded and written
        raise Boom("block 1 cannot be computed")
    return np.full((1, 4, 16), SLOW_MARK, dtype="f4")


def in_flight_signal() -> xr.DataArray:
    """Block 1 fails while the write of block 0 is still in flight."""
    data = da.map_blocks(
        _in_flight_block, chunks=((1, 1), (4,), (16,)), dtype="f4", meta=np.empty((0, 0, 0), "f4")
    )
    return xr.DataArray(data, dims=("t", "y", "energy"), name="in-flight")


@pytest.mark.parametrize("kind", ["directory", "zip", "memory", pytest.param("s3", marks=S3)])
def test_failed_overwrite_with_write_in_flight_leaves_nothing(
    kind: str, make_place: Any, put_spy: list[str], private_tempdir: Path
) -> None:
    place = make_place(kind)
    place.write(OLD)
    before = place.snapshot()
    WRITTEN.reset()
    ENCODING.clear()
    with dask.config.set(scheduler="threads", num_workers=2), pytest.raises(Boom):
        place.write(in_flight_signal(), overwrite=True, compressor=SlowCodec())
    WRITTEN.wait_for(1, timeout=2)  # the write in flight has landed (or was cancelled)
    assert place.snapshot() == before
    assert _area_names(place) == {"run.zspy"}
    assert list(private_tempdir.iterdir()) == []
    assert_holds(place, OLD)


# -- bad input: an error before anything is written --------------------------------------

_BASE = xr.DataArray(np.zeros((2, 3), "f4"), dims=("y", "e"), name="x")


def _datetime() -> xr.DataArray:
    values = np.array(["2020-01-01"] * 6, dtype="M8[ns]").reshape(2, 3)
    return xr.DataArray(values, dims=("y", "e"))


BAD_INPUT: dict[str, tuple[Callable[[], Any], dict[str, Any], type[Exception], str]] = {
    "dtype-datetime64": (_datetime, {}, TypeError, "datetime64.*cannot be stored"),
    "dtype-str": (
        lambda: xr.DataArray(np.array(list("abcdef")).reshape(2, 3), dims=("y", "e")),
        {},
        TypeError,
        "<U1 cannot be stored",
    ),
    "key-tuple": (
        lambda: _BASE.to_dataset().assign_attrs(metadata={"General": {"title": "t"}, (1, 2): "v"}),
        {},
        TypeError,
        r"key \(1, 2\) \(tuple\) is not a string",
    ),
    "key-object": (
        lambda: _BASE.assign_attrs(original={"a": {object(): 1}}),
        {},
        TypeError,
        "is not a string",
    ),
    "key-dotdot": (
        lambda: _BASE.to_dataset().assign_attrs(original_metadata={"..": {"b": 1}}),
        {},
        ValueError,
        "cannot be stored as a group or array name",
    ),
    "value-set": (
        lambda: _BASE.to_dataset().assign_attrs(original_metadata={"a": {"b": {1, 2}}}),
        {},
        TypeError,
        "cannot store a set",
    ),
    "value-bytes-nul": (
        lambda: _BASE.to_dataset().assign_attrs(original_metadata={"a": b"x\x00y"}),
        {},
        ValueError,
        "NUL",
    ),
    "ragged-not-object": (
        lambda: xr.Dataset({"data": _BASE}, attrs={"attributes": {"ragged": True}}),
        {},
        TypeError,
        "attrs say the signal is ragged",
    ),
    "ragged-unencodable-item": (
        lambda: xr.DataArray(np.array([np.arange(3.0), {1, 2}], dtype=object), dims=("n",)),
        {},
        TypeError,
        "object array items cannot be stored",
    ),
    "coord-str": (
        lambda: _BASE.assign_coords(e=["a", "b", "c"]),
        {},
        TypeError,
        "cannot be a HyperSpy axis",
    ),
    "two-variables": (
        lambda: xr.Dataset({"a": _BASE, "b": _BASE}),
        {},
        ValueError,
        "one data variable",
    ),
    "signal-dims-not-last": (lambda: _BASE, {"signal_dims": ["y"]}, ValueError, "last dims"),
    "chunks-unknown-dim": (lambda: _BASE, {"chunks": {"zz": 2}}, ValueError, "unknown dims"),
    "not-xarray": (lambda: np.zeros(3), {}, TypeError, "cannot write a ndarray"),
    "empty-datatree": (lambda: xr.DataTree(), {}, ValueError, "no node with data"),
}


@pytest.mark.parametrize("bad", sorted(BAD_INPUT))
@pytest.mark.parametrize("kind", ["directory", "zip", "memory"])
def test_bad_input_fails_before_writing(
    kind: str, bad: str, make_place: Any, put_spy: list[str]
) -> None:
    place = make_place(kind)
    factory, kwargs, error, match = BAD_INPUT[bad]
    with pytest.raises(error, match=match):
        place.write(factory(), **kwargs)
    assert put_spy == []
    assert place.snapshot() == {}


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        pytest.param("s3", "key-tuple", marks=S3),
        pytest.param("s3zip", "dtype-datetime64", marks=S3),
    ],
)
def test_bad_input_fails_before_writing_s3(
    kind: str, bad: str, make_place: Any, put_spy: list[str]
) -> None:
    place = make_place(kind)
    factory, kwargs, error, match = BAD_INPUT[bad]
    with pytest.raises(error, match=match):
        place.write(factory(), **kwargs)
    assert put_spy == []
    assert place.snapshot() == {}


@pytest.mark.parametrize("kind", ["directory", "zip"])
def test_bad_input_leaves_existing_store_intact(kind: str, make_place: Any) -> None:
    place = make_place(kind)
    place.write(OLD)
    before = place.snapshot()
    factory, kwargs, error, match = BAD_INPUT["key-tuple"]
    with pytest.raises(error, match=match):
        place.write(factory(), overwrite=True, **kwargs)
    assert place.snapshot() == before
    assert_holds(place, OLD)


@pytest.mark.parametrize(
    ("url", "store_type", "error", "match"),
    [
        ("http://127.0.0.1:9/run.zspy", None, ValueError, "cannot write a zspy store over http"),
        ("zip::https://127.0.0.1:9/run.zspy", None, ValueError, "cannot write"),
        ("nosuchprotocol://bucket/run.zspy", None, ValueError, "nosuchprotocol"),
        ("{tmp}/run.zspy", "hdf5", ValueError, "store_type must be"),
        ("{tmp}/a-file/run.zspy", None, NotADirectoryError, "a-file"),
        ("{tmp}/a-file/run.zspy", "zip", NotADirectoryError, "a-file"),
    ],
)
def test_unwritable_url_fails_before_writing(
    url: str,
    store_type: str | None,
    error: type[Exception],
    match: str,
    tmp_path: Path,
    put_spy: list[str],
) -> None:
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(error, match=match) as info:
        intake_zspy.to_zspy(NEW, url.format(tmp=tmp_path), store_type=store_type)
    assert not isinstance(info.value, FileExistsError)  # the target does not exist
    assert not [k for k in put_spy if _is_data_chunk(k)]  # failed before writing data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    assert (tmp_path / "a-file").read_bytes() == b"x"


def test_urlpath_of_wrong_type_is_refused(put_spy: list[str]) -> None:
    with pytest.raises(TypeError, match="urlpath must be a path or URL"):
        intake_zspy.to_zspy(NEW, 42)  # type: ignore[arg-type]
    assert put_spy == []


@pytest.mark.parametrize("store_type", [None, "zip"])
def test_missing_bucket_fails_before_writing(
    store_type: str | None, s3_storage_options: dict[str, Any], put_spy: list[str]
) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(OSError, match="bucket does not exist") as info:
        intake_zspy.to_zspy(
            NEW,
            f"s3://{bucket}/run.zspy",
            storage_options=s3_storage_options,
            store_type=store_type,
        )
    assert not isinstance(info.value, FileExistsError)
    assert not [k for k in put_spy if _is_data_chunk(k)]
    fs = fsspec.filesystem("s3", **s3_storage_options)
    assert not fs.exists(bucket)


# -- a writer process killed mid-write ----------------------------------------------------

#: Bounds, in seconds: for chunks to appear, and for a killed process to exit.
KILL_WAIT_S = 45.0
REAP_S = 10.0
CHUNKS_BEFORE_KILL = 3
POLL_S = 0.05


@dataclass
class Scenario:
    """One write of the killed process: ``url``, whose target is in ``area`` of ``fs``; data
    chunks are watched for in ``watch`` (default: ``area``)."""

    url: str
    options: dict[str, Any]
    fs: fsspec.AbstractFileSystem
    area: str
    overwrite: bool = False
    store_type: str | None = None
    watch: str | None = None

    def job(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.options,
            "overwrite": self.overwrite,
            "store_type": self.store_type,
        }


@dataclass
class Killed:
    """What a killed writer left behind."""

    url: str
    options: dict[str, Any]
    area: str
    entries: set[str]  # names directly in ``area`` after the kill
    chunks_seen: int
    old_readable_during_write: bool | None
    extra: dict[str, Any] = field(default_factory=dict)


def _rel(key: str, area: str) -> str:
    """``key`` relative to ``area``."""
    return key.replace(os.sep, "/")[len(area.replace(os.sep, "/").rstrip("/")) + 1 :]


def _data_chunks(fs: fsspec.AbstractFileSystem, area: str) -> list[str]:
    """Data chunk keys in any store (target or staging sibling) directly under ``area``."""
    fs.invalidate_cache()
    try:
        keys = fs.find(area, withdirs=False)
    except FileNotFoundError:
        return []
    return [k for k in keys if _is_data_chunk(_rel(k, area).partition("/")[2])]


def _old_holds(url: str, options: dict[str, Any]) -> bool:
    ds = intake_zspy.open_dataset(url, storage_options=options)
    return ds.attrs["title"] == "old" and bool(np.array_equal(ds["data"].values, OLD.values))


def run_and_kill(scenarios: list[Scenario], env: dict[str, str] | None = None) -> list[Killed]:
    """Run every scenario's write in one ``slow_writer.py`` process; once each has written
    data chunks (and every old store was checked readable meanwhile), SIGKILL it."""
    cmd = [sys.executable, str(SLOW_WRITER), json.dumps([sc.job() for sc in scenarios])]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: it cannot block the writer
        proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            chunks = [0] * len(scenarios)
            old_ok: list[bool | None] = [None] * len(scenarios)
            deadline = time.monotonic() + KILL_WAIT_S
            while min(chunks) < CHUNKS_BEFORE_KILL:
                if proc.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    pytest.fail(f"the writer exited ({proc.returncode}) too soon:\n{output}")
                assert time.monotonic() < deadline, f"no data chunks within {KILL_WAIT_S} s"
                for i, sc in enumerate(scenarios):
                    if chunks[i] < CHUNKS_BEFORE_KILL:
                        chunks[i] = len(_data_chunks(sc.fs, sc.watch or sc.area))
                        if sc.overwrite and chunks[i] >= CHUNKS_BEFORE_KILL:
                            # the old store stays readable while the new one is written
                            old_ok[i] = _old_holds(sc.url, sc.options)
                time.sleep(POLL_S)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=REAP_S)
        finally:
            if proc.poll() is None:  # only on an error above: never leave it running
                proc.kill()
                proc.wait(timeout=REAP_S)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    killed = []
    for sc, n, ok in zip(scenarios, chunks, old_ok, strict=True):
        sc.fs.invalidate_cache()
        entries = {_rel(k, sc.area).split("/")[0] for k in sc.fs.find(sc.area)}
        killed.append(Killed(sc.url, sc.options, sc.area, entries, n, ok))
    return killed


def _staging(killed: Killed) -> str:
    (name,) = [e for e in killed.entries if e.startswith(".run.zspy.tmp-")]
    return name


@pytest.fixture(scope="module")
def killed_local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Killed]:
    """A new local store, an overwrite of a local store and an overwrite of a local zip
    store, killed mid-write. A local zip is staged as a hidden directory beside it."""
    fs = fsspec.filesystem("file")
    new_area = tmp_path_factory.mktemp("kill-new")
    over_area = tmp_path_factory.mktemp("kill-overwrite")
    zip_area = tmp_path_factory.mktemp("kill-zip")
    intake_zspy.to_zspy(OLD, over_area / "run.zspy")
    intake_zspy.to_zspy(OLD, zip_area / "run.zspy", store_type="zip")
    new, over, zipped = run_and_kill(
        [
            Scenario(str(new_area / "run.zspy"), {}, fs, str(new_area)),
            Scenario(str(over_area / "run.zspy"), {}, fs, str(over_area), overwrite=True),
            Scenario(
                str(zip_area / "run.zspy"),
                {},
                fs,
                str(zip_area),
                overwrite=True,
                store_type="zip",
            ),
        ]
    )
    return {"new": new, "overwrite": over, "zip": zipped}


@pytest.fixture(scope="module")
def killed_s3(
    module_bucket: tuple[str, Any], s3_storage_options: dict[str, Any]
) -> dict[str, Killed]:
    """A new S3 prefix and an overwrite of an S3 prefix, killed mid-write."""
    bucket, fs = module_bucket
    options = dict(s3_storage_options)
    intake_zspy.to_zspy(OLD, f"s3://{bucket}/kill-over/run.zspy", storage_options=options)
    new, over = run_and_kill(
        [
            Scenario(f"s3://{bucket}/kill-new/run.zspy", options, fs, f"{bucket}/kill-new"),
            Scenario(
                f"s3://{bucket}/kill-over/run.zspy",
                options,
                fs,
                f"{bucket}/kill-over",
                overwrite=True,
            ),
        ]
    )
    return {"new": new, "overwrite": over}


def test_killed_local_new_store_leaves_no_target(killed_local: dict[str, Killed]) -> None:
    killed = killed_local["new"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert not os.path.lexists(killed.url)
    staging = _staging(killed)
    assert killed.entries == {staging}  # the hidden sibling, nothing else
    with pytest.raises(FileNotFoundError):
        intake_zspy.open_datatree(killed.url)
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(os.path.join(killed.area, staging))


def test_killed_local_overwrite_keeps_old_store(killed_local: dict[str, Killed]) -> None:
    killed = killed_local["overwrite"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.old_readable_during_write is True
    staging = _staging(killed)
    assert killed.entries == {"run.zspy", staging}
    assert _old_holds(killed.url, {})
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(os.path.join(killed.area, staging))


def test_killed_local_zip_overwrite_keeps_old_zip(killed_local: dict[str, Killed]) -> None:
    killed = killed_local["zip"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.old_readable_during_write is True
    # the zip is replaced in one rename, not yet done; the staging sibling is hidden
    (leftover,) = killed.entries - {"run.zspy"}
    assert leftover.startswith(".intake-zspy-")
    assert os.path.isfile(killed.url)
    assert _old_holds(killed.url, {})
    # what the killed writer left is rejected too
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(os.path.join(killed.area, leftover))


def test_killed_s3_new_prefix_is_rejected_as_incomplete(killed_s3: dict[str, Killed]) -> None:
    killed = killed_s3["new"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.entries == {"run.zspy"}  # written in place, no staging prefix
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(killed.url, storage_options=killed.options)
    with pytest.raises(IncompleteStoreError):
        intake_zspy.open_dataset(killed.url, storage_options=killed.options, consolidated=False)


def test_killed_s3_overwrite_keeps_old_store(killed_s3: dict[str, Killed]) -> None:
    killed = killed_s3["overwrite"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.old_readable_during_write is True
    staging = _staging(killed)
    assert killed.entries == {"run.zspy", staging}
    assert _old_holds(killed.url, killed.options)
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(f"s3://{killed.area}/{staging}", storage_options=killed.options)
