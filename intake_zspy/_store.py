"""Resolve a URL, path, fsspec mapper or zarr store into a key-value store.

This module is the only place that turns user input into storage access. Everything
above it sees a :class:`KeyValueStore`: relative keys (``"Experiments/a/data/0.0"``) in,
bytes out, with concurrent bulk reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import posixpath
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.zip import ZipFileSystem

from intake_zspy.errors import (
    DamagedStoreError,
    StoreNotFoundError,
    StoreReadError,
    UnsafePathError,
    ZspyFormatError,
)
from intake_zspy.format import names

__all__ = [
    "DirectoryStore",
    "KeyInfo",
    "KeyValueStore",
    "WriteTarget",
    "check_key",
    "open_store",
    "resolve_target",
    "strip_credentials",
]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


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
    """Read access to the keys of one zspy store."""

    url: str

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


def _is_zarr_store(obj: object) -> bool:
    try:
        from zarr.abc.store import Store
    except ImportError:  # pragma: no cover - zarr is a dependency
        return False
    return isinstance(obj, Store)


def open_store(
    urlpath: str | os.PathLike[str] | Any,
    storage_options: Mapping[str, Any] | None = None,
) -> KeyValueStore:
    """Open a zspy store for reading.

    Parameters
    ----------
    urlpath
        One of:

        - a local directory or a local zip file (detected from its first bytes);
        - an fsspec URL: ``file://``, ``memory://``, ``s3://bucket/key.zspy`` (a prefix,
          or a zip file object), ``zip::s3://...``, ``simplecache::s3://...`` and other
          chained URLs;
        - an :class:`fsspec.FSMap` (``fsspec.get_mapper(...)``);
        - a :class:`zarr.abc.store.Store` instance (``LocalStore``, ``ZipStore``,
          ``MemoryStore``, ``FsspecStore``, wrappers such as ``LoggingStore``);
        - a :class:`KeyValueStore` (returned as is).
    storage_options
        Passed to fsspec when ``urlpath`` is a URL or path (e.g. s3fs credentials and
        ``client_kwargs={"endpoint_url": ...}``).

    Returns
    -------
    KeyValueStore

    Raises
    ------
    StoreNotFoundError
        Nothing exists at ``urlpath`` (a ``FileNotFoundError``).
    ZspyFormatError
        ``urlpath`` is a file that is neither a zip archive nor a directory store.
    DamagedStoreError
        ``urlpath`` is a damaged or truncated zip file.
    TypeError
        ``storage_options`` were given for an already opened store, or ``urlpath`` has
        an unsupported type.
    """
    if isinstance(urlpath, KeyValueStore | fsspec.FSMap) or _is_zarr_store(urlpath):
        if storage_options:
            raise TypeError(
                "storage_options only apply to URLs and paths, not to an already opened "
                f"{type(urlpath).__name__}; configure that object instead"
            )
        if isinstance(urlpath, KeyValueStore):
            return urlpath
        if isinstance(urlpath, fsspec.FSMap):
            url = urlpath.fs.unstrip_protocol(urlpath.root)
            if isinstance(urlpath.fs, LocalFileSystem):
                return DirectoryStore(urlpath.root, url)
            return FsspecStore(urlpath.fs, urlpath.root, url)
        return ZarrStoreAdapter(urlpath)
    if not isinstance(urlpath, str | os.PathLike):
        raise TypeError(
            "urlpath must be a path, an fsspec URL, an fsspec mapper or a zarr Store, "
            f"not {type(urlpath).__name__}"
        )
    url = os.fspath(urlpath)
    options = dict(storage_options or {})
    if "://" not in url and "::" not in url:
        url = os.path.abspath(os.path.expanduser(url))
    try:
        fs, path = fsspec.core.url_to_fs(url, **_with_defaults(url, options))
    except ImportError as exc:
        raise ImportError(f"{url}: {exc} (for s3:// install intake-zspy[s3])") from exc
    except FileNotFoundError as exc:  # a chained URL opens its target at once
        raise StoreNotFoundError(f"{url}: no such file or object") from exc
    except _ZIP_ERRORS as exc:
        raise DamagedStoreError(f"{url}: damaged or truncated zip file: {exc}") from exc
    if isinstance(fs, ZipFileSystem):  # explicit zip:: chain
        return FsspecStore(fs, "", url)
    if isinstance(fs, LocalFileSystem):
        if os.path.isdir(path):
            return DirectoryStore(path, url)
        if not os.path.exists(path):
            raise StoreNotFoundError(f"{url}: no such file or directory")
        return _open_zip(fs, path, url)
    # one round trip: the listing (directory or zip?) and .zmetadata, concurrently
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            listed = pool.submit(_list_fs, fs, path)
            zmetadata = pool.submit(_cat_or_none, fs, f"{path.rstrip('/')}/{names.ZMETADATA}")
            listing, prefetched = listed.result(), {names.ZMETADATA: zmetadata.result()}
    except FileNotFoundError as exc:
        raise StoreNotFoundError(f"{url}: no such object or prefix") from exc
    except OSError as exc:
        raise StoreReadError(f"{url}: cannot list the store: {exc}") from exc
    if listing and set(listing) != {""}:
        return FsspecStore(fs, path, url, listing=listing, prefetched=prefetched)
    if not fs.isfile(path):
        raise StoreNotFoundError(f"{url}: no such object or prefix")
    return _open_zip(fs, path, url)


#: storage_options keys that hold credentials (at any depth), left out of saved catalogs.
CREDENTIAL_KEYS = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "session_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "account_key",
        "sas_token",
        "client_secret",
        "connection_string",
        "credentials",
    }
)


def strip_credentials(options: Any) -> tuple[Any, list[str]]:
    """``options`` without credential keys (at any depth), and the removed key paths.

    Catalogs written to disk use it, so that secrets never end up in a file: readers of
    a catalog bring their own credentials (environment, ``~/.aws``, ...).
    """
    removed: list[str] = []

    def strip(value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            return value
        out = {}
        for k, v in value.items():
            if str(k).lower() in CREDENTIAL_KEYS:
                removed.append(f"{where}{k}")
            else:
                out[k] = strip(v, f"{where}{k}.")
        return out

    return strip(options, ""), removed


#: Concurrent requests s3fs may keep open (botocore's default, 10, throttles metadata reads).
S3_MAX_POOL_CONNECTIONS = 64


def _with_defaults(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Storage options with intake-zspy's performance defaults (user settings win)."""
    if not url.startswith(("s3://", "s3a://")):
        return options
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("max_pool_connections", S3_MAX_POOL_CONNECTIONS)
    return {**options, "config_kwargs": config}


