"""``.hspy`` (HDF5) files: the container is told from the bytes, bad input gets typed,
URL-naming errors, and nothing is unpickled.

Files here are written with h5py in HyperSpy's layout (as ``tests/hyperspy`` shows real
HyperSpy writes it); the reference comparison is ``test_61_hspy_reference.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import intake_zspy
from intake_zspy import (
    ChunkDecodeError,
    DamagedStoreError,
    UnsupportedVersionError,
    ZspyFormatError,
    ZspyVersionWarning,
)
from intake_zspy.storage import HDF5File, open_store

h5py = pytest.importorskip("h5py")

DATA = np.arange(4 * 5 * 16, dtype=np.float32).reshape(4, 5, 16)


def write_hspy(path: Path, *, version: str = "3.3", data: np.ndarray = DATA, **meta: Any) -> Path:
    """A small file in HyperSpy's ``.hspy`` layout (chunked, gzip, as HyperSpy saves)."""
    with h5py.File(path, "w") as f:
        f.attrs["file_format"] = "HyperSpy"
        f.attrs["file_format_version"] = version
        sig = f.create_group("Experiments/spectra")
        sig.attrs["package"] = "hyperspy"
        sig.create_dataset("data", data=data, chunks=(2, 5, 16), compression="gzip")
        for i, (name, nav) in enumerate([("y", True), ("x", True), ("E", False)][: data.ndim]):
            axis = sig.create_group(f"axis-{i}")
            axis.attrs.update(
                {"_type": "UniformDataAxis", "name": name, "units": "nm", "navigate": nav}
            )
            axis.attrs.update({"size": data.shape[i], "scale": 0.5, "offset": 1.0})
            axis.attrs["is_binned"] = False
        general = sig.create_group("metadata/General")
        general.attrs["title"] = "spectra"
        general.attrs["note"] = np.bytes_(b"fixed-width bytes")
        sig.create_group("original_metadata").attrs.update(meta)
        sig.create_dataset(
            "original_metadata/_list_names", data=["a", "bb"], dtype=h5py.string_dtype()
        )
        sig.create_group("attributes").attrs["ragged"] = False
    return path


def test_reads_the_layout(tmp_path: Path) -> None:
    path = write_hspy(tmp_path / "run.hspy", counts=np.int64(3), gain=np.float64(1.5), flag=True)
    ds = intake_zspy.open_dataset(path)
    np.testing.assert_array_equal(ds["data"].values, DATA)
    np.testing.assert_array_equal(ds["E"].values, 1.0 + 0.5 * np.arange(16))
    assert ds.attrs["title"] == "spectra"
    assert ds.attrs["metadata"]["General"]["note"] == "fixed-width bytes"
    original = ds.attrs["original_metadata"]
    assert original == {"counts": 3, "gain": 1.5, "flag": True, "names": ["a", "bb"]}
    assert [type(original[k]) for k in ("counts", "gain", "flag")] == [int, float, bool]
    # lazy reads of hyperslabs, including reversed and strided selections
    np.testing.assert_array_equal(ds["data"][::-1, 1::2, 3].values, DATA[::-1, 1::2, 3])
    assert ds["data"].encoding["preferred_chunks"] == {"y": 2, "x": 5, "E": 16}


def test_the_container_is_told_from_the_bytes(tmp_path: Path) -> None:
    path = write_hspy(tmp_path / "misnamed.zspy")  # an HDF5 file under a zspy name
    with open_store(path) as store:
        assert isinstance(store, HDF5File)
        assert store.kind == "hdf5"
    assert intake_zspy.open_dataset(path)["data"].shape == DATA.shape


