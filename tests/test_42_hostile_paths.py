"""Hostile paths: names that leave the store or the write target.

Zip members that slip out of ``convert``'s target, symlinks out of a directory store, S3 keys
with ``..`` and ``to_zspy`` names that would leave the target: each is refused with an error
naming the offending path, and no file is written outside a target.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest

import intake_zspy
from intake_zspy.errors import UnsafePathError
from tests.builders import write_dir
from tests.hostile import (
    DATA,
    FIRST_CHUNK,
    SIG,
    base_items,
    cli,
    consolidate,
    expect,
    fresh_dataset,
    snapshot,
    write_zip,
)


def mentions(text: str, name: str) -> bool:
    """``name`` appears in ``text`` as such or as its ``repr``."""
    return name in text or repr(name) in text or repr(name)[1:-1] in text


# == paths that leave the store or the write target =====================================

SLIP_MEMBERS = (
    "../../slipped.txt",
    "Experiments/../../../slipped2.txt",
    "/abs-slipped.txt",
    "..\\x",
)


def _work_dirs(tmp_path: Path) -> Path:
    cwd = tmp_path / "w1" / "w2" / "w3" / "w4"
    cwd.mkdir(parents=True)
    return cwd


@pytest.mark.parametrize("member", SLIP_MEMBERS)
def test_convert_refuses_zip_slip(tmp_path: Path, member: str) -> None:
    items = consolidate(base_items())
    src = write_zip(items, tmp_path / "hostile.zspy")
    with zipfile.ZipFile(src, "a") as zf:
        zf.writestr(member, b"pwned\n")
    cwd = _work_dirs(tmp_path)
    before = snapshot(tmp_path)
    done = cli("convert", src, "out.zspy", cwd=cwd)
    after = snapshot(tmp_path)
    assert done.returncode == 2, f"rc={done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    assert mentions(done.stderr, member), done.stderr
    assert str(src) in done.stderr, done.stderr
    assert after == before, f"files appeared: {sorted(set(after) - set(before))}"
    assert not (cwd / "out.zspy").exists()


def _symlinked_store(tmp_path: Path, what: str) -> tuple[Path, str]:
    """A directory store with one entry replaced by a symlink to a file outside it."""
    items = base_items()
    store = write_dir(items, tmp_path / "linked.zspy")  # no .zmetadata: documents are read
    outside = tmp_path / "outside"
    outside.mkdir()
    if what == "document":
        key = f"{SIG}/metadata/General/.zattrs"
        secret = outside / "secret.json"
        secret.write_text(json.dumps({"title": "s", "secret": "hunter2"}))
        (store / key).unlink()
        (store / key).symlink_to(secret)
    elif what == "chunk":
        key = FIRST_CHUNK
        secret = outside / "chunk.bin"
        secret.write_bytes((store / key).read_bytes())
        (store / key).unlink()
        (store / key).symlink_to(secret)
    else:
        key = f"{SIG}/original_metadata"
        moved = outside / "original_metadata"
        (store / key).rename(moved)
        (moved / ".zattrs").write_text(json.dumps({"secret": "hunter2"}))
        (store / key).symlink_to(moved, target_is_directory=True)
    return store, key


@pytest.mark.parametrize("what", ["document", "chunk", "directory"])
def test_symlink_out_of_store_is_refused(tmp_path: Path, what: str) -> None:
    store, key = _symlinked_store(tmp_path, what)
    expect(UnsafePathError, str(store), key)


def test_convert_refuses_symlink_out_of_store(tmp_path: Path) -> None:
    store, key = _symlinked_store(tmp_path, "document")
    cwd = _work_dirs(tmp_path)
    before = snapshot(tmp_path)
    done = cli("convert", store, "out.zspy", cwd=cwd)
    assert done.returncode == 2, f"rc={done.returncode}\n{done.stderr}"
    assert key in done.stderr, done.stderr
    assert snapshot(tmp_path) == before


def test_store_reached_through_symlinks_still_reads(tmp_path: Path) -> None:
    """Symlinks above the store root, or inside it pointing inside it, are not hostile."""
    items = base_items()
    real = write_dir(items, tmp_path / "real" / "run.zspy")
    inner = real / SIG / "metadata" / "General"
    (inner / "copy.json").write_bytes((inner / ".zattrs").read_bytes())
    (inner / ".zattrs").unlink()
    (inner / ".zattrs").symlink_to("copy.json")
    (tmp_path / "alias.zspy").symlink_to(real, target_is_directory=True)
    ds = intake_zspy.open_dataset(tmp_path / "alias.zspy")
    assert ds.attrs["title"] == "s"
    np.testing.assert_array_equal(ds["data"].values, DATA)


@pytest.mark.s3
def test_convert_refuses_dotdot_key_on_s3(
    tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3_storage_options)
    items = consolidate(base_items())
    prefix = f"{s3_bucket}/run.zspy"
    fs.pipe({f"{prefix}/{k}": v for k, v in items.items()})
    evil = f"{prefix}/Experiments/../../x"
    fs.pipe_file(evil, b"pwned\n")
    fs.invalidate_cache()
    listed = fs.find(prefix)
    if not any("/../" in k for k in listed):
        pytest.skip(f"the S3 server or s3fs normalised the key away: {listed}")
    cwd = _work_dirs(tmp_path)
    before = snapshot(tmp_path)
    options = json.dumps(s3_storage_options)
    done = cli("convert", f"s3://{prefix}", "out.zspy", "--storage-options", options, cwd=cwd)
    assert done.returncode == 2, f"rc={done.returncode}\n{done.stderr}"
    assert "Experiments/../../x" in done.stderr, done.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("attrs", "name"),
    [
        ({"zspy_signal": "../escape"}, "../escape"),
        ({"zspy_signal": ".."}, ".."),
        ({"metadata": {"..": {"..": {"..": {"..": {"..": {"evil": 1}}}}}}}, ".."),
        ({"metadata": {"General": {".zattrs": {"evil": 1}}}}, ".zattrs"),
        ({"original_metadata": {".zgroup": {"evil": 1}}}, ".zgroup"),
        ({"original_metadata": {"..": np.arange(3)}}, ".."),
    ],
    ids=["signal-dotdot-slash", "signal-dotdot", "metadata-dotdot", "zattrs", "zgroup", "array"],
)
def test_to_zspy_refuses_names_leaving_the_target(
    tmp_path: Path, attrs: dict[str, Any], name: str
) -> None:
    target = tmp_path / "w" / "out.zspy"
    target.parent.mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        intake_zspy.to_zspy(fresh_dataset(**attrs), target)
    assert mentions(str(info.value), name), str(info.value)
    assert snapshot(tmp_path) == before, "something was written"
