"""Bad input gets a specific error naming the URL and the problem, never a wrong answer."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr

import intake_zspy
from intake_zspy import (
    ChunkDecodeError,
    IncompleteStoreError,
    SignalNotFoundError,
    StaleMetadataWarning,
    UnsupportedCodecError,
    ZspyError,
    ZspyFormatError,
    ZspyVersionWarning,
)
from tests.builders import encode_store, signal_dict, uniform_axis, write_dir
from tests.conftest import zip_directory

DATA = np.arange(20, dtype="<f8").reshape(4, 5)
DATA_KEY = "Experiments/s/data"


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_dir(encode_store({"s": signal_dict(DATA, title="s")}), tmp_path / "good.zspy")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.zspy"):
        intake_zspy.open_dataset(tmp_path / "nope.zspy")


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty.zspy").mkdir()
    with pytest.raises(ZspyFormatError, match=r"empty\.zspy: not a zspy store: it is empty"):
        intake_zspy.open_dataset(tmp_path / "empty.zspy")


def test_plain_zarr_v2_group(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "plain.zspy", mode="w", zarr_format=2)
    root.create_array("x", shape=(3,), dtype="i4")
    with pytest.raises(ZspyFormatError, match="no file_format='ZSpy' attribute"):
        intake_zspy.open_dataset(tmp_path / "plain.zspy")


def test_zarr_v3_group(tmp_path: Path) -> None:
    zarr.open_group(tmp_path / "v3.zspy", mode="w", zarr_format=3)
    with pytest.raises(ZspyFormatError, match="zarr format 3"):
        intake_zspy.open_dataset(tmp_path / "v3.zspy")


def test_random_file(tmp_path: Path) -> None:
    path = tmp_path / "random.zspy"
    path.write_bytes(os.urandom(256))
    with pytest.raises(
        ZspyFormatError, match="neither a zip archive, an HDF5 file nor a directory"
    ):
        intake_zspy.open_dataset(path)


def test_hdf5_file(tmp_path: Path) -> None:
    path = tmp_path / "signal.hspy"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    # an HDF5 signature is read as HyperSpy's .hspy (test_62_hspy_errors): this one is cut
    with pytest.raises(ZspyFormatError, match="damaged or truncated HDF5 file"):
        intake_zspy.open_dataset(path)


def test_zip_that_is_not_zarr(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ZspyFormatError, match=r"no \.zgroup at its root"):
        intake_zspy.open_dataset(path)


def test_truncated_zip(good: Path, tmp_path: Path) -> None:
    whole = zip_directory(good, tmp_path / "whole.zspy").read_bytes()
    path = tmp_path / "truncated.zspy"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ZspyFormatError, match=r"truncated\.zspy: damaged or truncated zip"):
        intake_zspy.open_dataset(path)


def test_store_without_experiments(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "noexp.zspy", mode="w", zarr_format=2)
    root.attrs.update(file_format="ZSpy", file_format_version="3.3")
    with pytest.raises(ZspyFormatError, match="no signal: Experiments/ holds no group"):
        intake_zspy.open_dataset(tmp_path / "noexp.zspy")


def test_incomplete_store_without_root_attributes(good: Path) -> None:
    (good / ".zattrs").unlink()
    (good / ".zmetadata").unlink()
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_dataset(good)


def test_unknown_signal_is_a_key_error(good: Path) -> None:
    with pytest.raises(SignalNotFoundError) as info:
        intake_zspy.open_dataset(good, signal="other")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ZspyError)
    assert "available: s" in str(info.value)


def _chunk(good: Path) -> Path:
    chunks = sorted((good / DATA_KEY).rglob("[0-9]*"))
    return next(c for c in chunks if c.is_file())


def test_corrupted_chunk_names_array_and_key(good: Path) -> None:
    chunk = _chunk(good)
    chunk.write_bytes(os.urandom(chunk.stat().st_size))
    ds = intake_zspy.open_dataset(good)  # metadata is fine: opening works
    key = chunk.relative_to(good).as_posix()
    with pytest.raises(ChunkDecodeError, match=rf"chunk '{key}' of array '{DATA_KEY}'"):
        ds["data"].values  # noqa: B018


def test_truncated_chunk(good: Path) -> None:
    chunk = _chunk(good)
    chunk.write_bytes(chunk.read_bytes()[:20])
    with pytest.raises(ChunkDecodeError, match="corrupted or truncated"):
        intake_zspy.open_dataset(good)["data"].values  # noqa: B018


def test_missing_chunk_reads_as_fill_value(good: Path) -> None:
    _chunk(good).unlink()
    values = intake_zspy.open_dataset(good)["data"].values
    np.testing.assert_array_equal(values, np.zeros_like(DATA))


def _edit_json(path: Path, **changes: object) -> None:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


def test_unsupported_codec_is_named(good: Path) -> None:
    for path in (good / DATA_KEY / ".zarray", good / ".zmetadata"):
        doc = json.loads(path.read_text())
        target = doc["metadata"][f"{DATA_KEY}/.zarray"] if "metadata" in doc else doc
        target["compressor"] = {"id": "fancy-codec-9000"}
        path.write_text(json.dumps(doc))
    with pytest.raises(UnsupportedCodecError, match="'fancy-codec-9000'"):
        intake_zspy.open_dataset(good)["data"].values  # noqa: B018


def test_stale_consolidated_metadata_is_corrected(good: Path) -> None:
    attrs = good / "Experiments/s/metadata/General/.zattrs"
    stamp = (good / ".zmetadata").stat().st_mtime
    _edit_json(attrs, title="edited later")
    os.utime(attrs, (stamp + 5, stamp + 5))
    with pytest.warns(StaleMetadataWarning, match="metadata/General/.zattrs"):
        ds = intake_zspy.open_dataset(good)
    assert ds.attrs["title"] == "edited later"
    # trusting .zmetadata explicitly gives what it holds, without listing the store
    assert intake_zspy.open_dataset(good, consolidated=True).attrs["title"] == "s"


def test_store_newer_than_zmetadata_but_unchanged_is_silent(good: Path) -> None:
    later = time.time() + 10
    for path in good.rglob(".z*"):
        if path.name != ".zmetadata":
            os.utime(path, (later, later))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert intake_zspy.open_dataset(good).attrs["title"] == "s"


def test_group_added_after_consolidation_is_seen(good: Path) -> None:
    extra = good / "Experiments/s/original_metadata/Added"
    extra.mkdir(parents=True)
    (extra / ".zgroup").write_text('{"zarr_format": 2}')
    (extra / ".zattrs").write_text('{"k": 1}')
    with pytest.warns(StaleMetadataWarning):
        ds = intake_zspy.open_dataset(good)
    assert ds.attrs["original_metadata"]["Added"] == {"k": 1}


def test_consolidated_true_without_zmetadata(good: Path) -> None:
    (good / ".zmetadata").unlink()
    with pytest.raises(ZspyFormatError, match="consolidated=True but the store has no"):
        intake_zspy.open_dataset(good, consolidated=True)
    assert intake_zspy.open_dataset(good).attrs["title"] == "s"


def test_newer_format_version_warns(tmp_path: Path) -> None:
    items = encode_store(
        {"s": signal_dict(DATA)},
        root_attrs={"file_format": "ZSpy", "file_format_version": "4.0"},
    )
    with pytest.warns(ZspyVersionWarning, match="newer than the 3.3"):
        intake_zspy.open_dataset(write_dir(items, tmp_path / "new.zspy"))


def test_axis_size_mismatch(tmp_path: Path) -> None:
    axes = [uniform_axis(4), uniform_axis(6, navigate=False)]
    items = encode_store({"s": signal_dict(DATA, axes)})
    with pytest.raises(
        ZspyFormatError, match="axis-1: axis has 6 values but the data dimension has 5"
    ):
        intake_zspy.open_dataset(write_dir(items, tmp_path / "bad.zspy"))


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('false')", "x.__class__", "open('x')", "lambda: 1", "x if x else 1"],
)
def test_functional_axis_expression_is_never_evaluated(tmp_path: Path, expression: str) -> None:
    axis = {
        "_type": "FunctionalDataAxis", "name": "E", "units": "eV", "navigate": False,
        "is_binned": False, "size": 5, "expression": expression,
        "x": {"_type": "UniformDataAxis", "size": 5, "scale": 1.0, "offset": 0.0},
    }  # fmt: skip
    items = encode_store({"s": signal_dict(DATA, [uniform_axis(4), axis])})
    with pytest.raises(ZspyFormatError, match="axis expression"):
        intake_zspy.open_dataset(write_dir(items, tmp_path / "evil.zspy"))
