"""``to_zspy`` at scale: dask data is written chunk by chunk, in parallel, without being
materialised; it works under ``dask.distributed`` (worker processes) to local disk and S3;
``progress=True`` shows a progress bar."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import fsspec
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

import intake_zspy

#: Bound, in seconds, of one write under dask.distributed.
DISTRIBUTED_WRITE_S = 60.0


def chunk_keys(root: Path, signal: str) -> set[str]:
    """The data chunk keys of ``Experiments/<signal>/data`` in a local directory store."""
    data = root / "Experiments" / signal / "data"
    return {
        p.relative_to(data).as_posix()
        for p in data.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def zarray(root: Path, signal: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (root / "Experiments" / signal / "data" / ".zarray").read_text()
    )
    return doc


def grid_keys(shape: tuple[int, ...], chunks: tuple[int, ...]) -> set[str]:
    counts = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
    return {"/".join(map(str, index)) for index in np.ndindex(*counts)}


def values_of(url: str | Path, **kwargs: Any) -> np.ndarray:
    ds = intake_zspy.open_dataset(url, **kwargs)
    return np.asarray(ds["data"].values)


def expected_block(block_id: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Block contents that depend on the block's position (checkable after the write)."""
    base = sum(i * 1000**k for k, i in enumerate(reversed(block_id)))
    return (np.arange(np.prod(shape), dtype="f4") + base).reshape(shape)


def _make_block(block_info: dict[Any, Any] | None = None) -> np.ndarray:
    assert block_info is not None
    info = block_info[None]
    return expected_block(tuple(info["chunk-location"]), tuple(info["chunk-shape"]))


def block_array(shape: tuple[int, ...], chunks: Any) -> da.Array:
    """A dask array computed block by block (no numpy source behind it)."""
    template = da.empty(shape, chunks=chunks, dtype="f4")
    return da.map_blocks(
        _make_block, dtype="f4", chunks=template.chunks, meta=np.empty((0,) * len(shape), "f4")
    )


def signal(data: Any, name: str = "scan") -> xr.DataArray:
    dims = ("y", "x", "energy")[-data.ndim :]
    return xr.DataArray(data, dims=dims, name=name)


