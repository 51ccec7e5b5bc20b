"""The intake v1 source ``zspy``: discover, read, partitions, dask, pickling, errors."""

from __future__ import annotations

import json
import pickle
import posixpath
import shutil
import textwrap
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array
import intake
import numpy as np
import pytest
import xarray as xr
import yaml

import intake_zspy.source
from intake_zspy import SignalNotFoundError, ZspyFormatError, open_dataset
from intake_zspy.dataset import block_sizes, navigation_dims, partition_index
from intake_zspy.format.hierarchy import ItemEncoder
from intake_zspy.source import ZspySource
from tests.builders import encode_store, signal_dict, uniform_axis, write_dir

#: A 6 x 4 navigation grid of 8-channel spectra, stored in (2, 2, 8) chunks: 3 x 2 blocks.
SI = np.arange(6 * 4 * 8, dtype="<f4").reshape(6, 4, 8)


def chunked_items(
    signals: Mapping[str, tuple[dict[str, Any], tuple[int, ...]]], *, consolidated: bool = True
) -> dict[str, bytes]:
    """Every key of a store whose signals' data use the given chunks."""
    items = encode_store({name: sig for name, (sig, _) in signals.items()}, consolidated=False)
    enc = ItemEncoder()
    for name, (sig, chunks) in signals.items():
        prefix = f"Experiments/{name}/data/"
        for key in [k for k in items if k.startswith(prefix)]:
            del items[key]
        enc.array(f"Experiments/{name}/data", sig["data"], chunks=chunks)
    items.update(enc.items)
    if consolidated:
        docs = {
            k: json.loads(v)
            for k, v in items.items()
            if posixpath.basename(k) in (".zgroup", ".zattrs", ".zarray")
        }
        items[".zmetadata"] = json.dumps({"metadata": docs, "zarr_consolidated_format": 1}).encode()
    return items


def si_signal(title: str = "SI / EELS", signal_type: str = "EELS") -> dict[str, Any]:
    axes = [
        uniform_axis(6, "x", "nm", scale=0.5, offset=1.0),
        uniform_axis(4, "y", "nm", scale=2.0),
        uniform_axis(8, "E", "eV", scale=0.25, offset=100.0, navigate=False),
    ]
    return signal_dict(SI, axes, title=title, signal_type=signal_type)


def write_si(path: Path, **kwargs: Any) -> Path:
    return write_dir(chunked_items({"SI - EELS": (si_signal(**kwargs), (2, 2, 8))}), path)


@pytest.fixture
def si_dir(tmp_path: Path) -> Path:
    return write_si(tmp_path / "si.zspy")


def combine(src: ZspySource, parts: list[xr.Dataset]) -> xr.Dataset:
    """Reassemble partitions (C order of the grid) into one Dataset."""
    grid = src.partition_grid
    nested: Any = parts
    for n in reversed(grid[1:]):
        nested = [nested[i : i + n] for i in range(0, len(nested), n)]
    return xr.combine_nested(nested, concat_dim=list(src.partition_dims), combine_attrs="override")


def test_driver_is_registered() -> None:
    assert intake.registry["zspy"] is ZspySource
    assert intake.open_zspy is ZspySource
    assert (ZspySource.name, ZspySource.container) == ("zspy", "xarray")


def test_discover_reports_metadata(si_dir: Path, publish: Any) -> None:
    url, options = publish(si_dir)
    src = intake.open_zspy(url, storage_options=options)
    info = src.discover()
    assert info["dtype"] == np.dtype("<f4")
    assert info["shape"] == (6, 4, 8)
    assert info["dims"] == ("x", "y", "E")
    assert info["chunks"] == {"x": (2, 2, 2), "y": (2, 2), "E": (8,)}
    assert info["npartitions"] == 6 == src.npartitions
    assert info["partition_dims"] == ("x", "y")
    meta = info["metadata"]
    assert (meta["title"], meta["signal_type"], meta["signal"]) == (
        "SI / EELS",
        "EELS",
        "SI - EELS",
    )
    assert meta["axes"] == [
        {"dim": "x", "name": "x", "units": "nm", "navigate": True, "size": 6},
        {"dim": "y", "name": "y", "units": "nm", "navigate": True, "size": 4},
        {"dim": "E", "name": "E", "units": "eV", "navigate": False, "size": 8},
    ]
    src.close()


