"""Shared fixtures: store kinds, the public corpus, the S3 server and HyperSpy."""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

pytest_plugins = ["tests.s3server", "tests.hyperspy.plugin", "tests.writer_places"]

# shared test suites outside test modules: assertions rewritten like a test module's
pytest.register_assert_rewrite("tests.store_conformance")

#: HyperSpy's own test files, shared with the developers (absent on some machines): the
#: folder $INTAKE_ZSPY_CORPUS names, else ../shared/corpus-dev beside the project.
CORPUS = Path(
    os.environ.get("INTAKE_ZSPY_CORPUS")
    or Path(__file__).resolve().parents[2] / "shared" / "corpus-dev"
).expanduser()

STORE_KINDS = ["directory", "zip", "memory", pytest.param("s3", marks=pytest.mark.s3)]


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.zspy")) if CORPUS.is_dir() else []


def zip_directory(src: Path, dest: Path) -> Path:
    """Zip a directory store the way zarr's ZipStore does (members stored, not deflated)."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())
    return dest


def unzip(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(src) as zf:
        zf.extractall(dest)
    return dest


@pytest.fixture
def memory_fs() -> Iterator[fsspec.AbstractFileSystem]:
    """fsspec's in-memory filesystem, emptied around each test."""
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    yield fs
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def publish(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[Path], tuple[str, dict[str, Any]]]:
    """Place a local directory store on the parametrised kind of storage.

    Returns a function ``publish(local_dir) -> (url, storage_options)``.
    """

    def place(src: Path) -> tuple[str, dict[str, Any]]:
        name = f"{src.name.removesuffix('.zspy')}-{uuid.uuid4().hex[:6]}.zspy"
        if src.is_file():  # a zip store
            src = unzip(src, tmp_path / f"unzipped-{name}")
        if store_kind == "directory":
            dest = tmp_path / name
            shutil.copytree(src, dest)
            return str(dest), {}
        if store_kind == "zip":
            return str(zip_directory(src, tmp_path / name)), {}
        if store_kind == "memory":
            fs = request.getfixturevalue("memory_fs")
            for path in src.rglob("*"):
                if path.is_file():
                    fs.pipe_file(f"/{name}/{path.relative_to(src).as_posix()}", path.read_bytes())
            return f"memory://{name}", {}
        from tests.s3server import upload

        bucket = request.getfixturevalue("s3_bucket")
        options = request.getfixturevalue("s3_storage_options")
        url = f"s3://{bucket}/{name}"
        upload(src, url, options)
        return url, dict(options)

    return place


def pytest_report_header() -> list[str]:
    corpus = f"{len(corpus_files())} files in {CORPUS}" if corpus_files() else "absent"
    return [
        f"zspy corpus-dev: {corpus}",
        f"HyperSpy venv override: {os.environ.get('INTAKE_ZSPY_HYPERSPY_VENV', '-')}",
    ]