class TaskSizes(Callback):  # type: ignore[misc]
    """Records the size of every task result computed by the local schedulers."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        with self.lock:
            self.sizes.append(int(getattr(result, "nbytes", 0)))


# -- chunk by chunk ----------------------------------------------------------------------


def test_dask_chunk_grid_equals_dask_chunks(tmp_path: Path) -> None:
    shape, chunks = (6, 10, 64), (2, 5, 64)
    data = block_array(shape, chunks)
    out = tmp_path / "grid.zspy"
    intake_zspy.to_zspy(signal(data), out)
    meta = zarray(out, "scan")
    assert meta["chunks"] == list(chunks)
    assert meta["shape"] == list(shape)
    assert meta["dimension_separator"] == "/"
    assert chunk_keys(out, "scan") == grid_keys(shape, chunks)
    np.testing.assert_array_equal(values_of(out), data.compute())
    # read back lazily with dask: the stored chunks are the dask chunks again
    ds = intake_zspy.open_dataset(out, chunks={})
    assert ds["data"].data.chunks == data.chunks


def test_dask_data_is_never_materialised(tmp_path: Path) -> None:
    """No task result is larger than one chunk: the array is never assembled."""
    shape, chunks = (32, 32, 256), (4, 32, 256)  # 1 MiB in 8 chunks of 128 KiB
    chunk_bytes = int(np.prod(chunks)) * 4
    data = block_array(shape, chunks)
    sizes = TaskSizes()
    with dask.config.set(scheduler="threads"), sizes:
        intake_zspy.to_zspy(signal(data), tmp_path / "big.zspy")
    assert len(sizes.sizes) >= 8  # 8 blocks (and their writes) went through the scheduler
    assert max(sizes.sizes) <= chunk_bytes  # blocks may even be fused with their writes
    assert chunk_keys(tmp_path / "big.zspy", "scan") == grid_keys(shape, chunks)
    np.testing.assert_array_equal(values_of(tmp_path / "big.zspy"), data.compute())


def test_irregular_dask_chunks_are_rechunked_to_a_regular_grid(tmp_path: Path) -> None:
    shape = (6, 10, 16)
    data = block_array(shape, ((3, 1, 2), (4, 6), (16,)))
    out = tmp_path / "irregular.zspy"
    intake_zspy.to_zspy(signal(data), out)
    meta = zarray(out, "scan")
    assert meta["chunks"] == [3, 6, 16]  # the largest dask chunk along each dim
    assert chunk_keys(out, "scan") == grid_keys(shape, (3, 6, 16))
    np.testing.assert_array_equal(values_of(out), data.compute())


def test_chunks_argument_overrides_dask_chunks(tmp_path: Path) -> None:
    shape = (6, 10, 16)
    data = block_array(shape, (2, 5, 16))
    out = tmp_path / "override.zspy"
    intake_zspy.to_zspy(signal(data), out, chunks={"y": 3, "x": 10})
    assert zarray(out, "scan")["chunks"] == [3, 10, 16]
    assert chunk_keys(out, "scan") == grid_keys(shape, (3, 10, 16))
    np.testing.assert_array_equal(values_of(out), data.compute())


def test_numpy_default_chunks_hold_whole_signals(tmp_path: Path) -> None:
    values = np.random.default_rng(3).random((5, 7, 40)).astype("f4")
    out = tmp_path / "numpy.zspy"
    intake_zspy.to_zspy(signal(values), out, chunks=(2, 7, 40))
    assert zarray(out, "scan")["chunks"] == [2, 7, 40]
    assert chunk_keys(out, "scan") == grid_keys(values.shape, (2, 7, 40))
    np.testing.assert_array_equal(values_of(out), values)
    out2 = tmp_path / "numpy-default.zspy"
    intake_zspy.to_zspy(signal(values), out2)
    assert zarray(out2, "scan")["chunks"][-1] == 40  # the signal axis is never split
    np.testing.assert_array_equal(values_of(out2), values)


_BARRIER = threading.Barrier(2, timeout=10)


def _rendezvous_block(block_info: dict[Any, Any] | None = None) -> np.ndarray:
    """Returns only once another block is being computed at the same time."""
    _BARRIER.wait()
    return _make_block(block_info)


def test_blocks_are_written_in_parallel(tmp_path: Path) -> None:
    """Each block waits at a 2-party barrier: a sequential write would time out."""
    shape, chunks = (8, 4, 16), (1, 4, 16)
    template = da.empty(shape, chunks=chunks, dtype="f4")
    data = da.map_blocks(
        _rendezvous_block, dtype="f4", chunks=template.chunks, meta=np.empty((0, 0, 0), "f4")
    )
    _BARRIER.reset()
    with dask.config.set(scheduler="threads", num_workers=4):
        intake_zspy.to_zspy(signal(data), tmp_path / "parallel.zspy")
    expected = block_array(shape, chunks).compute()
    np.testing.assert_array_equal(values_of(tmp_path / "parallel.zspy"), expected)


# -- progress ------------------------------------------------------------------------------


def test_progress_bar_for_numpy_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = np.arange(6 * 4 * 8, dtype="f4").reshape(6, 4, 8)
    intake_zspy.to_zspy(signal(values), tmp_path / "p.zspy", progress=True, chunks=(1, 4, 8))
    captured = capsys.readouterr()
    assert "100%" in captured.err
    assert "6/6" in captured.err  # one step per chunk
    assert "Experiments/scan/data" in captured.err
    np.testing.assert_array_equal(values_of(tmp_path / "p.zspy"), values)


def test_progress_bar_for_dask_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = block_array((6, 4, 8), (1, 4, 8))
    with dask.config.set(scheduler="threads"):
        intake_zspy.to_zspy(signal(data), tmp_path / "p.zspy", progress=True)
    captured = capsys.readouterr()
    assert "100% Completed" in captured.out + captured.err
    np.testing.assert_array_equal(values_of(tmp_path / "p.zspy"), data.compute())


def test_no_progress_output_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    intake_zspy.to_zspy(signal(np.zeros((3, 4, 8), "f4")), tmp_path / "a.zspy")
    intake_zspy.to_zspy(signal(block_array((3, 4, 8), (1, 4, 8))), tmp_path / "b.zspy")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


# -- dask.distributed ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_client() -> Iterator[Any]:
    """A LocalCluster with two worker processes (one thread each), closed afterwards."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        silence_logs=40,  # logging.ERROR
    )
    try:
        with distributed.Client(cluster, timeout="30s") as client:
            client.wait_for_workers(2, timeout=30)
            yield client
    finally:
        cluster.close(timeout=30)


