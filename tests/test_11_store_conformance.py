"""Every kind of key-value store passes one conformance suite (``tests/store_conformance.py``).

The kinds: a local directory, a local zip file (by path and by a ``zip::`` URL), a prefix of
the ``memory://`` filesystem, a prefix and a zip object on S3 (a real moto server over HTTP,
see ``tests/s3server.py``) and the zarr-store adapter over zarr 3's ``MemoryStore`` and
``LocalStore`` (writable and read-only). Each class below only says how its storage is
written to and opened, and how its kind differs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fsspec
import pytest
import zarr
from fsspec.asyn import sync
from zarr.core.buffer import cpu

from intake_zspy.errors import UnsafePathError
from intake_zspy.storage import (
    STORE_KINDS,
    DirectoryStore,
    FsspecStore,
    KeyInfo,
    KeyValueStore,
    SnapshotStore,
    StoreKind,
    check_key,
    open_store,
    resolve,
)
from tests.store_conformance import (
    ITEMS,
    UNSAFE_KEYS,
    Backend,
    ReadOnlyStoreConformance,
    StoreConformance,
    TargetConformance,
    WritableStoreConformance,
    files_open_under,
)

#: Stores beside the one under test whose names start with its name: never listed with it.
DECOYS = {"store.zspy2/.zgroup": b"{}", "store.zspy-sibling/a/b": b"decoy", "other/x": b"x"}


def _walk(root: Path) -> dict[str, Any]:
    """Every file (with its bytes) and directory under ``root``."""
    out: dict[str, Any] = {}
    for parent, dirs, files in os.walk(root):
        rel = Path(parent).relative_to(root)
        out.update({(rel / d).as_posix(): "<dir>" for d in dirs})
        out.update({(rel / f).as_posix(): Path(parent, f).read_bytes() for f in files})
    return out


def _write_files(root: Path, items: Mapping[str, bytes]) -> None:
    for key, value in items.items():
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)


class LocalBackend(Backend):
    """A store in a local folder or file below ``tmp``."""

    tmp: Path

    def open_files(self) -> list[str]:
        return files_open_under(self.tmp)

    def snapshot(self) -> object:
        return _walk(self.tmp)


# -- a local directory ---------------------------------------------------------------------


class DirectoryBackend(LocalBackend):
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "store.zspy"
        self.root.mkdir()
        self.url = str(self.root)
        _write_files(tmp_path, DECOYS)

    def plant(self, items: Mapping[str, bytes]) -> None:
        _write_files(self.root, items)

    def plant_directory(self, name: str) -> None:
        self.root.joinpath(*name.split("/")).mkdir(parents=True, exist_ok=True)

    def fresh(self) -> KeyValueStore:
        path = self.tmp / "fresh.zspy"
        return DirectoryStore(path, str(path))

    def target(self) -> tuple[str, dict[str, Any], StoreKind | None]:
        return str(self.tmp / "target.zspy"), {}, None


class TestDirectoryStore(WritableStoreConformance, TargetConformance):
    kind = "directory"

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return DirectoryBackend(tmp_path)


# -- a zip file ----------------------------------------------------------------------------


def _zip_bytes(items: Mapping[str, bytes], directories: Sequence[str], dest: Path) -> Path:
    """A zip of ``items`` (and ``directories`` as ``name/`` entries), written atomically."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:6]}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in directories:
            zf.writestr(f"{name}/", b"")
        for key, value in items.items():
            zf.writestr(key, value)
    os.replace(tmp, dest)  # an open store keeps reading the old file
    return dest


class ZipBackend(LocalBackend):
    def __init__(self, tmp_path: Path, *, chain: bool = False) -> None:
        self.tmp = tmp_path
        self.path = tmp_path / "store.zip"
        self.chain = chain
        self.url = f"zip::file://{self.path}" if chain else str(self.path)
        self.items: dict[str, bytes] = {}
        self.directories: list[str] = []
        _zip_bytes({}, [], self.path)

    def plant(self, items: Mapping[str, bytes]) -> None:
        self.items.update(items)
        _zip_bytes(self.items, self.directories, self.path)

    def plant_directory(self, name: str) -> None:
        self.directories.append(name)
        _zip_bytes(self.items, self.directories, self.path)

    def target(self) -> tuple[str, dict[str, Any], StoreKind | None]:
        path = self.tmp / "target.zspy"
        return (f"zip::file://{path}", {}, None) if self.chain else (str(path), {}, "zip")


class TestZipStore(ReadOnlyStoreConformance, TargetConformance):
    kind = "zip"
    digest = "crc32"
    read_only_error = ValueError  # zipfile's "write() requires mode 'w', 'x', or 'a'"

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return ZipBackend(tmp_path)


class TestZipChainStore(ReadOnlyStoreConformance, TargetConformance):
    """The zip file named by a ``zip::file://`` URL."""

    kind = "zip"
    digest = "crc32"
    read_only_error = ValueError

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return ZipBackend(tmp_path, chain=True)


# -- a prefix of memory:// -------------------------------------------------------------------


