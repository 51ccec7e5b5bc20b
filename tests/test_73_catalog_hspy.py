"""Folder and bucket catalogs list HyperSpy ``.hspy`` files beside ``.zspy`` stores, with
the same summaries, descriptions and search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from intake_zspy.catalog import ZspyStoresCatalog
from intake_zspy.catalog._listing import find_stores
from tests.s3server import upload
from tests.test_62_hspy_errors import DATA, write_hspy
from tests.test_72_catalog import write_eds


def mixed_folder(root: Path) -> Path:
    """``eds.zspy/`` (a zspy store), ``spectra.hspy``, ``day2/more.hspy``, a broken
    ``cut.hspy`` and an HDF5 file that is not HyperSpy's."""
    import h5py

    write_eds(root / "eds.zspy")
    write_hspy(root / "spectra.hspy")
    (root / "day2").mkdir()
    write_hspy(root / "day2" / "more.hspy", data=DATA[:2])
    (root / "cut.hspy").write_bytes((root / "spectra.hspy").read_bytes()[:300])
    with h5py.File(root / "other.hspy", "w") as f:
        f["x"] = np.zeros(2)
    return root


SPECTRA_AXES = [
    {"dim": "y", "name": "y", "units": "nm", "navigate": True, "size": 4},
    {"dim": "x", "name": "x", "units": "nm", "navigate": True, "size": 5},
    {"dim": "E", "name": "E", "units": "nm", "navigate": False, "size": 16},
]


def check_listing(infos: list[Any]) -> None:
    by_name = {i.name: i for i in infos}
    assert sorted(by_name) == ["cut", "day2/more", "eds", "other", "spectra"]
    assert [by_name[n].kind for n in ("eds", "spectra", "day2/more")] == [
        "directory" if by_name["eds"].url.startswith("/") else "prefix",
        "hdf5",
        "hdf5",
    ]
    spectra = by_name["spectra"]
    assert spectra.error is None
    assert spectra.format_version == "3.3"
    (summary,) = spectra.signals
    assert summary.pop("chunks", [2, 5, 16]) == [2, 5, 16]  # the HDF5 chunks
    assert summary == (
        {
            "signal": "spectra",
            "title": "spectra",
            "signal_type": "",
            "shape": [4, 5, 16],
            "dtype": "float32",
            "axes": SPECTRA_AXES,
        }
    )
    assert by_name["day2/more"].signals[0]["shape"] == [2, 5, 16]
    assert by_name["cut"].error_type == "DamagedStoreError"
    assert by_name["other"].error_type == "ZspyFormatError"
    assert "not a HyperSpy .hspy file" in str(by_name["other"].error)


def test_find_stores_lists_hspy_files(tmp_path: Path) -> None:
    check_listing(find_stores(str(mixed_folder(tmp_path / "lab"))))


def test_find_stores_on_s3(
    tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    root = mixed_folder(tmp_path / "lab")
    for path in root.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            upload(path, f"s3://{s3_bucket}/lab/{rel}", s3_storage_options)
    check_listing(find_stores(f"s3://{s3_bucket}/lab", s3_storage_options))


def test_stores_catalog_describes_searches_and_reads_hspy(tmp_path: Path) -> None:
    cat = ZspyStoresCatalog(str(mixed_folder(tmp_path / "lab")))
    entry = cat["spectra"]
    assert entry.describe()["metadata"]["store_kind"] == "hdf5"
    assert "spectra" in list(cat.search("spectra"))
    ds = cat["day2/more"].read()
    np.testing.assert_array_equal(ds["data"].values, DATA[:2])
    with pytest.raises(Exception, match="damaged or truncated HDF5 file"):
        cat["cut"].read()
