"""intake 2: the ZSpy datatype, its readers, discovery and catalog round trips."""

from __future__ import annotations

import json
import pickle
import re
import socket
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import fsspec.config
import intake
import numpy as np
import pytest
import xarray as xr
import zarr
from intake.readers.datatypes import recommend
from intake.readers.entry import Catalog

import intake_zspy
from intake_zspy import SignalNotFoundError, StoreReadError, ZspyFormatError
from intake_zspy.intake2 import ZSpy, ZspyDatasetReader, ZspyDataTreeReader
from tests.builders import signal_dict, uniform_axis, write_dir
from tests.conftest import zip_directory
from tests.s3server import upload
from tests.test_70_source import SI, chunked_items, si_signal

LINE = np.arange(10, dtype="<i4")


@pytest.fixture
def two_signals(tmp_path: Path) -> Path:
    """A store with the SI and a second, 1-D signal."""
    line = signal_dict(LINE, [uniform_axis(10, "t", "s", navigate=False)], title="line")
    items = chunked_items({"SI - EELS": (si_signal(), (2, 2, 8)), "line": (line, (5,))})
    return write_dir(items, tmp_path / "two.zspy")


def test_registered_through_intake_imports() -> None:
    assert "intake_zspy.intake2" in {ep.value for ep in entry_points(group="intake.imports")}
    assert intake.readers.datatypes.ZSpy is ZSpy
    found = intake.readers.readers.recommend(ZSpy("x.zspy"))["importable"]
    assert {ZspyDatasetReader, ZspyDataTreeReader} <= set(found)
    assert list(ZSpy("x.zspy").possible_outputs)[:2] == [ZspyDatasetReader, ZspyDataTreeReader]


def test_recommend_finds_zspy(two_signals: Path, publish: Any) -> None:
    url, options = publish(two_signals)
    assert ZSpy in recommend(url, storage_options=options)
    assert ZSpy in intake.recommend(url, storage_options=options)


def test_recommend_by_content_and_name(two_signals: Path, tmp_path: Path) -> None:
    renamed = two_signals.rename(tmp_path / "no-extension")
    assert ZSpy in recommend(str(renamed))  # the Experiments group gives it away
    assert ZSpy in recommend(f"{renamed}/")
    zarr.open_group(tmp_path / "plain.zarr", mode="w", zarr_format=2).create_array(
        "x", shape=(2,), dtype="i1"
    )
    assert ZSpy not in recommend(str(tmp_path / "plain.zarr"))
    assert ZSpy in recommend("s3://bucket/some/run.zspy", head=False)


def test_to_reader_dataset_and_datatree(two_signals: Path, publish: Any) -> None:
    url, options = publish(two_signals)
    data = intake.readers.datatypes.ZSpy(url, storage_options=options)
    reader = data.to_reader("xarray")
    assert isinstance(reader, ZspyDatasetReader)
    assert reader.output_instance == "xarray:Dataset"
    ds = reader.read()
    xr.testing.assert_identical(ds, intake_zspy.open_dataset(url, storage_options=options))
    np.testing.assert_array_equal(ds["data"].values, SI)
    line = data.to_reader("xarray:Dataset", signal="line", chunks={}).read()
    assert line["data"].chunks == ((5, 5),)
    np.testing.assert_array_equal(line["data"].values, LINE)
    tree = data.to_reader("DataTree").read()
    assert isinstance(tree, xr.DataTree)
    assert sorted(tree.children) == ["SI - EELS", "line"]
    assert tree.attrs["file_format"] == "ZSpy"
    np.testing.assert_array_equal(tree["line"]["data"].values, LINE)
    assert isinstance(ZSpy(url, options).to_reader(), ZspyDatasetReader)  # the default


def test_entry_in_a_catalog_and_its_yaml_file(
    two_signals: Path, publish: Any, tmp_path: Path
) -> None:
    url, options = publish(two_signals)
    reader = ZSpy(url, storage_options=options).to_reader("xarray", signal="line")
    entry = reader.to_entry()
    assert entry.reader == "intake_zspy.intake2:ZspyDatasetReader"
    cat = Catalog()
    cat["line"] = reader
    cat["tree"] = ZSpy(url, storage_options=options).to_reader("DataTree")
    json.dumps(cat.to_dict())  # every argument is JSON-serialisable
    np.testing.assert_array_equal(cat["line"].read()["data"].values, LINE)
    path = tmp_path / "cat.yaml"
    cat.to_yaml_file(str(path))
    assert "intake_zspy.intake2:ZSpy" in path.read_text()
    again = intake.from_yaml_file(str(path))
    assert sorted(again.entries) == ["line", "tree"]
    np.testing.assert_array_equal(again["line"].read()["data"].values, LINE)
    assert again.tree.read()["SI - EELS"]["data"].shape == (6, 4, 8)