class MemoryBackend(Backend):
    def __init__(self, fs: fsspec.AbstractFileSystem) -> None:
        self.fs = fs
        self.root = "/store.zspy"
        self.url = "memory://store.zspy"
        for key, value in DECOYS.items():
            fs.pipe_file(f"/{key}", value)

    def plant(self, items: Mapping[str, bytes]) -> None:
        for key, value in items.items():
            self.fs.pipe_file(f"{self.root}/{key}", value)

    def plant_directory(self, name: str) -> None:
        self.fs.mkdir(f"{self.root}/{name}")

    def snapshot(self) -> object:
        store = self.fs.store
        return {k: store[k].getvalue() for k in store}

    def fresh(self) -> KeyValueStore:
        return FsspecStore(self.fs, "/fresh.zspy", "memory://fresh.zspy")

    def target(self) -> tuple[str, dict[str, Any], StoreKind | None]:
        return "memory://target.zspy", {}, None


class TestMemoryPrefixStore(WritableStoreConformance, TargetConformance):
    kind = "prefix"
    listed_on_open = True

    @pytest.fixture
    def backend(self, memory_fs: fsspec.AbstractFileSystem) -> Backend:
        return MemoryBackend(memory_fs)


# -- S3 ------------------------------------------------------------------------------------


class S3Backend(Backend):
    """Objects put with raw ``PutObject`` requests: keys exactly as given."""

    def __init__(self, bucket: str, fs: Any, options: dict[str, Any], tmp_path: Path) -> None:
        self.fs = fs
        self.bucket = bucket
        self.options = options
        self.tmp = tmp_path
        self.area = f"{uuid.uuid4().hex[:8]}"
        self.name = "store.zspy"
        self.url = f"s3://{bucket}/{self.area}/{self.name}"
        self._put({f"{self.area}/{k}": v for k, v in DECOYS.items()})

    def _put(self, objects: Mapping[str, bytes]) -> None:
        async def put_all() -> None:
            await asyncio.gather(
                *(
                    self.fs._call_s3("put_object", Bucket=self.bucket, Key=key, Body=value)
                    for key, value in objects.items()
                )
            )

        sync(self.fs.loop, put_all)
        self.fs.invalidate_cache()

    def plant(self, items: Mapping[str, bytes]) -> None:
        self._put({f"{self.area}/{self.name}/{k}": v for k, v in items.items()})

    def plant_directory(self, name: str) -> None:
        # the zero-byte "folder" object S3 consoles create
        self._put({f"{self.area}/{self.name}/{name}/": b""})

    def snapshot(self) -> object:
        self.fs.invalidate_cache()
        keys = self.fs.find(f"{self.bucket}/{self.area}")
        return self.fs.cat(keys) if keys else {}

    def fresh(self) -> KeyValueStore:
        loc = resolve(f"s3://{self.bucket}/{self.area}/fresh.zspy", self.options, mode="w")
        return FsspecStore(loc.fs, loc.path, loc.url)

    def target(self) -> tuple[str, dict[str, Any], StoreKind | None]:
        return f"s3://{self.bucket}/{self.area}/target.zspy", self.options, None


class S3ZipBackend(S3Backend):
    """A zip file stored as one S3 object, recognised by its first bytes."""

    def __init__(self, bucket: str, fs: Any, options: dict[str, Any], tmp_path: Path) -> None:
        super().__init__(bucket, fs, options, tmp_path)
        self.name = "store.zip"
        self.url = f"s3://{bucket}/{self.area}/{self.name}"
        self.items: dict[str, bytes] = {}
        self.directories: list[str] = []
        self._upload()

    def _upload(self) -> None:
        local = _zip_bytes(self.items, self.directories, self.tmp / "upload.zip")
        self._put({f"{self.area}/{self.name}": local.read_bytes()})

    def plant(self, items: Mapping[str, bytes]) -> None:
        self.items.update(items)
        self._upload()

    def plant_directory(self, name: str) -> None:
        self.directories.append(name)
        self._upload()

    def target(self) -> tuple[str, dict[str, Any], StoreKind | None]:
        return f"s3://{self.bucket}/{self.area}/target.zspy", self.options, "zip"


@pytest.fixture
def s3_backend_args(
    module_bucket: tuple[str, Any], s3_storage_options: dict[str, Any], tmp_path: Path
) -> tuple[str, Any, dict[str, Any], Path]:
    bucket, fs = module_bucket
    return bucket, fs, dict(s3_storage_options), tmp_path


@pytest.mark.s3
class TestS3PrefixStore(WritableStoreConformance, TargetConformance):
    kind = "prefix"
    digest = "md5"  # the ETag of a single-part upload
    listed_on_open = True

    @pytest.fixture
    def backend(self, s3_backend_args: tuple[str, Any, dict[str, Any], Path]) -> Backend:
        return S3Backend(*s3_backend_args)


