"""The dask path reads exactly what the eager path reads.

``open_dataset(url, chunks={})`` and ``ZspySource.to_dask()`` build one dask task per
stored chunk; these tests hold them to the eager read, value for value and dtype for
dtype: uneven edge chunks, missing chunks (fill values), big-endian and structured
dtypes, on every kind of storage, and through the read-ahead that keeps the following
chunks in flight on object storage.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import intake_zspy
from intake_zspy.format.fetch import fetch_window
from intake_zspy.source import ZspySource
from tests.builders import encode_store, signal_dict, write_dir

DATA = "Experiments/s/data"


def make_store(
    path: Path,
    data: np.ndarray,
    chunks: Sequence[int],
    *,
    fill_value: Any = None,
    drop: Sequence[tuple[int, ...]] = (),
    separator: str = "/",
) -> Path:
    """A one-signal zspy store whose data array zarr 3 writes (format 2) with ``chunks``;
    the chunks in ``drop`` are deleted afterwards (they read as the fill value)."""
    like = np.zeros(data.shape, dtype="<f4")
    write_dir(encode_store({"s": signal_dict(like)}, consolidated=False), path)
    shutil.rmtree(path / DATA)
    array = zarr.create_array(
        str(path),
        name=DATA,
        shape=data.shape,
        chunks=tuple(chunks),
        dtype=data.dtype,
        zarr_format=2,
        fill_value=fill_value,
        chunk_key_encoding={"name": "v2", "separator": separator},
    )
    array[...] = data
    for idx in drop:
        (path / DATA / separator.join(map(str, idx))).unlink(missing_ok=True)  # or never written
    return path


def expected_with_fill(
    data: np.ndarray, chunks: Sequence[int], drop: Sequence[tuple[int, ...]], fill: Any
) -> np.ndarray:
    out = data.copy()
    for idx in drop:
        out[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks, strict=True))] = fill
    return out


def read_three_ways(url: str, options: dict[str, Any] | None = None) -> list[np.ndarray]:
    eager = intake_zspy.open_dataset(url, storage_options=options)["data"].values
    lazy = intake_zspy.open_dataset(url, storage_options=options, chunks={})["data"]
    source = ZspySource(url, storage_options=options)
    try:
        to_dask = source.to_dask()["data"]
    finally:
        source.close()
    assert lazy.chunks is not None
    assert to_dask.chunks is not None
    return [eager, lazy.compute().values, to_dask.compute().values]


def assert_exact(values: list[np.ndarray], expected: np.ndarray) -> None:
    for got in values:
        assert got.dtype == expected.dtype
        assert got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()  # bit for bit, NaN payloads included


# -- one store, every kind of storage ------------------------------------------------------


def test_uneven_missing_big_endian_on_every_store_kind(tmp_path: Path, publish: Any) -> None:
    data = np.arange(11 * 7 * 5, dtype=">f8").reshape(11, 7, 5) / 3
    chunks, drop = (4, 3, 5), [(0, 1, 0), (2, 2, 0)]  # (2, 2, 0) is an edge chunk
    local = make_store(tmp_path / "be.zspy", data, chunks, fill_value=-2.5, drop=drop)
    url, options = publish(local)
    values = read_three_ways(url, options or None)
    assert_exact(values, expected_with_fill(data, chunks, drop, -2.5))
    assert values[1][0, 3, 0] == -2.5
    assert values[1][10, 6, 4] == -2.5
    assert values[1][10, 5, 4] == data[10, 5, 4]


def test_dask_blocks_are_the_stored_chunks(tmp_path: Path) -> None:
    data = np.arange(10 * 9 * 4, dtype="<i2").reshape(10, 9, 4)
    path = make_store(tmp_path / "grid.zspy", data, (4, 5, 4))
    lazy = intake_zspy.open_dataset(path, chunks={})["data"].data
    assert lazy.chunks == ((4, 4, 2), (5, 4), (4,))
    assert lazy.npartitions == 3 * 2  # one task per stored chunk


def test_structured_dtype(tmp_path: Path) -> None:
    dtype = np.dtype([("count", "<i4"), ("energy", ">f8")])
    data = np.zeros((5, 6), dtype=dtype)
    data["count"] = np.arange(30).reshape(5, 6)
    data["energy"] = np.linspace(-1, 1, 30).reshape(5, 6)
    path = make_store(tmp_path / "rec.zspy", data, (2, 4), separator=".")
    assert_exact(read_three_ways(str(path)), data)


def test_missing_chunks_without_fill_value_read_as_zero(tmp_path: Path) -> None:
    data = np.arange(1, 25, dtype="<u4").reshape(4, 6)
    path = make_store(tmp_path / "zero.zspy", data, (3, 4), drop=[(1, 1)])
    assert_exact(read_three_ways(str(path)), expected_with_fill(data, (3, 4), [(1, 1)], 0))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    chunk_fraction=st.lists(st.floats(0.1, 1.0), min_size=3, max_size=3),
    dtype=st.sampled_from(["<f4", ">f4", ">i8", "<u2", "|u1", ">c8", "|b1"]),
    drop_every=st.integers(0, 3),
    fill=st.sampled_from([None, 7]),
)
def test_dask_equals_eager_property(
    tmp_path_factory: pytest.TempPathFactory,
    shape: list[int],
    chunk_fraction: list[float],
    dtype: str,
    drop_every: int,
    fill: int | None,
) -> None:
    chunks = [max(1, math.ceil(n * f)) for n, f in zip(shape, chunk_fraction, strict=False)]
    rng = np.random.default_rng(len(shape) * 100 + sum(shape))
    data = (rng.random(shape) * 200).astype(dtype)
    grid = [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)]
    every = list(np.ndindex(*grid))
    drop = every[::drop_every] if drop_every else []
    fill_value = None if fill is None else np.array(fill).astype(dtype)[()]
    path = tmp_path_factory.mktemp("prop") / "p.zspy"
    make_store(path, data, chunks, fill_value=fill_value, drop=drop)
    missing = np.zeros((), dtype) if fill_value is None else fill_value
    assert_exact(read_three_ways(str(path)), expected_with_fill(data, chunks, drop, missing))


# -- the fetch window ------------------------------------------------------------------------


def test_fetch_window_hands_over_every_batch_within_the_budget() -> None:
    import threading
    import time

    lock = threading.Lock()
    in_flight: list[int] = []
    peak = [0]

    def fetch(keys: list[str]) -> dict[str, int]:
        with lock:
            in_flight.append(len(keys))
            peak[0] = max(peak[0], sum(in_flight))
        time.sleep(0.01 * (len(keys) % 3))  # batches land out of order
        with lock:
            in_flight.remove(len(keys))
        return {k: int(k) for k in keys}

    items = [str(i) for i in range(100)]
    batches = [items[i : i + 7] for i in range(0, 100, 7)]
    seen: list[str] = []
    for batch, values in fetch_window(fetch, batches, str, lambda _: 10, max_bytes=200):
        assert values == {k: int(k) for k in batch}
        seen += batch
    assert sorted(seen, key=int) == items
    assert peak[0] * 10 <= 200  # never more than the budget in flight


# -- read-ahead on object storage ------------------------------------------------------------


@pytest.mark.s3
def test_chunks_read_one_by_one_from_s3_are_fetched_ahead(
    tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    from intake_zspy.format.arrays import V2Array
    from intake_zspy.format.decode import open_url
    from tests.s3server import upload

    data = np.arange(12 * 10, dtype="<f4").reshape(12, 10)
    local = make_store(tmp_path / "ra.zspy", data, (2, 5), drop=[(3, 1)])
    url = f"s3://{s3_bucket}/ra.zspy"
    upload(local, url, s3_storage_options)
    file = open_url(url, s3_storage_options)
    array = file.signal("s").data
    assert isinstance(array, V2Array)
    expected = expected_with_fill(data, (2, 5), [(3, 1)], 0)
    # backwards, the order dask's threaded scheduler runs a from_array graph in
    for i in reversed(range(6)):
        for j in reversed(range(2)):
            box = (slice(2 * i, 2 * i + 2), slice(5 * j, 5 * j + 5))
            np.testing.assert_array_equal(array.read(box), expected[box])
    ahead = array._ahead
    assert ahead is not None
    assert ahead._asked == set(range(12))
    assert not ahead._ahead
    assert ahead._held == 0
    assert ahead._front[-1] == 0
    # and the whole dask graph through it
    lazy = intake_zspy.open_dataset(url, storage_options=s3_storage_options, chunks={})
    np.testing.assert_array_equal(lazy["data"].compute().values, expected)


@pytest.mark.s3
def test_distributed_workers_do_not_read_ahead(
    tmp_path: Path,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker gets some of the chunks (the others go to other workers): it fetches only
    the ones its tasks read, and the result is exact."""
    from distributed import Client, LocalCluster

    from intake_zspy.format import readahead
    from tests.s3server import upload

    built: list[object] = []
    original = readahead.ReadAhead.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(readahead.ReadAhead, "__init__", spy)
    data = np.arange(12 * 10, dtype="<f4").reshape(12, 10)
    local = make_store(tmp_path / "w.zspy", data, (2, 5))
    url = f"s3://{s3_bucket}/w.zspy"
    upload(local, url, s3_storage_options)

    def lazy() -> Any:
        return intake_zspy.open_dataset(url, storage_options=s3_storage_options, chunks={})

    assert not readahead.in_distributed_worker()
    with (
        LocalCluster(  # in this process, so that the spy sees the workers' arrays
            n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        assert client.submit(readahead.in_distributed_worker).result(timeout=30)
        result = client.compute(lazy()["data"]).result(timeout=30)
    np.testing.assert_array_equal(result.values, data)
    assert built == []  # every chunk read directly
    np.testing.assert_array_equal(lazy()["data"].compute().values, data)  # threaded scheduler
    assert len(built) == 1  # reads ahead


# -- zip stores opened from their end (catalogs on object storage) ---------------------------


def test_zip_opened_from_its_tail_reads_every_member(
    tmp_path: Path, memory_fs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import zipfile

    from intake_zspy.catalog import _zip_tail

    data = np.random.default_rng(1).random((40, 50)).astype("<f8")  # 16 kB per chunk
    local = make_store(tmp_path / "z.zspy", data, (20, 50))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(local.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(local).as_posix())
    raw = buf.getvalue()
    memory_fs.pipe_file("/z.zspy", raw)
    monkeypatch.setattr(_zip_tail, "BLOCK_BYTES", 1000)  # many blocks before the tail
    assert _zip_tail.tail_start(len(raw)) == 0  # a small zip is fetched whole
    assert _zip_tail.tail_start(_zip_tail.TAIL_BYTES + 5) == 5
    tail = raw[-3000:]  # a tail shorter than the file
    store = _zip_tail.open_zip_from_tail(memory_fs, "/z.zspy", "memory://z.zspy", len(raw), tail)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf, store:
        names = zf.namelist()
        assert set(store.list()) == set(names)
        values = store.get_many(names)
        assert all(values[n] == zf.read(n) for n in names)
    with pytest.raises(intake_zspy.errors.DamagedStoreError, match=r"memory://bad\.zspy"):
        _zip_tail.open_zip_from_tail(memory_fs, "/z.zspy", "memory://bad.zspy", 10, b"not a zip")
