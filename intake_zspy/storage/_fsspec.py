"""Stores on fsspec filesystems: object storage, memory, and zip files on any of them.

:class:`FsspecStore` reads a key prefix of a filesystem, with the filesystem's own
concurrency for bulk reads. The helpers here are shared with the resolver
(:mod:`~intake_zspy.storage._resolve`), which lists and prefetches before a store exists.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import fsspec
from fsspec.implementations.zip import ZipFileSystem

from intake_zspy.errors import DamagedStoreError, StoreNotFoundError, StoreReadError
from intake_zspy.storage._keys import KeyInfo, check_key, checked_listing
from intake_zspy.storage._kinds import StoreKind
from intake_zspy.storage._stores import ZIP_ERRORS, KeyValueStore

__all__ = ["FsspecStore", "cat_or_none", "list_fs", "whole_object"]


_MD5 = re.compile(r"^[0-9a-f]{32}$")


def digest_of(info: Mapping[str, Any]) -> str | None:
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
        self._listing = None if listing is None else checked_listing(listing, url)
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
                self._listing = checked_listing(list_fs(self.fs, self.root), self.url)
            return self._listing

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        keys = list(keys)
        paths = [self._path(k) for k in keys]  # checks every key, prefetched ones too
        if self._prefetched:
            with self._lock:
                early = {k: self._prefetched.pop(k) for k in keys if k in self._prefetched}
            if early:
                return {**early, **self.get_many([k for k in keys if k not in early])}
        if not keys:
            return {}
        if getattr(self.fs, "async_impl", False) and len(paths) > 1:
            raw = self.fs.cat(paths, on_error="return", **whole_object(self.fs))
            out: dict[str, bytes | None] = {}
            for key, path in zip(keys, paths, strict=True):
                value = raw.get(path, raw.get(self.fs._strip_protocol(path)))
                out[key] = check_value(value, self.url, key)
            return out
        return {key: self._get_one(key) for key in keys}

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        self.fs.pipe({self._path(k): v for k, v in items.items()})
        with self._lock:
            self._listing = None
            for key in items:  # a value fetched early is stale once written
                self._prefetched.pop(key, None)

    def _get_one(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            value: bytes = self.fs.cat_file(path, **whole_object(self.fs))
        except (FileNotFoundError, IsADirectoryError):
            return None
        except ZIP_ERRORS as exc:
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
        if isinstance(self.fs, ZipFileSystem):  # ZipFile leaves the file it was given open
            self.fs.close()
            self.fs.fo.close()


def _open_zip_fs(fs: fsspec.AbstractFileSystem, path: str, url: str) -> ZipFileSystem:
    try:
        return ZipFileSystem(fo=fs.open(path, "rb"), skip_instance_cache=True)
    except FileNotFoundError as exc:
        raise StoreNotFoundError(f"{url}: no such file") from exc
    except (ValueError, OSError, *ZIP_ERRORS) as exc:
        raise DamagedStoreError(f"{url}: damaged or truncated zip file: {exc}") from exc


def whole_object(fs: fsspec.AbstractFileSystem) -> dict[str, Any]:
    """Options for reading whole objects in one request.

    s3fs otherwise sends a HEAD first (to split big objects into ranged reads): one more
    round trip per object, when intake-zspy already reads many objects concurrently.
    """
    return {"max_concurrency": 1} if type(fs).__name__ == "S3FileSystem" else {}


def cat_or_none(fs: fsspec.AbstractFileSystem, path: str) -> bytes | None:
    try:
        value: bytes = fs.cat_file(path, **whole_object(fs))
    except (FileNotFoundError, IsADirectoryError):
        return None
    return value


def check_value(value: object, url: str, key: str) -> bytes | None:
    if isinstance(value, FileNotFoundError) or value is None:
        return None
    if isinstance(value, BaseException):
        raise StoreReadError(f"{url}: reading {key!r} failed: {value}") from value
    assert isinstance(value, bytes)
    return value


def list_fs(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, KeyInfo]:
    found = fs.find(root, detail=True, withdirs=False)
    prefix = f"{fs._strip_protocol(root).rstrip('/')}/" if root else ""
    listing: dict[str, KeyInfo] = {}
    for name, info in found.items():
        if name.endswith("/"):  # a "folder" marker object that consoles and sync tools make
            continue
        name = fs._strip_protocol(name)
        if prefix and not name.startswith(prefix):
            continue
        listing[name[len(prefix) :]] = KeyInfo(info.get("size"), digest_of(info))
    return listing
