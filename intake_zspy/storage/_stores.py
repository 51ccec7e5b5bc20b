"""Key-value access to one store: relative keys in, bytes out, concurrent bulk reads.

Every kind of storage a zspy store lives on is a :class:`KeyValueStore`, each in its own
module: :class:`~intake_zspy.storage.DirectoryStore` (``_local``: a local directory),
:class:`~intake_zspy.storage.FsspecStore` (``_fsspec``: a key prefix on any fsspec
filesystem, and zip files through fsspec's ``ZipFileSystem``),
:class:`~intake_zspy.storage.ZarrStoreAdapter` (``_zarr``: any zarr 3 ``Store``) and,
here, :class:`SnapshotStore` (a store known only from a listing). Keys are checked before
use (:func:`~intake_zspy.storage.check_key`, in ``_keys``).
"""

from __future__ import annotations

import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Self

from intake_zspy.storage._keys import KeyInfo, check_key
from intake_zspy.storage._kinds import StoreKind

__all__ = ["ZIP_ERRORS", "KeyValueStore", "SnapshotStore"]

#: What reading a damaged zip member raises, from zipfile and the decompressors under it.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError)


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
