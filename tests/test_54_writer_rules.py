"""Writer rules: the title rule, metadata keys with "/" and keys that cannot be stored,
stored chunks kept on a rewrite, and the permissions of written files.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import intake_zspy
from tests.hostile import (
    CHUNKS,
    DATA,
    DATA_KEY,
    base_items,
    cli,
    fresh_dataset,
    place,
    snapshot,
)

# == the writer's title rule ============================================================

TITLE_RUNGS = ["metadata", "attrs", "long_name", "name"]


@pytest.mark.parametrize("rung", TITLE_RUNGS)
def test_title_precedence(tmp_path: Path, rung: str) -> None:
    """Each rung is given together with every lower one, and must win over them."""
    level = TITLE_RUNGS.index(rung)
    attrs: dict[str, Any] = {}
    var_attrs: dict[str, Any] = {}
    if level <= 0:
        attrs["metadata"] = {"General": {"title": "fresh dataset"}}
    if level <= 1:
        attrs["title"] = "attrs title"
    if level <= 2:
        var_attrs["long_name"] = "long name"
    ds = xr.Dataset({"intensity": (("x", "E"), DATA, var_attrs)}, attrs=attrs)
    expected = {
        "metadata": "fresh dataset",
        "attrs": "attrs title",
        "long_name": "long name",
        "name": "intensity",
    }[rung]
    path = tmp_path / "titled.zspy"
    intake_zspy.to_zspy(ds, path)
    back = intake_zspy.open_dataset(path)
    assert back.attrs["title"] == expected
    assert back.attrs["zspy_signal"] == expected
    assert back.attrs["metadata"]["General"]["title"] == expected
    assert (path / "Experiments" / expected / ".zgroup").is_file()


def test_metadata_title_of_a_fresh_dataset(tmp_path: Path) -> None:
    ds = xr.Dataset(
        {"intensity": (("x", "E"), DATA)},
        attrs={"metadata": {"General": {"title": "fresh dataset"}}},
    )
    path = tmp_path / "fresh.zspy"
    intake_zspy.to_zspy(ds, path)
    assert intake_zspy.open_dataset(path).attrs["title"] == "fresh dataset"
    assert (path / "Experiments" / "fresh dataset" / "data" / ".zarray").is_file()


# == metadata keys with "/" and keys that cannot be stored ==============================


def test_metadata_keys_with_slashes(tmp_path: Path) -> None:
    original = {
        "DM": {
            "Dark Current (counts/s)": 1.5,
            "a.b": 2,
            "unicode µm": "x",
            "Exposure (s)": [1.0, 2.0],
            "Sub/Group": {"k": 1},
        }
    }
    path = tmp_path / "slash.zspy"
    intake_zspy.to_zspy(fresh_dataset(original_metadata=original), path)
    dm = intake_zspy.open_dataset(path).attrs["original_metadata"]["DM"]
    assert dm["Dark Current (counts/s)"] == 1.5
    assert dm["a.b"] == 2
    assert dm["unicode µm"] == "x"
    assert list(dm["Exposure (s)"]) == [1.0, 2.0]
    assert dm["Sub"] == {"Group": {"k": 1}}
    assert "Sub/Group" not in dm


@pytest.mark.parametrize("key", ["", ".", "..", ".zattrs", ".zgroup", ".zarray"])
def test_unstorable_metadata_key(tmp_path: Path, key: str) -> None:
    original = {"DM": {key: {"k": 1}, "ok": 1}}
    target = tmp_path / "out" / "bad.zspy"
    target.parent.mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        intake_zspy.to_zspy(fresh_dataset(original_metadata=original), target)
    message = str(info.value)
    assert "DM" in message, message
    assert repr(key) in message or f"DM/{key}" in message, message
    assert snapshot(tmp_path) == before


# == chunks are kept ====================================================================


def test_rewrite_keeps_stored_chunks(tmp_path: Path) -> None:
    src = place(base_items(), tmp_path / "src.zspy")
    ds = intake_zspy.open_dataset(src)  # no dask
    intake_zspy.to_zspy(ds, tmp_path / "kept.zspy")
    kept = json.loads((tmp_path / "kept.zspy" / DATA_KEY / ".zarray").read_text())
    assert kept["chunks"] == list(CHUNKS)
    np.testing.assert_array_equal(intake_zspy.open_dataset(tmp_path / "kept.zspy")["data"], DATA)
    intake_zspy.to_zspy(ds, tmp_path / "asked.zspy", chunks=(1, 5))
    asked = json.loads((tmp_path / "asked.zspy" / DATA_KEY / ".zarray").read_text())
    assert asked["chunks"] == [1, 5]


# == permissions of written files =======================================================


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> set[tuple[str, int]]:
    """``{("d" | "f", mode)}`` of a tree (root included)."""
    found = {("d", root.stat().st_mode & 0o777)}
    for path in root.rglob("*"):
        found.add(("d" if path.is_dir() else "f", path.stat().st_mode & 0o777))
    return found


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"),
    [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)],
    ids=["umask-022", "umask-027"],
)
def test_written_file_modes_follow_umask(
    tmp_path: Path, mask: int, file_mode: int, dir_mode: int
) -> None:
    ds = fresh_dataset()
    src = place(base_items(), tmp_path / "src.zspy")
    with umask(mask):
        intake_zspy.to_zspy(ds, tmp_path / "x-zip.zspy", store_type="zip")
        intake_zspy.to_zspy(ds, tmp_path / "x.zspy")
        intake_zspy.to_zspy(ds, tmp_path / "x.zspy", overwrite=True)
        intake_zspy.to_zspy(ds, tmp_path / "x-zip.zspy", store_type="zip", overwrite=True)
        zipped = tmp_path / "converted-zip.zspy"
        done = cli("convert", src, zipped, "--store-type", "zip", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        done = cli("convert", src, tmp_path / "converted.zspy", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "x-zip.zspy").stat().st_mode & 0o777 == file_mode
    assert zipped.stat().st_mode & 0o777 == file_mode
    for tree in ("x.zspy", "converted.zspy"):
        assert _modes(tmp_path / tree) == {("d", dir_mode), ("f", file_mode)}, tree