@pytest.mark.s3
class TestS3ZipStore(ReadOnlyStoreConformance, TargetConformance):
    kind = "zip"
    digest = "crc32"
    read_only_error = ValueError

    @pytest.fixture
    def backend(self, s3_backend_args: tuple[str, Any, dict[str, Any], Path]) -> Backend:
        return S3ZipBackend(*s3_backend_args)


# -- the zarr-store adapter ------------------------------------------------------------------


class ZarrMemoryBackend(Backend):
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.zstore = zarr.storage.MemoryStore(self.data)
        self.url = str(self.zstore)

    def plant(self, items: Mapping[str, bytes]) -> None:
        self.data.update({k: cpu.Buffer.from_bytes(v) for k, v in items.items()})

    def plant_directory(self, name: str) -> None:
        """A key-value store has no directories."""

    def open(self, prefetch: Sequence[str] = ()) -> KeyValueStore:
        assert not prefetch
        return open_store(self.zstore)

    def snapshot(self) -> object:
        return {k: v.to_bytes() for k, v in self.data.items()}

    def fresh(self) -> KeyValueStore:
        return open_store(zarr.storage.MemoryStore())


class ZarrLocalBackend(LocalBackend):
    def __init__(self, tmp_path: Path, *, read_only: bool = False) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "store.zspy"
        self.root.mkdir()
        self.read_only = read_only
        self.url = str(zarr.storage.LocalStore(self.root, read_only=read_only))

    def plant(self, items: Mapping[str, bytes]) -> None:
        _write_files(self.root, items)

    def plant_directory(self, name: str) -> None:
        self.root.joinpath(*name.split("/")).mkdir(parents=True, exist_ok=True)

    def open(self, prefetch: Sequence[str] = ()) -> KeyValueStore:
        assert not prefetch
        return open_store(zarr.storage.LocalStore(self.root, read_only=self.read_only))

    def fresh(self) -> KeyValueStore:
        return open_store(zarr.storage.LocalStore(self.tmp / "fresh.zspy"))


class TestZarrMemoryStore(WritableStoreConformance):
    kind = "zarr"
    sizes_known = False  # zarr's list() gives names only
    by_url = False

    @pytest.fixture
    def backend(self) -> Backend:
        return ZarrMemoryBackend()


class TestZarrLocalStore(WritableStoreConformance):
    kind = "zarr"
    sizes_known = False
    by_url = False

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return ZarrLocalBackend(tmp_path)


class TestZarrReadOnlyLocalStore(ReadOnlyStoreConformance):
    kind = "zarr"
    sizes_known = False
    by_url = False
    read_only_error = ValueError  # zarr's "store was opened in read-only mode"

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return ZarrLocalBackend(tmp_path, read_only=True)


# -- the suite itself, check_key and listing snapshots ---------------------------------------


def test_every_store_kind_is_covered() -> None:
    covered = {
        cls.kind
        for cls in globals().values()
        if isinstance(cls, type)
        and issubclass(cls, StoreConformance)
        and cls.__name__[:4] == "Test"
    }
    # an HDF5 file (.hspy) holds no keys: it is read through h5py (tests/test_6[1-4]_hspy_*)
    assert covered == set(STORE_KINDS) - {"hdf5"}


def test_prefetch_cannot_read_a_file_outside_the_store(tmp_path: Path) -> None:
    """Over a filesystem that resolves '..' (a cached local one), a prefetch key naming a
    file beside the store is refused before anything is read."""
    (tmp_path / "secret").write_bytes(b"outside the store")
    _write_files(tmp_path / "store.zspy", ITEMS)
    url = f"simplecache::file://{tmp_path}/store.zspy"
    with pytest.raises(UnsafePathError, match=r"key '\.\./secret'"):
        open_store(url, prefetch=["../secret"])
    store = open_store(url, prefetch=[".zgroup"])
    with pytest.raises(UnsafePathError):
        store.get("../secret")


def test_check_key_returns_safe_keys_unchanged() -> None:
    for key in ITEMS:
        assert check_key(key, "memory://s") is key


def test_check_key_refuses_unsafe_keys_naming_the_store() -> None:
    for key in UNSAFE_KEYS:
        with pytest.raises(UnsafePathError, match=r"^memory://here: key .* not a safe relative"):
            check_key(key, "memory://here")


def test_snapshot_store_lists_and_holds_no_data() -> None:
    listing = {k: KeyInfo(len(v)) for k, v in ITEMS.items()}
    store = SnapshotStore("s3://b/s.zspy", listing, "prefix")
    assert store.kind == "prefix"
    assert store.url == "s3://b/s.zspy"
    assert store.list() == listing
    with pytest.raises(NotImplementedError):
        store.get(".zgroup")
    with pytest.raises(NotImplementedError):
        store.put_many({"a": b"1"})
    store.close()
    store.close()


def test_snapshot_store_refuses_an_unsafe_listing() -> None:
    for key in ["../x", "a//b", "a\\b", "/abs"]:
        with pytest.raises(UnsafePathError):
            SnapshotStore("s3://b/s.zspy", {".zgroup": KeyInfo(2), key: KeyInfo(1)}, "prefix")
