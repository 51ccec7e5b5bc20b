"""intake 2: the ZSpy datatype, its readers, discovery and catalog round trips."""

from __future__ import annotations

import json
import pickle
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import intake
import numpy as np
import pytest
import xarray as xr
import zarr
from intake.readers.datatypes import recommend
from intake.readers.entry import Catalog

import intake_zspy
from intake_zspy import SignalNotFoundError, ZspyFormatError
from intake_zspy.readers import ZSpy, ZspyDatasetReader, ZspyDataTreeReader
from tests.builders import signal_dict, uniform_axis, write_dir
from tests.test_80_source import SI, chunked_items, si_signal

LINE = np.arange(10, dtype="<i4")


@pytest.fixture
def two_signals(tmp_path: Path) -> Path:
    """A store with the SI and a second, 1-D signal."""
    line = signal_dict(LINE, [uniform_axis(10, "t", "s", navigate=False)], title="line")
    items = chunked_items({"SI - EELS": (si_signal(), (2, 2, 8)), "line": (line, (5,))})
    return write_dir(items, tmp_path / "two.zspy")


def test_registered_through_intake_imports() -> None:
    assert "intake_zspy.readers" in {ep.value for ep in entry_points(group="intake.imports")}
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
    assert entry.reader == "intake_zspy.readers:ZspyDatasetReader"
    cat = Catalog()
    cat["line"] = reader
    cat["tree"] = ZSpy(url, storage_options=options).to_reader("DataTree")
    json.dumps(cat.to_dict())  # every argument is JSON-serialisable
    np.testing.assert_array_equal(cat["line"].read()["data"].values, LINE)
    path = tmp_path / "cat.yaml"
    cat.to_yaml_file(str(path))
    assert "intake_zspy.readers:ZSpy" in path.read_text()
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
