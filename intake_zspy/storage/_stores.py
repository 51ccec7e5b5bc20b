"""Key-value access to one store: relative keys in, bytes out, concurrent bulk reads.

Every kind of storage a zspy store lives on is a :class:`KeyValueStore`:
:class:`DirectoryStore` (a local directory), :class:`FsspecStore` (a key prefix on any
fsspec filesystem, and zip files through fsspec's ``ZipFileSystem``),
:class:`ZarrStoreAdapter` (any zarr 3 ``Store``) and :class:`SnapshotStore` (a store known
only from a listing). Keys are checked before use (:func:`check_key`): no store hands out
or accepts a key that would address anything outside it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import threading
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

import fsspec
from fsspec.implementations.zip import ZipFileSystem

from intake_zspy.errors import (
    DamagedStoreError,
    StoreNotFoundError,
    StoreReadError,
    UnsafePathError,
)
from intake_zspy.storage._kinds import StoreKind

__all__ = [
    "DirectoryStore",
    "FsspecStore",
    "KeyInfo",
    "KeyValueStore",
    "SnapshotStore",
    "ZarrStoreAdapter",
    "check_key",
]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a listing tells about one key.

    ``digest`` is a content hash the storage computed itself, when it has one:
    ``"md5:<hex>"`` (an S3 ETag of a single-part upload, a GCS ``md5Hash``) or
    ``"crc32:<hex>"`` (a zip member). It lets a reader check a document it already holds
    without fetching it again.
    """

    size: int | None
    digest: str | None = None


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_key(key: str, url: str) -> str:
    """``key`` if it is a safe relative key of a store, else :class:`UnsafePathError`.

    A safe key is relative, has no empty, ``.`` or ``..`` segment, no backslash, no NUL
    and no drive letter: it cannot address anything outside the store, on any storage,
    whatever it is later turned into (a local path when copying, an object key).
    """
    if (
        not isinstance(key, str)
        or not key
        or key.startswith("/")
        or "\\" in key
        or "\0" in key
        or _DRIVE.match(key)
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise UnsafePathError(
            f"{url}: key {key!r} is not a safe relative path (no '..', '.', empty segment, "
            "leading '/', backslash, NUL or drive); refusing the store"
        )
    return key


def _checked_listing(listing: dict[str, KeyInfo], url: str) -> dict[str, KeyInfo]:
    for key in listing:
        check_key(key, url)
    return listing


class KeyValueStore(ABC):
    """Access to the keys of one store.

    Attributes
    ----------
    url
        Names the store in messages (the URL or path the user gave).
    kind
        What holds the store (:data:`~intake_zspy.storage.StoreKind`).
    """

    url: str
    kind: StoreKind

    @abstractmethod
    def list(self) -> dict[str, KeyInfo]:
        """Every key of the store (one recursive listing, cached).

        Raises
        ------
        UnsafePathError
            A key would address something outside the store (see :func:`check_key`).
        """

    @abstractmethod
    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        """Fetch several keys concurrently; a missing key maps to ``None``."""

    def get(self, key: str) -> bytes | None:
        """Fetch one key, ``None`` when it does not exist."""
        return self.get_many([key])[key]

    @abstractmethod
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Write several keys concurrently."""

    def sizes(self) -> Mapping[str, KeyInfo] | None:
        """The listing if one was already made (never lists on its own), else ``None``."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or connections held by the store."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MD5 = re.compile(r"^[0-9a-f]{32}$")


def _digest_of(info: Mapping[str, Any]) -> str | None:
    """The content hash an fsspec info dict carries, across implementations."""
    crc = info.get("CRC")
    if isinstance(crc, int) and "header_offset" in info:  # a zip member
        return f"crc32:{crc:08x}"
    etag = info.get("ETag") or info.get("etag")
    if isinstance(etag, str):
        etag = etag.strip('"').lower()
        if _MD5.match(etag):
            return f"md5:{etag}"
    md5 = info.get("md5Hash")  # GCS, base64
    if isinstance(md5, str):
        try:
            return f"md5:{base64.b64decode(md5).hex()}"
        except ValueError:
            return None
    return None


#: What reading a damaged zip member raises, from zipfile and the decompressors under it.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError)


class FsspecStore(KeyValueStore):
    """A store rooted at ``root`` in an fsspec filesystem (object storage, memory, zip).

    Bulk reads use the filesystem's own concurrency (``fs.cat`` on async filesystems such
    as s3fs). Reading a damaged zip member raises :class:`DamagedStoreError`; any other
    failure to read an existing key raises :class:`StoreReadError`.
    """

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        root: str,
        url: str,
        *,
        zip_source: tuple[fsspec.AbstractFileSystem, str] | None = None,
        listing: dict[str, KeyInfo] | None = None,
        prefetched: dict[str, bytes | None] | None = None,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self.kind: StoreKind = "zip" if isinstance(fs, ZipFileSystem) else "prefix"
        self._zip_source = zip_source
        self._listing = None if listing is None else _checked_listing(listing, url)
        # values fetched while the store was being resolved, handed out once
        self._prefetched = dict(prefetched or {})
        self._lock = threading.Lock()

    @classmethod
    def from_zip(cls, fs: fsspec.AbstractFileSystem, path: str, url: str) -> FsspecStore:
        """A store over the zip file ``path`` of ``fs`` (read through ``fs``, any protocol)."""
        return cls(_open_zip_fs(fs, path, url), "", url, zip_source=(fs, path))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        if self._zip_source is not None:
            del state["fs"]  # reopened from its source, not pickled with an open file
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        if self._zip_source is not None:
            self.fs = _open_zip_fs(*self._zip_source, self.url)

    def _path(self, key: str) -> str:
        check_key(key, self.url)
        return f"{self.root}/{key}" if self.root else key

    def list(self) -> dict[str, KeyInfo]:
        with self._lock:
            if self._listing is None:
                if isinstance(self.fs, ZipFileSystem):  # names as stored, before fsspec
                    for name in self.fs.zip.namelist():  # drops a leading "/"
                        check_key(name.removesuffix("/"), self.url)
                self._listing = _checked_listing(_list_fs(self.fs, self.root), self.url)
            return self._listing

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        keys = list(keys)
        early = {k: self._prefetched.pop(k) for k in keys if k in self._prefetched}
        if early:
            return {**early, **self.get_many([k for k in keys if k not in early])}
        if not keys:
            return {}
        paths = [self._path(k) for k in keys]
        if getattr(self.fs, "async_impl", False) and len(paths) > 1:
            raw = self.fs.cat(paths, on_error="return", **_whole_object(self.fs))
            out: dict[str, bytes | None] = {}
            for key, path in zip(keys, paths, strict=True):
                value = raw.get(path, raw.get(self.fs._strip_protocol(path)))
                out[key] = _check_value(value, self.url, key)
            return out
        return {key: self._get_one(key) for key in keys}

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        self.fs.pipe({self._path(k): v for k, v in items.items()})
        with self._lock:
            self._listing = None

    def _get_one(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            value: bytes = self.fs.cat_file(path, **_whole_object(self.fs))
        except (FileNotFoundError, IsADirectoryError):
            return None
        except _ZIP_ERRORS as exc:
            if not isinstance(self.fs, ZipFileSystem):
                raise StoreReadError(f"{self.url}: reading {key!r} failed: {exc}") from exc
            raise DamagedStoreError(
                f"{self.url}: zip member {key!r} cannot be read ({type(exc).__name__}: {exc})"
            ) from exc
        except OSError as exc:
            raise StoreReadError(f"{self.url}: reading {key!r} failed: {exc}") from exc
        return value

    def sizes(self) -> Mapping[str, KeyInfo] | None:
        return self._listing

    def close(self) -> None:
        if self._zip_source is not None:
            self.fs.close()


def _open_zip_fs(fs: fsspec.AbstractFileSystem, path: str, url: str) -> ZipFileSystem:
    try:
        return ZipFileSystem(fo=fs.open(path, "rb"), skip_instance_cache=True)
    except FileNotFoundError as exc:
        raise StoreNotFoundError(f"{url}: no such file") from exc
    except (ValueError, OSError, *_ZIP_ERRORS) as exc:
        raise DamagedStoreError(f"{url}: damaged or truncated zip file: {exc}") from exc


class DirectoryStore(KeyValueStore):
    """A store in a local directory, read and written with plain file operations.

    Nothing is read through a symbolic link that leads out of the directory: listing or
    reading such a key raises :class:`UnsafePathError`. Links that stay inside it work.
    """

    kind: StoreKind = "directory"

    def __init__(self, root: str | os.PathLike[str], url: str) -> None:
        self.root = os.path.realpath(root)
        self.url = url
        self._listing: dict[str, KeyInfo] | None = None
        # whether the listing met symbolic links (unknown before it): without any, the
        # keys need no resolving
        self._links: bool | None = None

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key, self.url).split("/"))

    def _inside(self, path: str, key: str) -> None:
        real = os.path.realpath(path)
        if real != path and os.path.commonpath([self.root, real]) != self.root:
            raise UnsafePathError(
                f"{self.url}: {key!r} is a symbolic link to {real}, outside the store; "
                "refusing to follow it"
            )

    def list(self) -> dict[str, KeyInfo]:
        if self._listing is None:
            listing: dict[str, KeyInfo] = {}
            self._links = False
            self._walk(self.root, "", listing, {self.root})
            self._listing = listing
        return self._listing

    def _walk(self, path: str, prefix: str, out: dict[str, KeyInfo], seen: set[str]) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            raise StoreReadError(f"{self.url}: cannot list {path}: {exc}") from exc
        for entry in entries:
            key = f"{prefix}{entry.name}"
            if entry.is_symlink():
                self._links = True
                self._inside(entry.path, key)
            if entry.is_dir():
                real = os.path.realpath(entry.path)
                if real not in seen:  # a link back up would loop
                    self._walk(entry.path, f"{key}/", out, seen | {real})
            elif entry.is_file():
                out[check_key(key, self.url)] = KeyInfo(entry.stat().st_size)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        keys = list(keys)
        listing = self._listing or {}
        small = sum(getattr(listing.get(k), "size", None) or _LARGE for k in keys) < _LARGE
        if len(keys) > 1 and not small:  # threads only pay off for large files
            with ThreadPoolExecutor(max_workers=min(8, len(keys))) as pool:
                return dict(zip(keys, pool.map(self._get_one, keys), strict=True))
        return {key: self._get_one(key) for key in keys}

    def _get_one(self, key: str) -> bytes | None:
        path = self._path(key)
        if self._links is not False:
            self._inside(path, key)
        try:
            with open(path, "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StoreReadError(f"{self.url}: reading {key!r} failed: {exc}") from exc

    def put_many(self, items: Mapping[str, bytes]) -> None:
        paths = {self._path(k): v for k, v in items.items()}
        if len(paths) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(paths))) as pool:
                list(pool.map(lambda kv: _write_file(*kv), paths.items()))
        else:
            for path, value in paths.items():
                _write_file(path, value)
        self._listing = None

    def sizes(self) -> Mapping[str, KeyInfo] | None:
        return self._listing