def test_discover_reads_no_chunk(tmp_path: Path) -> None:
    """Without any data chunk, discover still works: it only needs metadata."""
    path = write_si(tmp_path / "nochunks.zspy")
    data_dir = path / "Experiments" / "SI - EELS" / "data"
    for chunk in data_dir.iterdir():
        if chunk.name != ".zarray":
            shutil.rmtree(chunk) if chunk.is_dir() else chunk.unlink()
    assert sorted(p.name for p in data_dir.iterdir()) == [".zarray"]
    assert ZspySource(str(path)).discover()["npartitions"] == 6


def test_read_and_to_dask(si_dir: Path, publish: Any) -> None:
    url, options = publish(si_dir)
    src = ZspySource(url, storage_options=options)
    ds = src.read()
    assert isinstance(ds["data"].data, np.ndarray)
    np.testing.assert_array_equal(ds["data"].values, SI)
    np.testing.assert_allclose(ds["x"].values, 1.0 + 0.5 * np.arange(6))
    assert ds.attrs["title"] == "SI / EELS"
    lazy = src.to_dask()
    assert isinstance(lazy["data"].data, dask.array.Array)
    assert lazy.chunks == {"x": (2, 2, 2), "y": (2, 2), "E": (8,)}
    xr.testing.assert_identical(lazy.compute(), ds)
    src.close()
    # the dask Dataset and in-memory results outlive the source
    assert float(lazy["data"].sum()) == float(SI.sum())
    lazy.close()


def test_read_chunked_equals_read(si_dir: Path, publish: Any) -> None:
    url, options = publish(si_dir)
    src = ZspySource(url, storage_options=options)
    parts = list(src.read_chunked())
    assert len(parts) == src.npartitions == 6
    assert [p["data"].shape for p in parts] == [(2, 2, 8)] * 6
    np.testing.assert_allclose(parts[1]["y"].values, [4.0, 6.0])  # block (0, 1)
    np.testing.assert_allclose(parts[2]["x"].values, [2.0, 2.5])  # block (1, 0)
    xr.testing.assert_identical(combine(src, parts), src.read())