def test_reader_pickles_without_an_open_store(two_signals: Path) -> None:
    reader = ZSpy(str(two_signals)).to_reader("xarray", signal="line")
    clone = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(clone.read()["data"].values, LINE)
    assert clone.kwargs == {"data": clone.data, "signal": "line"}


def test_reader_errors(two_signals: Path, tmp_path: Path) -> None:
    with pytest.raises(
        SignalNotFoundError, match="no signal named 'nope'; available: SI - EELS, line"
    ):
        ZSpy(str(two_signals)).to_reader("xarray", signal="nope").read()
    (tmp_path / "text.zspy").write_text("hello")
    with pytest.raises(ZspyFormatError, match="not a zspy store"):
        ZSpy(str(tmp_path / "text.zspy")).to_reader("DataTree").read()


# -- which datatype intake recommends ---------------------------------------------------
#
# intake 2.0.9 ranks recommendations in tiers (head bytes, then MIME type, then the URL:
# file pattern or directory listing, by match position) and has no priority within a
# tier: equal matches follow the iteration order of a set of classes, which changes from
# run to run. The generic types that share ZSpy's tier are therefore allowed before it.
GENERIC_DIRECTORY = {intake.readers.datatypes.Zarr}  # a zspy directory is a zarr group
GENERIC_ZIP = {intake.readers.datatypes.Excel}  # intake's Excel claims every zip head


def first_tier(found: list[type], generic: set[type]) -> None:
    """ZSpy is recommended, and nothing but the generic ``generic`` types comes first."""
    assert ZSpy in found, found
    assert set(found[: found.index(ZSpy)]) <= generic, found


def test_recommend_ranks_zspy_first_tier(two_signals: Path, tmp_path: Path, memory_fs: Any) -> None:
    first_tier(recommend(str(two_signals)), GENERIC_DIRECTORY)
    first_tier(recommend(f"{two_signals}/"), GENERIC_DIRECTORY)
    zipped = zip_directory(two_signals, tmp_path / "two-zip.zspy")
    first_tier(recommend(str(zipped)), GENERIC_ZIP)
    # by content: a zip store of any name (the head names an Experiments/ member)
    first_tier(recommend(str(zipped.rename(tmp_path / "archive.bin"))), GENERIC_ZIP)
    for path in two_signals.rglob("*"):
        if path.is_file():
            memory_fs.pipe_file(
                f"/m/two.zspy/{path.relative_to(two_signals).as_posix()}", path.read_bytes()
            )
    first_tier(recommend("memory://m/two.zspy"), GENERIC_DIRECTORY)
    first_tier(intake.recommend("memory://m/two.zspy"), GENERIC_DIRECTORY)


def test_recommend_by_name_alone_puts_zspy_first(two_signals: Path, tmp_path: Path) -> None:
    # without looking at the data (head=False) the URL decides: ".zspy" matches first
    zipped = zip_directory(two_signals, tmp_path / "two-zip.zspy")
    for url in [str(two_signals), str(zipped), "memory://m/run.zspy", "s3://b/x/run.zspy/"]:
        assert recommend(url, head=False)[0] is ZSpy, url


def test_a_plain_zarr_zip_is_not_zspy(tmp_path: Path) -> None:
    plain = tmp_path / "plain.zarr"
    zarr.open_group(plain, mode="w", zarr_format=2).create_array("x", shape=(2,), dtype="i1")
    assert ZSpy not in recommend(str(zip_directory(plain, tmp_path / "plain.zip")))


@pytest.mark.parametrize("outtype", ["xarray:Dataset", "DataTree"])
def test_auto_pipeline_reads_with_zspy_readers(
    two_signals: Path, publish: Any, outtype: str
) -> None:
    url, options = publish(two_signals)
    reader = intake.auto_pipeline(ZSpy(url, storage_options=options), outtype)
    if outtype == "DataTree":
        assert isinstance(reader, ZspyDataTreeReader)
        xr.testing.assert_identical(
            reader.read(), intake_zspy.open_datatree(url, storage_options=options)
        )
        return
    assert isinstance(reader, ZspyDatasetReader)
    ds = reader.read()
    xr.testing.assert_identical(ds, intake_zspy.open_dataset(url, storage_options=options))
    np.testing.assert_array_equal(ds["data"].values, SI)