#: Reading files that add up to less than this takes less time than starting threads.
_LARGE = 4 * 2**20


def _write_file(path: str, value: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(value)


def _whole_object(fs: fsspec.AbstractFileSystem) -> dict[str, Any]:
    """Options for reading whole objects in one request.

    s3fs otherwise sends a HEAD first (to split big objects into ranged reads): one more
    round trip per object, when intake-zspy already reads many objects concurrently.
    """
    return {"max_concurrency": 1} if type(fs).__name__ == "S3FileSystem" else {}


def _cat_or_none(fs: fsspec.AbstractFileSystem, path: str) -> bytes | None:
    try:
        value: bytes = fs.cat_file(path, **_whole_object(fs))
    except (FileNotFoundError, IsADirectoryError):
        return None
    return value


def _check_value(value: object, url: str, key: str) -> bytes | None:
    if isinstance(value, FileNotFoundError) or value is None:
        return None
    if isinstance(value, BaseException):
        raise StoreReadError(f"{url}: reading {key!r} failed: {value}") from value
    assert isinstance(value, bytes)
    return value


def _list_fs(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, KeyInfo]:
    found = fs.find(root, detail=True, withdirs=False)
    prefix = f"{fs._strip_protocol(root).rstrip('/')}/" if root else ""
    listing: dict[str, KeyInfo] = {}
    for name, info in found.items():
        name = fs._strip_protocol(name)
        if prefix and not name.startswith(prefix):
            continue
        listing[name[len(prefix) :]] = KeyInfo(info.get("size"), _digest_of(info))
    return listing


class ZarrStoreAdapter(KeyValueStore):
    """Adapt any :class:`zarr.abc.store.Store` (zarr's own I/O) to :class:`KeyValueStore`."""

    kind: StoreKind = "zarr"

    def __init__(self, store: Any) -> None:
        self.store = store
        self.url = str(store)
        self._listing: dict[str, KeyInfo] | None = None

    def _run(self, coro: Any) -> Any:
        from zarr.core.sync import sync

        return sync(coro)

    async def _opened(self) -> Any:
        if not self.store._is_open:
            await self.store._open()
        return self.store

    def list(self) -> dict[str, KeyInfo]:
        if self._listing is None:

            async def collect() -> list[str]:
                store = await self._opened()
                return [key async for key in store.list()]

            listing = {k: KeyInfo(None) for k in self._run(collect())}
            self._listing = _checked_listing(listing, self.url)
        return self._listing

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        from zarr.core.buffer import default_buffer_prototype

        keys = [check_key(k, self.url) for k in keys]
        proto = default_buffer_prototype()

        async def fetch() -> list[Any]:
            store = await self._opened()
            return await asyncio.gather(*(store.get(k, prototype=proto) for k in keys))

        try:
            values = self._run(fetch())
        except _ZIP_ERRORS as exc:
            raise DamagedStoreError(f"{self.url}: a key cannot be read: {exc}") from exc
        except OSError as exc:
            raise StoreReadError(f"{self.url}: reading failed: {exc}") from exc
        return {k: (None if v is None else v.to_bytes()) for k, v in zip(keys, values, strict=True)}

    def put_many(self, items: Mapping[str, bytes]) -> None:
        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()

        for key in items:
            check_key(key, self.url)

        async def put() -> None:
            store = await self._opened()
            await asyncio.gather(
                *(store.set(k, proto.buffer.from_bytes(v)) for k, v in items.items())
            )

        self._run(put())
        self._listing = None


class SnapshotStore(KeyValueStore):
    """A store known only from a listing made elsewhere: enough to validate a layout.

    Used where the keys of many stores come from one listing of their parent (catalogs)
    and their documents from one concurrent fetch; reading or writing keys is an error.
    """

    def __init__(self, url: str, listing: Mapping[str, KeyInfo], kind: StoreKind) -> None:
        self.url = url
        self.kind = kind
        self._listing = {check_key(key, url): info for key, info in listing.items()}

    def list(self) -> dict[str, KeyInfo]:
        return self._listing

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        raise NotImplementedError("a listing snapshot holds no data")

    def put_many(self, items: Mapping[str, bytes]) -> None:
        raise NotImplementedError("a listing snapshot is read-only")
