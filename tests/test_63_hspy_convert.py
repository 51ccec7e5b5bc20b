"""``.hspy`` -> zspy: single files (``copy``, ``to_zspy``, the command line, S3) and
whole folders (parallel, skipping converted files, resuming after an interrupted run).

The HyperSpy-marked tests load each source and its conversion with ``hs.load`` in the
HyperSpy venv (``tests/hyperspy/compare_loads.py``): data, axes, metadata but
``General.FileIO``, original_metadata, learning results and models must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from intake_zspy import IncompleteStoreError
from intake_zspy.cli import main
from intake_zspy.ops.copy import split_chunks
from intake_zspy.ops.folder import convert_folder
from tests.hyperspy import env
from tests.test_62_hspy_errors import DATA, write_hspy

COMPARE = Path(__file__).parent / "hyperspy" / "compare_loads.py"


def assert_same_dataset(converted: xr.Dataset, source: xr.Dataset) -> None:
    xr.testing.assert_identical(xr.Dataset(converted.coords), xr.Dataset(source.coords))
    np.testing.assert_array_equal(converted["data"].values, source["data"].values)
    for key in ("title", "signal_type", "original_metadata", "attributes"):
        assert converted.attrs[key] == source.attrs[key], key


@pytest.mark.hyperspy
def test_hyperspy_loads_every_conversion_like_the_source(
    hyperspy_fixtures: Any, tmp_path: Path
) -> None:
    pairs: list[Path] = []
    for name in hyperspy_fixtures.hspy_names():
        source = hyperspy_fixtures.hspy_path(name)
        target = tmp_path / name.replace(".hspy", ".zspy")
        intake_zspy.copy(source, target)
        pairs += [source, target]
    for name in ("eels_si.hspy", "lazy_4dstem.hspy", "axes_functional.hspy"):
        source = hyperspy_fixtures.hspy_path(name)
        target = tmp_path / name.replace(".hspy", "_xr.zspy")
        intake_zspy.to_zspy(intake_zspy.open_dataset(source, chunks={}), target)
        pairs += [source, target]
    done = env.run_in_hyperspy(COMPARE, *pairs, timeout=600)  # fails on any problem
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == len(pairs) // 2
    assert all(r["problems"] == [] for r in records)


def test_convert_chooses_cloud_chunks_and_blosc(tmp_path: Path) -> None:
    source = write_hspy(tmp_path / "run.hspy")
    target = intake_zspy.copy(source, tmp_path / "run.zspy")
    zarray = json.loads((Path(target) / "Experiments/spectra/data/.zarray").read_text())
    assert zarray["chunks"] == [2, 5, 16]  # the HDF5 chunks, split only above 32 MiB
    assert zarray["compressor"]["id"] == "blosc"
    assert_same_dataset(intake_zspy.open_dataset(target), intake_zspy.open_dataset(source))


def test_hdf5_chunks_are_split_along_navigation_only() -> None:
    # HyperSpy's 4D-STEM chunks (94 MB) tile into 5 MB zspy chunks, each inside one
    assert split_chunks((19, 19, 256, 256), 4, [True, True, False, False], 2**25) == (
        19,
        1,
        256,
        256,
    )
    assert split_chunks((12, 8, 64), 4, [True, True, False], 64 * 4 * 8) == (3, 2, 64)
    assert split_chunks((3, 1000), 8, [True, False], 100) == (1, 1000)  # no further split


def test_cli_converts_to_s3(
    tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    source = write_hspy(tmp_path / "run.hspy")
    url = f"s3://{s3_bucket}/run.zspy"
    options = json.dumps(s3_storage_options)
    args = ["convert", str(source), url, "--storage-options", options, "--no-progress"]
    assert main([*args, "--chunks", "y=2"]) == 0
    converted = intake_zspy.open_dataset(url, storage_options=s3_storage_options, chunks={})
    assert converted["data"].chunks == ((2, 2), (5,), (16,))
    assert_same_dataset(converted, intake_zspy.open_dataset(source))


def _archive(root: Path) -> list[str]:
    (root / "day2").mkdir(parents=True)
    names = ["a.hspy", "b.hspy", "day2/c.hspy"]
    for i, name in enumerate(names):
        write_hspy(root / name, data=DATA + i)
    (root / "notes.txt").write_text("not a HyperSpy file")
    return names


def test_folder_to_s3_skips_converted_and_resumes(
    tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    names = _archive(tmp_path / "raw")
    prefix = f"s3://{s3_bucket}/lab"
    kw: dict[str, Any] = {"storage_options": None, "target_storage_options": s3_storage_options}
    first = convert_folder(f"{tmp_path}/raw/", prefix, workers=2, **kw)
    assert [i.status for i in first] == ["converted"] * 3
    assert [i.target for i in first] == [f"{prefix}/{n[:-5]}.zspy" for n in names]
    for i, item in enumerate(first):
        ds = intake_zspy.open_dataset(item.target, storage_options=s3_storage_options)
        np.testing.assert_array_equal(ds["data"].values, DATA + i)

    # b.zspy as a killed writer leaves it: everything but the root attributes (written last)
    fs = fsspec.filesystem("s3", **s3_storage_options)
    fs.rm([f"{s3_bucket}/lab/b.zspy/.zattrs", f"{s3_bucket}/lab/b.zspy/.zmetadata"])
    fs.invalidate_cache()
    with pytest.raises(IncompleteStoreError):
        intake_zspy.open_dataset(f"{prefix}/b.zspy", storage_options=s3_storage_options)
    again = convert_folder(f"{tmp_path}/raw/", prefix, workers=2, **kw)
    assert [i.status for i in again] == ["skipped", "converted", "skipped"]
    ds = intake_zspy.open_dataset(f"{prefix}/b.zspy", storage_options=s3_storage_options)
    np.testing.assert_array_equal(ds["data"].values, DATA + 1)

    forced = convert_folder(f"{tmp_path}/raw/", prefix, overwrite=True, **kw)
    assert [i.status for i in forced] == ["converted"] * 3


def test_folder_cli_reports_failures_and_refuses_foreign_targets(tmp_path: Path) -> None:
    _archive(tmp_path / "raw")
    (tmp_path / "raw" / "broken.hspy").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(32))
    out = tmp_path / "out"
    (out / "a.zspy").mkdir(parents=True)
    (out / "a.zspy" / "README").write_text("someone else's folder")
    args = ["convert", f"{tmp_path}/raw/", str(out), "--no-progress", "--jobs", "2"]
    assert main(args) == 2  # a.zspy refused, broken.hspy damaged: the others converted
    assert (out / "a.zspy" / "README").exists()
    assert intake_zspy.open_dataset(out / "day2" / "c.zspy")["data"].shape == DATA.shape
    assert not (out / "broken.zspy").exists()
