"""One HDF5 file (HyperSpy's ``.hspy``) on any fsspec filesystem, as a read-only container.

An HDF5 file is no key-value store: its groups, attributes and chunks are reached through
h5py (:mod:`intake_zspy.format.h5`), which this module does not import. What lives here
is the storage side: the filesystem, the path, the file object h5py reads through (a
local path is handed to HDF5 itself, which is faster than any Python file object) and
the lock that serialises reads through that object. :func:`~intake_zspy.storage.open_store`
returns an :class:`HDF5File` when a file starts with :data:`HDF5_SIGNATURE`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from intake_zspy.storage._keys import KeyInfo
from intake_zspy.storage._kinds import StoreKind
from intake_zspy.storage._stores import KeyValueStore

__all__ = ["HDF5_SIGNATURE", "REMOTE_BLOCK_SIZE", "HDF5File"]

#: The first 8 bytes of an HDF5 file (superblock at offset 0, as HyperSpy writes it).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Block size of remote file objects: HDF5 metadata is small and scattered, so blocks
#: much larger than a chunk (s3fs defaults to 50 MiB) fetch mostly unused bytes.
REMOTE_BLOCK_SIZE = 4 * 2**20


class HDF5File(KeyValueStore):
    """An HDF5 file for reading: no keys, a file object for h5py.

    Parameters
    ----------
    fs, path
        The filesystem and the file's path in it.
    url
        Names the file in messages.
    size
        The file's size in bytes, when known.
    """

    kind: StoreKind = "hdf5"

    def __init__(
        self, fs: fsspec.AbstractFileSystem, path: str, url: str, size: int | None = None
    ) -> None:
        self.fs = fs
        self.path = path
        self.url = url
        self.size = size
        #: h5py calls back into Python file objects, which are not thread safe.
        self.lock = threading.RLock()
        self._file: IO[bytes] | None = None
        #: The h5py ``File`` opened over this container (set by the format layer).
        self.handle: Any = None
        #: What the format layer learns once per dataset (chunk indexes), by path.
        self.cache: dict[str, Any] = {}

    @property
    def local_path(self) -> str | None:
        """The path on the local disk, which HDF5 opens itself; ``None`` for remote files."""
        return self.path if isinstance(self.fs, LocalFileSystem) else None

    def file_object(self) -> IO[bytes]:
        """The file object h5py reads remote files through (opened once)."""
        if self._file is None:
            self._file = self.fs.open(
                self.path, "rb", block_size=REMOTE_BLOCK_SIZE, cache_type="blockcache"
            )
        return self._file

    def list(self) -> dict[str, KeyInfo]:
        """No keys: an HDF5 file is reached through h5py."""
        return {}

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        return dict.fromkeys(keys)

    def put_many(self, items: Mapping[str, bytes]) -> None:
        raise NotImplementedError(f"{self.url}: HDF5 files are read only")

    def close(self) -> None:
        with self.lock:
            if self.handle is not None:
                self.handle.close()
                self.handle = None
            self.cache.clear()
            if self._file is not None:
                self._file.close()
                self._file = None

    def __getstate__(self) -> dict[str, Any]:
        # a copy in another process opens the file again (h5py objects do not pickle)
        return {"fs": self.fs, "path": self.path, "url": self.url, "size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]