def test_auto_pipeline_from_a_url_when_zspy_is_recommended(
    two_signals: Path, tmp_path: Path
) -> None:
    # auto_pipeline(url) builds the first recommended datatype; when that is ZSpy (see
    # above: not guaranteed for directories and zips), the zspy reader reads the store
    zipped = zip_directory(two_signals, tmp_path / "two-zip.zspy")
    for url in [str(two_signals), str(zipped)]:
        if recommend(url)[0] is not ZSpy:
            continue
        reader = intake.auto_pipeline(url, "xarray:Dataset")
        assert isinstance(reader, ZspyDatasetReader)
        np.testing.assert_array_equal(reader.read()["data"].values, SI)


# -- storage_options on every intake 2 path ---------------------------------------------


def _dataset_paths() -> dict[str, Any]:
    """Ways to read the SI of ``url``; each takes (url, storage_options or None)."""

    def yaml_round_trip(url: str, options: Any, tmp: Path) -> Any:
        cat = Catalog()
        cat["si"] = ZSpy(url, storage_options=options).to_reader("xarray:Dataset", chunks={})
        cat.to_yaml_file(str(tmp / "cat.yaml"))
        return intake.from_yaml_file(str(tmp / "cat.yaml"))["si"].read()

    return {
        "to_reader().read()": lambda url, o, _: ZSpy(url, storage_options=o).to_reader().read(),
        "to_reader(xarray:Dataset)": lambda url, o, _: (
            ZSpy(url, storage_options=o).to_reader("xarray:Dataset", signal="SI - EELS").read()
        ),
        "to_reader(DataTree)": lambda url, o, _: (
            ZSpy(url, storage_options=o).to_reader("DataTree").read()["SI - EELS"].to_dataset()
        ),
        "reader from a url": lambda url, o, _: ZspyDatasetReader(url, storage_options=o).read(),
        "reader argument": lambda url, o, _: (
            ZSpy(url).to_reader("xarray", storage_options=o).read()
        ),
        "read() argument": lambda url, o, _: ZSpy(url).to_reader("xarray").read(storage_options=o),
        "to_entry -> yaml -> read": yaml_round_trip,
        "auto_pipeline": lambda url, o, _: intake.auto_pipeline(
            ZSpy(url, storage_options=o), "xarray:Dataset"
        ).read(),
    }


PATHS = _dataset_paths()


@pytest.fixture
def s3_default_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> str:
    """fsspec's default S3 options point at a closed port, tried once.

    A read that lost its ``storage_options`` then fails at once, naming that port,
    instead of going to AWS. Returns the unreachable endpoint URL.
    """
    import s3fs

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setitem(
        fsspec.config.conf, "s3", {"endpoint_url": dead, "key": "nobody", "secret": "nobody"}
    )
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore: no retries with backoff
    s3fs.S3FileSystem.clear_instance_cache()
    return dead


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("store_kind", ["memory", pytest.param("s3", marks=pytest.mark.s3)])
@pytest.mark.usefixtures("s3_default_is_unreachable")
def test_storage_options_reach_the_store(
    two_signals: Path, publish: Any, tmp_path: Path, path: str
) -> None:
    url, options = publish(two_signals)
    ds = PATHS[path](url, options, tmp_path)
    np.testing.assert_array_equal(ds["data"].values, SI)
    assert ds.attrs["zspy_signal"] == "SI - EELS"


@pytest.mark.s3
@pytest.mark.parametrize("path", list(PATHS))
def test_s3_without_storage_options_fails_clearly(
    two_signals: Path,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    s3_default_is_unreachable: str,
    tmp_path: Path,
    path: str,
) -> None:
    from botocore.exceptions import EndpointConnectionError

    url = f"s3://{s3_bucket}/two.zspy"
    upload(two_signals, url, s3_storage_options)
    with pytest.raises(StoreReadError, match=re.escape(s3_default_is_unreachable)) as caught:
        PATHS[path](url, None, tmp_path)
    assert str(caught.value).startswith(f"{url}: cannot list the store: ")
    assert "check the endpoint_url and the credentials in storage_options" in str(caught.value)
    assert isinstance(caught.value.__cause__, EndpointConnectionError)
