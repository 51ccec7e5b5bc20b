"""Stores in a local directory, read and written with plain file operations.

Listing walks the directory once; small reads go one after the other (threads cost more
than they save), large ones through a thread pool. Symbolic links that lead out of the
directory are refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from intake_zspy.errors import StoreReadError, UnsafePathError
from intake_zspy.storage._keys import KeyInfo, check_key
from intake_zspy.storage._kinds import StoreKind
from intake_zspy.storage._stores import KeyValueStore

__all__ = ["DirectoryStore"]


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