def test_read_partition_int_and_tuple(si_dir: Path) -> None:
    src = ZspySource(str(si_dir))
    assert src.partition_grid == (3, 2)
    for i in range(6):
        by_index = src.read_partition(i)
        by_block = src.read_partition((i // 2, i % 2))
        xr.testing.assert_identical(by_index, by_block)
    last = src.read_partition((2, 1))
    np.testing.assert_array_equal(last["data"].values, SI[4:6, 2:4])
    assert last.attrs["signal_type"] == "EELS"
    for bad in (6, -1, (3, 0), (0,), (0, 0, 0)):
        with pytest.raises(IndexError, match=r"partition|block index"):
            src.read_partition(bad)  # type: ignore[arg-type]
    for wrong in ("0", 1.0, True, [0, 1]):
        with pytest.raises(TypeError, match="a partition is an int or a tuple"):
            src.read_partition(wrong)  # type: ignore[arg-type]


def test_user_chunks_set_the_partitions(si_dir: Path) -> None:
    src = ZspySource(str(si_dir), chunks={"x": 3})
    assert src.discover()["chunks"] == {"x": (3, 3), "y": (2, 2), "E": (8,)}
    assert src.partition_grid == (2, 2)
    assert src.to_dask()["data"].data.numblocks == (2, 2, 1)
    np.testing.assert_array_equal(src.read_partition(3)["data"].values, SI[3:6, 2:4])
    whole = ZspySource(str(si_dir), chunks=-1)
    assert whole.npartitions == 1


def test_partition_helpers_next_to_the_dims(si_dir: Path) -> None:
    # the partition maths lives with the xarray mapping; the source only uses it
    assert intake_zspy.source.__all__ == ["ZspySource"]
    ds = open_dataset(si_dir, chunks=None)
    assert navigation_dims(ds) == ["x", "y"]
    assert block_sizes(ds) == {"x": (2, 2, 2), "y": (2, 2), "E": (8,)}
    assert block_sizes(ds, {"x": 4}) == {"x": (4, 2), "y": (2, 2), "E": (8,)}
    assert partition_index(5, (3, 2)) == (2, 1)
    assert partition_index((2, 1), (3, 2)) == (2, 1)
    assert partition_index(0, ()) == ()
    with pytest.raises(IndexError, match="partition 6 is out of range: there are 6"):
        partition_index(6, (3, 2))
    with pytest.raises(IndexError, match="does not fit the partition grid"):
        partition_index((3, 0), (3, 2))
    with pytest.raises(TypeError, match="a partition is an int or a tuple of ints"):
        partition_index(True, (3, 2))


def test_store_chunking_a_signal_axis(tmp_path: Path) -> None:
    """Partitions follow the navigation grid and span the chunked signal axis whole."""
    data = np.arange(4 * 32, dtype="<i2").reshape(4, 32)
    axes = [uniform_axis(4, "t", "s"), uniform_axis(32, "q", "1/nm", navigate=False)]
    items = chunked_items({"diffraction": (signal_dict(data, axes, title="diffraction"), (2, 8))})
    src = ZspySource(str(write_dir(items, tmp_path / "split.zspy")))
    assert src.npartitions == 2
    assert src.partition_dims == ("t",)
    parts = list(src.read_chunked())
    assert [p["data"].shape for p in parts] == [(2, 32), (2, 32)]
    np.testing.assert_array_equal(parts[1]["data"].values, data[2:])
    assert src.to_dask().chunks == {"t": (2, 2), "q": (8, 8, 8, 8)}


def test_signal_without_navigation_has_one_partition(tmp_path: Path) -> None:
    data = np.linspace(0.0, 1.0, 50)
    axes = [uniform_axis(50, "E", "eV", navigate=False)]
    items = chunked_items({"spectrum": (signal_dict(data, axes, title="spectrum"), (10,))})
    src = ZspySource(str(write_dir(items, tmp_path / "one.zspy")))
    assert (src.npartitions, src.partition_grid, src.partition_dims) == (1, (), ())
    xr.testing.assert_identical(src.read_partition(0), src.read())
    xr.testing.assert_identical(src.read_partition(()), src.read())


def test_read_chunked_memory_stays_near_one_partition(tmp_path: Path) -> None:
    """Iterating 32 partitions peaks at a few partition-sized buffers, not at the total.

    Reading one partition holds its compressed chunk, the decoded chunk and the output
    at once (random data does not compress), plus the previous partition until the loop
    drops it: about 4 partitions, whatever the number of partitions.
    """
    data = np.random.default_rng(0).random((32, 64, 256))
    axes = [uniform_axis(32, "t"), uniform_axis(64, "y"), uniform_axis(256, "E", navigate=False)]
    items = chunked_items({"big": (signal_dict(data, axes, title="big"), (1, 64, 256))})
    src = ZspySource(str(write_dir(items, tmp_path / "big.zspy")))
    src.read_partition(0)  # warm up: codecs, thread pool
    partition = data.nbytes // src.npartitions
    tracemalloc.start()
    try:
        total = 0.0
        for part in src.read_chunked():
            total += float(part["data"].sum())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == pytest.approx(float(data.sum()))
    assert peak < 6 * partition < data.nbytes / 5, f"peak {peak} B, partitions of {partition} B"


def test_pickle_yaml_and_equality(si_dir: Path) -> None:
    src = ZspySource(si_dir, chunks={"x": 2}, metadata={"owner": "lab"})
    src.discover()
    clone = pickle.loads(pickle.dumps(src))
    assert clone == src
    xr.testing.assert_identical(clone.read(), src.read())
    spec = yaml.safe_load(src.yaml())["sources"]["zspy"]
    assert spec["driver"] == "intake_zspy.source.ZspySource"
    assert spec["args"] == {"urlpath": str(si_dir), "chunks": {"x": 2}}
    assert spec["metadata"] == {"owner": "lab"}
    again = ZspySource(**spec["args"])
    np.testing.assert_array_equal(again.read_partition((1, 0))["data"].values, SI[2:4, 0:2])


def test_close_releases_and_reopens(si_dir: Path, publish: Any) -> None:
    url, options = publish(si_dir)
    with ZspySource(url, storage_options=options) as src:
        first = src.read_partition(0)
    assert src._ds is None
    xr.testing.assert_identical(src.read_partition(0), first)  # reopened on demand
    src.close()


def test_catalog_entry_with_user_parameter(tmp_path: Path) -> None:
    for run in (1, 2):
        write_si(tmp_path / f"run{run}.zspy", title=f"run {run}")
    (tmp_path / "cat.yml").write_text(
        textwrap.dedent(
            """
            sources:
              scan:
                description: one run
                driver: zspy
                parameters:
                  run: {description: run number, type: int, default: 1}
                args:
                  urlpath: "{{ CATALOG_DIR }}/run{{ run }}.zspy"
                  chunks: {x: 3}
            """
        )
    )
    cat = intake.open_catalog(str(tmp_path / "cat.yml"))
    assert cat.scan.read().attrs["title"] == "run 1"
    second = cat.scan(run=2)
    assert isinstance(second, ZspySource)
    assert Path(second.urlpath) == tmp_path / "run2.zspy"
    assert second.read().attrs["title"] == "run 2"
    assert second.npartitions == 4
    assert pickle.loads(pickle.dumps(second)).read().attrs["title"] == "run 2"


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"urlpath": None}, "urlpath must be a non-empty path"),
        ({"urlpath": 42}, "urlpath must be a non-empty path"),
        ({"urlpath": "x.zspy", "signal": 3}, "signal must be a signal name"),
        ({"urlpath": "x.zspy", "chunks": [1, 2]}, "chunks must be None"),
        ({"urlpath": "x.zspy", "chunks": True}, "chunks must be None"),
        ({"urlpath": "x.zspy", "storage_options": "anon"}, "storage_options must be a dict"),
        ({"urlpath": "x.zspy", "metadata": [1]}, "metadata must be a dict"),
        ({"urlpath": "x.zspy", "bogus": 1}, "unknown argument 'bogus'; ZspySource takes urlpath"),
        ({"url": "x.zspy"}, "unknown argument 'url'.*did you mean 'urlpath'"),
    ],
)
def test_wrong_driver_args(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        intake.open_zspy(**kwargs)


def test_wrong_args_in_a_catalog_entry(tmp_path: Path) -> None:
    (tmp_path / "cat.yml").write_text(
        "sources:\n  bad:\n    driver: zspy\n    args:\n      url: x.zspy\n"
    )
    cat = intake.open_catalog(str(tmp_path / "cat.yml"))
    with pytest.raises(TypeError, match=r"unknown argument 'url'.*did you mean 'urlpath'"):
        cat.bad.read()


def test_url_that_is_not_zspy(tmp_path: Path) -> None:
    (tmp_path / "notes.zspy").write_text("not a store")
    with pytest.raises(ZspyFormatError, match=r"notes\.zspy: not a zspy store"):
        ZspySource(str(tmp_path / "notes.zspy")).discover()
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.txt").write_text("x")
    with pytest.raises(ZspyFormatError, match=r"folder: not a zspy store: no \.zgroup"):
        ZspySource(str(tmp_path / "folder")).read()
    with pytest.raises(FileNotFoundError, match=r"missing\.zspy"):
        ZspySource(str(tmp_path / "missing.zspy")).discover()


def test_signal_that_does_not_exist(si_dir: Path, publish: Any) -> None:
    url, options = publish(si_dir)
    src = ZspySource(url, signal="nope", storage_options=options)
    with pytest.raises(SignalNotFoundError, match="no signal named 'nope'; available: SI - EELS"):
        src.discover()
    with pytest.raises(KeyError):
        src.read()


# -- scale-out --------------------------------------------------------------------------


@pytest.mark.slow
def test_distributed_reads_from_s3(
    si_dir: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    """Two worker processes read a store from the loopback S3 server and reduce it."""
    from distributed import Client, LocalCluster

    from tests.s3server import upload

    url = f"s3://{s3_bucket}/si.zspy"
    upload(si_dir, url, s3_storage_options)
    src = ZspySource(url, storage_options=s3_storage_options)
    expected = src.read()
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        lazy = src.to_dask()
        total = client.compute(lazy["data"].sum(dim=["x", "y"])).result(timeout=30)
        np.testing.assert_allclose(total.values, SI.sum(axis=(0, 1)))
        assert total["E"].attrs["units"] == "eV"
        futures = client.map(src.read_partition, range(src.npartitions))
        parts = client.gather(futures)
    xr.testing.assert_identical(combine(src, parts), expected)