def test_hdf5_that_is_not_hyperspy(tmp_path: Path) -> None:
    path = tmp_path / "nexus.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("entry/data", data=np.zeros(3))
    with pytest.raises(ZspyFormatError, match=rf"{path}: an HDF5 file but not a HyperSpy"):
        intake_zspy.open_dataset(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "signal.hspy"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(DamagedStoreError, match=rf"{path}: damaged or truncated HDF5 file"):
        intake_zspy.open_dataset(path)


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_file(tmp_path: Path, fraction: float) -> None:
    path = write_hspy(tmp_path / "whole.hspy")
    cut = tmp_path / "cut.hspy"
    raw = path.read_bytes()
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises((DamagedStoreError, ChunkDecodeError), match=str(cut)):
        intake_zspy.open_dataset(cut)["data"].load()


def test_older_versions_are_refused_saying_which_are_read(tmp_path: Path) -> None:
    path = write_hspy(tmp_path / "old.hspy", version="1.3")
    with pytest.raises(UnsupportedVersionError, match=r"version '1.3'.*reads versions 2.0 to 3.3"):
        intake_zspy.open_dataset(path)


def test_newer_versions_warn(tmp_path: Path) -> None:
    path = write_hspy(tmp_path / "new.hspy", version="4.0")
    with pytest.warns(ZspyVersionWarning, match="HyperSpy format version 4.0"):
        intake_zspy.open_dataset(path)


def test_opaque_bytes_are_never_unpickled(tmp_path: Path) -> None:
    path = write_hspy(tmp_path / "pickled.hspy")
    with h5py.File(path, "r+") as f:
        f["Experiments/spectra/original_metadata"].attrs["obj"] = np.void(b"\x80\x04K\x01.")
    with pytest.raises(ZspyFormatError, match="never unpickles"):
        intake_zspy.open_dataset(path)


def test_missing_h5py_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_hspy(tmp_path / "run.hspy")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"intake-zspy\[hspy\]"):
        intake_zspy.open_dataset(path)


@pytest.mark.parametrize("prefix", ["", "simplecache::"])
def test_reads_from_s3(
    tmp_path: Path, prefix: str, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    from tests.s3server import upload

    url = f"s3://{s3_bucket}/run.hspy"
    upload(write_hspy(tmp_path / "run.hspy"), url, s3_storage_options)
    options = {"s3": s3_storage_options} if prefix else s3_storage_options
    ds = intake_zspy.open_dataset(f"{prefix}{url}", storage_options=options, chunks={})
    assert ds["data"].chunks == ((2, 2), (5,), (16,))
    np.testing.assert_array_equal(ds["data"].values, DATA)
    assert ds.attrs["original_metadata"]["names"] == ["a", "bb"]
    ds.close()


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "gzip", "shuffle": True},  # HyperSpy's own files use both
        {"compression": "gzip", "shuffle": True, "fillvalue": -1.5},  # unwritten chunks
        {},  # chunked, no filter
        {"compression": "lzf"},  # not decoded directly: HDF5 reads it
    ],
)
def test_direct_chunk_reads_equal_hdf5(tmp_path: Path, options: dict[str, Any]) -> None:
    """Chunks read by byte range and inflated in the caller equal what HDF5 reads, edge
    chunks, fill values and strided selections included."""
    path = write_hspy(tmp_path / "run.hspy")
    data = np.arange(7 * 9 * 5, dtype=">f4").reshape(7, 9, 5)
    with h5py.File(path, "r+") as f:
        del f["Experiments/spectra/data"]
        ds = f.create_dataset("Experiments/spectra/data", shape=data.shape, dtype=data.dtype,
                              chunks=(3, 4, 5), **options)  # fmt: skip
        ds[:6] = data[:6]  # chunks of the last row stay unwritten
        for i, n in enumerate(data.shape):
            f[f"Experiments/spectra/axis-{i}"].attrs["size"] = n
        expected = ds[()]
    lazy = intake_zspy.open_dataset(path)["data"]
    np.testing.assert_array_equal(lazy.values, expected)
    np.testing.assert_array_equal(lazy[1:7:2, ::-3, 2].values, expected[1:7:2, ::-3, 2])
    chunked = intake_zspy.open_dataset(path, chunks={})["data"]
    np.testing.assert_array_equal(chunked.values, expected)
