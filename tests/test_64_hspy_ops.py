"""``describe``/``info`` and ``verify``/``check`` on HyperSpy ``.hspy`` (HDF5) files."""

from __future__ import annotations

from pathlib import Path

import pytest

import intake_zspy
from tests.test_62_hspy_errors import DATA, write_hspy

h5py = pytest.importorskip("h5py")


def test_describe_reports_the_hdf5_storage(tmp_path: Path) -> None:
    path = write_hspy(tmp_path / "run.hspy")
    doc = intake_zspy.describe(path)
    assert (doc["store_kind"], doc["file_format"], doc["format_version"]) == (
        "hdf5",
        "HyperSpy",
        "3.3",
    )
    assert doc["stored_bytes"] == path.stat().st_size
    (sig,) = doc["signals"]
    assert sig["chunks"] == [2, 5, 16]
    assert sig["stored_chunks"] == 2
    assert sig["compressor"] == {"id": "gzip", "level": 4}
    assert 0 < sig["stored_bytes"] < DATA.nbytes


def test_verify_reads_every_chunk_and_names_the_corrupted_one(tmp_path: Path) -> None:
    path = write_hspy(tmp_path / "run.hspy")
    report = intake_zspy.verify(path)
    assert report.problems == []
    assert report.kind == "hdf5"
    assert report.signals == ["spectra"]
    data = next(a for a in report.arrays if a.path.endswith("/data"))
    assert (data.expected, data.present) == (2, 2)

    with h5py.File(path, "r") as f:
        info = f["Experiments/spectra/data"].id.get_chunk_info(1)
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset + 8 : info.byte_offset + 40] = b"\xff" * 32
    path.write_bytes(bytes(raw))
    report = intake_zspy.verify(path)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("corrupted chunk Experiments/spectra/data/1.0.0:")
    assert str(path) in report.problems[0]


def test_verify_of_a_file_that_is_not_hyperspy(tmp_path: Path) -> None:
    path = tmp_path / "other.hspy"
    with h5py.File(path, "w") as f:
        f["x"] = [1, 2]
    report = intake_zspy.verify(path)
    assert report.problems
    assert "not a HyperSpy .hspy file" in report.problems[0]


def test_intake2_recommends_and_reads_hspy(tmp_path: Path) -> None:
    import intake

    from intake_zspy.intake2 import HSpy, ZspyDatasetReader

    path = write_hspy(tmp_path / "run.hspy")
    assert HSpy in intake.readers.datatypes.recommend(str(path))
    reader = HSpy(str(path)).to_reader("xarray:Dataset")
    assert isinstance(reader, ZspyDatasetReader)
    assert reader.read()["data"].shape == DATA.shape


def test_lazy_data_pickles_and_reopens_the_file(tmp_path: Path) -> None:
    import pickle

    import numpy as np

    path = write_hspy(tmp_path / "run.hspy")
    ds = intake_zspy.open_dataset(path, chunks={})
    copy = pickle.loads(pickle.dumps(ds))  # as dask.distributed ships tasks
    ds.close()
    np.testing.assert_array_equal(copy["data"].values, DATA)
    np.testing.assert_array_equal(copy["data"][1:3, ::2].values, DATA[1:3, ::2])
