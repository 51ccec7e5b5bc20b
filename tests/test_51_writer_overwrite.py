"""``to_zspy`` replaces a store only with a complete one.

- ``overwrite=False`` refuses an existing target with ``FileExistsError`` and touches nothing;
- ``overwrite=True`` replaces the old store only once the new one is complete: a write that
  fails half-way (a dask block, a codec, with another write still in flight) leaves the old
  store intact and no staging leftovers.

Every check runs on each kind of target: local directory, local zip, memory, S3 prefix and
S3 zip (a real moto server, see ``tests/s3server.py``; the targets are made by
``tests/writer_places.py``). Refused inputs are in ``test_51_writer_validation.py``, a
writer process killed mid-write in ``test_51_writer_killed.py``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numcodecs.abc
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from tests.writer_places import (
    KINDS,
    NEW,
    OLD,
    S3,
    WRITTEN,
    area_names,
    assert_holds,
    assert_url_holds,
    is_data_chunk,
)

# -- failures injected into a write ------------------------------------------------------


class Boom(RuntimeError):
    """The failure injected into a write."""


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


@pytest.fixture
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary directory (where zip stores are staged) for this test only."""
    path = tmp_path / "tempdir"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


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
    assert area_names(place) == {"run.zspy"}  # no staging or backup sibling left
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
    assert any(is_data_chunk(k) for k in put_spy), put_spy
    # ... yet the old store is byte for byte intact and nothing else is left
    assert place.snapshot() == before
    assert area_names(place) == {"run.zspy"}
    assert list(private_tempdir.iterdir()) == []
    assert_holds(place, OLD)


@pytest.mark.parametrize("kind", KINDS)
def test_failed_new_write_leaves_no_valid_store(
    kind: str, make_place: Any, private_tempdir: Path, put_spy: list[str]
) -> None:
    place = make_place(kind)
    with pytest.raises(Boom):
        place.write(failing_dask_signal())
    assert any(is_data_chunk(k) for k in put_spy), put_spy
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
    assert area_names(place) == {"run.zspy"}
    assert list(private_tempdir.iterdir()) == []
    assert_holds(place, OLD)