def _open_zip(fs: fsspec.AbstractFileSystem, path: str, url: str) -> KeyValueStore:
    with fs.open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_HDF5_MAGIC):
        raise ZspyFormatError(
            f"{url}: this is an HDF5 file (HyperSpy .hspy?), not a zspy store; "
            "open it with hyperspy or h5py"
        )
    if not head.startswith(_ZIP_MAGIC):
        raise ZspyFormatError(
            f"{url}: not a zspy store: a file that is neither a zip archive nor a directory"
        )
    return FsspecStore.from_zip(fs, path, url)


# -- writing ---------------------------------------------------------------------------


class WriteTarget:
    """Where :func:`intake_zspy.to_zspy` writes, and how it replaces what is there.

    ``kind`` is ``"local"`` (a directory), ``"zip"`` (one file, any filesystem) or
    ``"prefix"`` (a key prefix on a remote filesystem such as S3).
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, url: str, kind: str) -> None:
        self.fs = fs
        self.path = path
        self.url = url
        self.kind = kind

    def exists(self) -> bool:
        if isinstance(self.fs, LocalFileSystem):
            return os.path.lexists(self.path)
        return bool(self.fs.exists(self.path))

    def _sibling(self, suffix: str) -> str:
        parent, name = posixpath.split(self.path.rstrip("/"))
        return posixpath.join(parent, f".{name}.{suffix}-{uuid.uuid4().hex[:8]}")

    @contextlib.contextmanager
    def staging(self) -> Iterator[KeyValueStore]:
        """A store to write into; on success it replaces the target, on error it is removed."""
        if self.kind == "zip":
            self._probe()  # the store is built locally first: fail now, not after that
            local = isinstance(self.fs, LocalFileSystem)
            parent = os.path.dirname(self.path) if local else None
            with tempfile.TemporaryDirectory(prefix=".intake-zspy-", dir=parent) as tmp:
                yield DirectoryStore(tmp, self.url)
                self._publish_zip(tmp)
            return
        if self.kind == "prefix" and not self.exists():
            # written in place: an interrupted write leaves a store the reader rejects,
            # a failed one is removed
            try:
                yield FsspecStore(self.fs, self.path, self.url)
            except BaseException:
                if self.fs.exists(self.path):
                    self.fs.rm(self.path, recursive=True)
                raise
            return
        staging = self._sibling("tmp")
        try:
            yield (
                DirectoryStore(staging, self.url)
                if self.kind == "local"
                else FsspecStore(self.fs, staging, self.url)
            )
        except BaseException:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)
            raise
        if self.kind == "local":
            self._swap_local(staging)
        else:
            self._replace_prefix(staging)

    def _probe(self) -> None:
        """Check that the target's location takes writes, leaving nothing behind."""
        if isinstance(self.fs, LocalFileSystem):
            parent = os.path.dirname(self.path) or "."
            try:
                os.makedirs(parent, exist_ok=True)
            except FileExistsError as exc:
                raise NotADirectoryError(f"{self.url}: {parent} is not a directory") from exc
            fd, probe = tempfile.mkstemp(prefix=".intake-zspy-probe-", dir=parent)
            os.close(fd)
            os.remove(probe)
            return
        probe = f"{self.path}.intake-zspy-probe-{uuid.uuid4().hex[:8]}"
        self.fs.pipe_file(probe, b"")
        self.fs.rm_file(probe)

    def _swap_local(self, staging: str) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        old = None
        if os.path.lexists(self.path):
            old = self._sibling("old")
            os.rename(self.path, old)
        os.rename(staging, self.path)
        if old is not None:
            if os.path.isdir(old) and not os.path.islink(old):
                shutil.rmtree(old)
            else:
                os.remove(old)

    def _replace_prefix(self, staging: str) -> None:
        """Copy a complete staged store over the old one, its root attributes last."""
        last = [f"{staging}/{names.ZATTRS}", f"{staging}/{names.ZMETADATA}"]
        keys = [k for k in self.fs.find(staging) if k not in last]
        self.fs.rm(
            [
                f"{self.path}/{n}"
                for n in (names.ZATTRS, names.ZMETADATA)
                if self.fs.exists(f"{self.path}/{n}")
            ]
        )
        self.fs.rm(self.path, recursive=True)
        rel = len(self.fs._strip_protocol(staging).rstrip("/")) + 1
        dest = [f"{self.path}/{self.fs._strip_protocol(k)[rel:]}" for k in keys]
        self.fs.copy(keys, dest)
        tail = [k for k in last if self.fs.exists(k)]
        self.fs.copy(tail, [f"{self.path}/{posixpath.basename(k)}" for k in tail])
        self.fs.rm(staging, recursive=True)

    def _publish_zip(self, directory: str) -> None:
        """Zip a finished directory store and put it in place in one rename or one upload."""
        if isinstance(self.fs, LocalFileSystem):
            parent = os.path.dirname(self.path) or "."
            os.makedirs(parent, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", dir=parent)
            os.close(fd)
        else:
            fd, tmp = tempfile.mkstemp(suffix=".zip")
            os.close(fd)
        try:
            _zip_directory(directory, tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private
            if isinstance(self.fs, LocalFileSystem):
                if os.path.isdir(self.path):
                    shutil.rmtree(self.path)
                os.replace(tmp, self.path)
            else:
                self.fs.put_file(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def _zip_directory(directory: str, dest: str) -> None:
    """Members stored uncompressed (chunks are already compressed), root metadata last."""
    last = (names.ZATTRS, names.ZMETADATA)
    members = []
    for parent, _, files in os.walk(directory):
        for name in files:
            full = os.path.join(parent, name)
            members.append((os.path.relpath(full, directory).replace(os.sep, "/"), full))
    members.sort(key=lambda m: (m[0] in last, last.index(m[0]) if m[0] in last else 0, m[0]))
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for arcname, full in members:
            zf.write(full, arcname)


_READ_ONLY_PROTOCOLS = frozenset({"http", "https", "github", "ftp", "reference", "cached"})


def resolve_target(
    urlpath: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
    store_type: str | None = None,
) -> WriteTarget:
    """Resolve where :func:`intake_zspy.to_zspy` writes.

    Parameters
    ----------
    urlpath
        A local path, a ``.zip`` path or URL, ``zip::<url>``, or a remote URL
        (``s3://bucket/run.zspy``, ``memory://run.zspy``).
    storage_options
        Passed to fsspec.
    store_type
        ``"local"``, ``"zip"`` or ``None`` (inferred from the URL).

    Raises
    ------
    ValueError
        Unknown ``store_type`` or a read-only protocol.
    TypeError
        ``urlpath`` is not a path or URL.
    """
    if not isinstance(urlpath, str | os.PathLike):
        raise TypeError(f"urlpath must be a path or URL, not {type(urlpath).__name__}")
    if store_type not in (None, "local", "zip"):
        raise ValueError(f"store_type must be 'local', 'zip' or None, not {store_type!r}")
    url = os.fspath(urlpath)
    if url.startswith("zip::"):
        url, store_type = url[len("zip::") :], "zip"
    if "://" not in url and "::" not in url:
        url = os.path.abspath(os.path.expanduser(url))
    fs, path = fsspec.core.url_to_fs(url, **_with_defaults(url, dict(storage_options or {})))
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if protocols & _READ_ONLY_PROTOCOLS:
        raise ValueError(f"{url}: cannot write a zspy store over {min(protocols)}://")
    if store_type is None:
        store_type = "zip" if path.lower().endswith(".zip") else "local"
    if store_type == "zip":
        return WriteTarget(fs, path, url, "zip")
    kind = "local" if isinstance(fs, LocalFileSystem) else "prefix"
    return WriteTarget(fs, path.rstrip("/"), url, kind)
