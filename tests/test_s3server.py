"""Tests of the moto S3 fixtures in ``tests/s3server.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pytest

from tests.s3server import upload

#: Buckets seen by earlier tests in this module, to check each test gets a new one.
_SEEN_BUCKETS: list[str] = []


def _fs(storage_options: dict[str, Any]) -> Any:
    return fsspec.filesystem("s3", **storage_options)


def test_endpoint_is_loopback_moto(s3_endpoint: str) -> None:
    parts = urlsplit(s3_endpoint)
    assert parts.scheme == "http"
    assert parts.hostname == "127.0.0.1"
    assert parts.port is not None
    assert parts.port > 0


def test_put_get_and_list(s3_bucket: str, s3_storage_options: dict[str, Any]) -> None:
    fs = _fs(s3_storage_options)
    fs.pipe(f"{s3_bucket}/data/a.bin", b"\x00\x01abc")
    fs.pipe(f"s3://{s3_bucket}/data/sub/b.txt", b"hello")
    fs.pipe(f"{s3_bucket}/other.txt", b"x")

    assert fs.cat(f"s3://{s3_bucket}/data/a.bin") == b"\x00\x01abc"
    assert fs.cat_file(f"{s3_bucket}/data/sub/b.txt", start=1, end=4) == b"ell"
    assert fs.ls(f"{s3_bucket}/data", detail=False) == [
        f"{s3_bucket}/data/a.bin",
        f"{s3_bucket}/data/sub",
    ]
    assert fs.find(f"{s3_bucket}/data") == [
        f"{s3_bucket}/data/a.bin",
        f"{s3_bucket}/data/sub/b.txt",
    ]
    assert fs.size(f"{s3_bucket}/data/a.bin") == 5
    # A second, uncached instance sees the same objects: they are on the server.
    fresh = fsspec.filesystem("s3", skip_instance_cache=True, **s3_storage_options)
    assert fresh.find(s3_bucket) == sorted(
        [f"{s3_bucket}/data/a.bin", f"{s3_bucket}/data/sub/b.txt", f"{s3_bucket}/other.txt"]
    )


def test_upload_tree_and_file(
    tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    tree = tmp_path / "store.zspy"
    (tree / "Experiments" / "sig" / "data").mkdir(parents=True)
    (tree / "empty_dir").mkdir()
    files = {
        ".zgroup": b'{"zarr_format": 2}',
        "Experiments/sig/.zattrs": b"{}",
        "Experiments/sig/data/0.0": bytes(range(256)),
    }
    for rel, content in files.items():
        (tree / rel).write_bytes(content)
    single = tmp_path / "single.bin"
    single.write_bytes(b"one file")

    upload(tree, f"s3://{s3_bucket}/stores/store.zspy", s3_storage_options)
    upload(str(single), f"s3://{s3_bucket}/files/renamed.bin", s3_storage_options)
    upload(single, f"s3://{s3_bucket}/dir/", s3_storage_options)

    fs = _fs(s3_storage_options)
    prefix = f"{s3_bucket}/stores/store.zspy"
    assert fs.find(prefix) == sorted(f"{prefix}/{rel}" for rel in files)
    for rel, content in files.items():
        assert fs.cat(f"{prefix}/{rel}") == content
    assert fs.cat(f"{s3_bucket}/files/renamed.bin") == b"one file"
    assert fs.cat(f"{s3_bucket}/dir/single.bin") == b"one file"

    with pytest.raises(FileNotFoundError):
        upload(tmp_path / "missing", f"s3://{s3_bucket}/x", s3_storage_options)


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_a_new_empty_bucket(
    round_: int, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    fs = _fs(s3_storage_options)
    assert fs.exists(s3_bucket)
    assert fs.find(s3_bucket) == []
    assert s3_bucket not in _SEEN_BUCKETS
    # Buckets of earlier tests were removed with their contents.
    buckets = fs.ls("", detail=False)
    assert s3_bucket in buckets
    for old in _SEEN_BUCKETS:
        assert old not in buckets
        assert not fs.exists(old)
    _SEEN_BUCKETS.append(s3_bucket)
    fs.pipe(f"{s3_bucket}/left-over-{round_}", b"removed by the fixture")


def test_options_win_over_fsspec_s3_config(
    monkeypatch: pytest.MonkeyPatch, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    """A sourced s3lab env (``FSSPEC_S3_ENDPOINT_URL``) must not redirect or break the tests."""
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": "http://127.0.0.1:9"})
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3_storage_options)
    fs.pipe(f"{s3_bucket}/k", b"v")
    assert fs.cat(f"{s3_bucket}/k") == b"v"


def test_s3_marker_added(request: pytest.FixtureRequest, s3_bucket: str) -> None:
    assert request.node.get_closest_marker("s3") is not None


def test_not_s3_deselects(tmp_path: Path) -> None:
    """``-m "not s3"`` deselects the tests that use the fixtures and starts no server."""
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(
        "def test_uses_s3(s3_bucket):\n    raise AssertionError\n\ndef test_plain():\n    pass\n"
    )
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.s3server"]\n')
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not s3",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 deselected" in result.stdout
