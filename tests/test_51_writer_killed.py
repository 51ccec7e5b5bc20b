"""A writer process killed (SIGKILL) mid-write leaves nothing that opens as a valid zspy.

Locally the target does not exist (new store) or is the old store (overwrite), and the
hidden staging sibling is rejected as incomplete; on S3 a new prefix is written in place
and rejected, an overwritten one is staged beside it. The writer is ``tests/slow_writer.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest

import intake_zspy
from intake_zspy import IncompleteStoreError
from tests.writer_places import OLD, is_data_chunk

REPO = Path(__file__).resolve().parents[1]
SLOW_WRITER = Path(__file__).resolve().parent / "slow_writer.py"

# -- a writer process killed mid-write ----------------------------------------------------

#: Bounds, in seconds: for chunks to appear, and for a killed process to exit.
KILL_WAIT_S = 45.0
REAP_S = 10.0
CHUNKS_BEFORE_KILL = 3
POLL_S = 0.05


@dataclass
class Scenario:
    """One write of the killed process: ``url``, whose target is in ``area`` of ``fs``; data
    chunks are watched for in ``watch`` (default: ``area``)."""

    url: str
    options: dict[str, Any]
    fs: fsspec.AbstractFileSystem
    area: str
    overwrite: bool = False
    store_type: str | None = None
    watch: str | None = None

    def job(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.options,
            "overwrite": self.overwrite,
            "store_type": self.store_type,
        }


@dataclass
class Killed:
    """What a killed writer left behind."""

    url: str
    options: dict[str, Any]
    area: str
    entries: set[str]  # names directly in ``area`` after the kill
    chunks_seen: int
    old_readable_during_write: bool | None
    extra: dict[str, Any] = field(default_factory=dict)


def _rel(key: str, area: str) -> str:
    """``key`` relative to ``area``."""
    return key.replace(os.sep, "/")[len(area.replace(os.sep, "/").rstrip("/")) + 1 :]


def _data_chunks(fs: fsspec.AbstractFileSystem, area: str) -> list[str]:
    """Data chunk keys in any store (target or staging sibling) directly under ``area``."""
    fs.invalidate_cache()
    try:
        keys = fs.find(area, withdirs=False)
    except FileNotFoundError:
        return []
    return [k for k in keys if is_data_chunk(_rel(k, area).partition("/")[2])]


def _old_holds(url: str, options: dict[str, Any]) -> bool:
    ds = intake_zspy.open_dataset(url, storage_options=options)
    return ds.attrs["title"] == "old" and bool(np.array_equal(ds["data"].values, OLD.values))


def run_and_kill(scenarios: list[Scenario], env: dict[str, str] | None = None) -> list[Killed]:
    """Run every scenario's write in one ``slow_writer.py`` process; once each has written
    data chunks (and every old store was checked readable meanwhile), SIGKILL it."""
    cmd = [sys.executable, str(SLOW_WRITER), json.dumps([sc.job() for sc in scenarios])]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: it cannot block the writer
        proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            chunks = [0] * len(scenarios)
            old_ok: list[bool | None] = [None] * len(scenarios)
            deadline = time.monotonic() + KILL_WAIT_S
            while min(chunks) < CHUNKS_BEFORE_KILL:
                if proc.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    pytest.fail(f"the writer exited ({proc.returncode}) too soon:\n{output}")
                assert time.monotonic() < deadline, f"no data chunks within {KILL_WAIT_S} s"
                for i, sc in enumerate(scenarios):
                    if chunks[i] < CHUNKS_BEFORE_KILL:
                        chunks[i] = len(_data_chunks(sc.fs, sc.watch or sc.area))
                        if sc.overwrite and chunks[i] >= CHUNKS_BEFORE_KILL:
                            # the old store stays readable while the new one is written
                            old_ok[i] = _old_holds(sc.url, sc.options)
                time.sleep(POLL_S)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=REAP_S)
        finally:
            if proc.poll() is None:  # only on an error above: never leave it running
                proc.kill()
                proc.wait(timeout=REAP_S)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    killed = []
    for sc, n, ok in zip(scenarios, chunks, old_ok, strict=True):
        sc.fs.invalidate_cache()
        entries = {_rel(k, sc.area).split("/")[0] for k in sc.fs.find(sc.area)}
        killed.append(Killed(sc.url, sc.options, sc.area, entries, n, ok))
    return killed


def _staging(killed: Killed) -> str:
    (name,) = [e for e in killed.entries if e.startswith(".run.zspy.tmp-")]
    return name


@pytest.fixture(scope="module")
def killed_local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Killed]:
    """A new local store, an overwrite of a local store and an overwrite of a local zip
    store, killed mid-write. A local zip is staged as a hidden directory beside it."""
    fs = fsspec.filesystem("file")
    new_area = tmp_path_factory.mktemp("kill-new")
    over_area = tmp_path_factory.mktemp("kill-overwrite")
    zip_area = tmp_path_factory.mktemp("kill-zip")
    intake_zspy.to_zspy(OLD, over_area / "run.zspy")
    intake_zspy.to_zspy(OLD, zip_area / "run.zspy", store_type="zip")
    new, over, zipped = run_and_kill(
        [
            Scenario(str(new_area / "run.zspy"), {}, fs, str(new_area)),
            Scenario(str(over_area / "run.zspy"), {}, fs, str(over_area), overwrite=True),
            Scenario(
                str(zip_area / "run.zspy"),
                {},
                fs,
                str(zip_area),
                overwrite=True,
                store_type="zip",
            ),
        ]
    )
    return {"new": new, "overwrite": over, "zip": zipped}


@pytest.fixture(scope="module")
def killed_s3(
    module_bucket: tuple[str, Any], s3_storage_options: dict[str, Any]
) -> dict[str, Killed]:
    """A new S3 prefix and an overwrite of an S3 prefix, killed mid-write."""
    bucket, fs = module_bucket
    options = dict(s3_storage_options)
    intake_zspy.to_zspy(OLD, f"s3://{bucket}/kill-over/run.zspy", storage_options=options)
    new, over = run_and_kill(
        [
            Scenario(f"s3://{bucket}/kill-new/run.zspy", options, fs, f"{bucket}/kill-new"),
            Scenario(
                f"s3://{bucket}/kill-over/run.zspy",
                options,
                fs,
                f"{bucket}/kill-over",
                overwrite=True,
            ),
        ]
    )
    return {"new": new, "overwrite": over}


def test_killed_local_new_store_leaves_no_target(killed_local: dict[str, Killed]) -> None:
    killed = killed_local["new"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert not os.path.lexists(killed.url)
    staging = _staging(killed)
    assert killed.entries == {staging}  # the hidden sibling, nothing else
    with pytest.raises(FileNotFoundError):
        intake_zspy.open_datatree(killed.url)
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(os.path.join(killed.area, staging))


def test_killed_local_overwrite_keeps_old_store(killed_local: dict[str, Killed]) -> None:
    killed = killed_local["overwrite"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.old_readable_during_write is True
    staging = _staging(killed)
    assert killed.entries == {"run.zspy", staging}
    assert _old_holds(killed.url, {})
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(os.path.join(killed.area, staging))


def test_killed_local_zip_overwrite_keeps_old_zip(killed_local: dict[str, Killed]) -> None:
    killed = killed_local["zip"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.old_readable_during_write is True
    # the zip is replaced in one rename, not yet done; the staging sibling is hidden
    (leftover,) = killed.entries - {"run.zspy"}
    assert leftover.startswith(".intake-zspy-")
    assert os.path.isfile(killed.url)
    assert _old_holds(killed.url, {})
    # what the killed writer left is rejected too
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(os.path.join(killed.area, leftover))


def test_killed_s3_new_prefix_is_rejected_as_incomplete(killed_s3: dict[str, Killed]) -> None:
    killed = killed_s3["new"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.entries == {"run.zspy"}  # written in place, no staging prefix
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(killed.url, storage_options=killed.options)
    with pytest.raises(IncompleteStoreError):
        intake_zspy.open_dataset(killed.url, storage_options=killed.options, consolidated=False)


def test_killed_s3_overwrite_keeps_old_store(killed_s3: dict[str, Killed]) -> None:
    killed = killed_s3["overwrite"]
    assert killed.chunks_seen >= CHUNKS_BEFORE_KILL
    assert killed.old_readable_during_write is True
    staging = _staging(killed)
    assert killed.entries == {"run.zspy", staging}
    assert _old_holds(killed.url, killed.options)
    with pytest.raises(IncompleteStoreError, match="incomplete store"):
        intake_zspy.open_datatree(f"s3://{killed.area}/{staging}", storage_options=killed.options)