def _on_worker_block(block_info: dict[Any, Any] | None = None) -> np.ndarray:
    """A block that can only be computed inside a dask.distributed worker."""
    from distributed import get_worker

    get_worker()  # raises ValueError outside a worker
    return _make_block(block_info)


def worker_only_array(shape: tuple[int, ...], chunks: tuple[int, ...]) -> da.Array:
    template = da.empty(shape, chunks=chunks, dtype="f4")
    return da.map_blocks(
        _on_worker_block, dtype="f4", chunks=template.chunks, meta=np.empty((0, 0, 0), "f4")
    )


def bounded_write(*args: Any, **kwargs: Any) -> str:
    """``to_zspy`` that fails the test instead of hanging past ``DISTRIBUTED_WRITE_S``."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(intake_zspy.to_zspy, *args, **kwargs)
        return future.result(timeout=DISTRIBUTED_WRITE_S)


def test_distributed_write_to_local_disk(cluster_client: Any, tmp_path: Path) -> None:
    shape, chunks = (8, 6, 32), (2, 3, 32)
    data = worker_only_array(shape, chunks)
    out = tmp_path / "distributed.zspy"
    bounded_write(signal(data), out)
    assert zarray(out, "scan")["chunks"] == list(chunks)
    assert chunk_keys(out, "scan") == grid_keys(shape, chunks)
    expected = block_array(shape, chunks).compute(scheduler="sync")
    np.testing.assert_array_equal(values_of(out), expected)
    # every block was computed (and written) by a worker process
    assert len(cluster_client.scheduler_info()["workers"]) == 2


def test_distributed_write_to_s3(
    cluster_client: Any, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    shape, chunks = (8, 6, 32), (2, 3, 32)
    data = worker_only_array(shape, chunks)
    url = f"s3://{s3_bucket}/distributed.zspy"
    bounded_write(signal(data), url, storage_options=s3_storage_options)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3_storage_options)
    prefix = f"{s3_bucket}/distributed.zspy/Experiments/scan/data/"
    keys = {k[len(prefix) :] for k in fs.find(prefix) if not k.endswith(".zarray")}
    assert keys == grid_keys(shape, chunks)
    expected = block_array(shape, chunks).compute(scheduler="sync")
    np.testing.assert_array_equal(values_of(url, storage_options=s3_storage_options), expected)


def test_distributed_write_with_progress(
    cluster_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shape, chunks = (4, 6, 32), (1, 6, 32)
    data = worker_only_array(shape, chunks)
    bounded_write(signal(data), tmp_path / "progress.zspy", progress=True)
    captured = capsys.readouterr()
    assert "100%" in captured.out + captured.err
    expected = block_array(shape, chunks).compute(scheduler="sync")
    np.testing.assert_array_equal(values_of(tmp_path / "progress.zspy"), expected)
