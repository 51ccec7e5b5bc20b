"""The one place where URLs, paths and storage options become filesystems and stores.

:func:`resolve` turns user input into a :class:`Location` (filesystem, path, URL and,
where the URL says it, the store kind) for reading, writing, the folder catalogs and
the command line alike: local paths are made absolute, ``zip::`` chains are understood,
intake-zspy's defaults for S3 are applied and a missing filesystem package names what to
install. :func:`open_store` then looks at what is there (a directory, a zip file, a key
prefix) and returns the :class:`~intake_zspy.storage.KeyValueStore` to read it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.zip import ZipFileSystem

from intake_zspy.errors import (
    DamagedStoreError,
    StoreNotFoundError,
    StoreReadError,
    ZspyFormatError,
)
from intake_zspy.storage._fsspec import FsspecStore, cat_or_none, list_fs
from intake_zspy.storage._hdf5 import HDF5_SIGNATURE, HDF5File
from intake_zspy.storage._keys import check_key
from intake_zspy.storage._kinds import StoreKind
from intake_zspy.storage._local import DirectoryStore
from intake_zspy.storage._stores import ZIP_ERRORS, KeyValueStore
from intake_zspy.storage._zarr import ZarrStoreAdapter

__all__ = [
    "CREDENTIAL_KEYS",
    "S3_MAX_POOL_CONNECTIONS",
    "Location",
    "open_store",
    "resolve",
    "strip_credentials",
]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_READ_ONLY_PROTOCOLS = frozenset({"http", "https", "github", "ftp", "reference", "cached"})
#: Concurrent requests s3fs may keep open (botocore's default, 10, throttles metadata reads).
S3_MAX_POOL_CONNECTIONS = 64
#: What to install for a protocol whose filesystem package is missing.
_EXTRAS = {"s3": "intake-zspy[s3] (s3fs)", "s3a": "intake-zspy[s3] (s3fs)"}


@dataclass(frozen=True)
class Location:
    """Where a store is, or is to be written.

    Attributes
    ----------
    fs
        The fsspec filesystem.
    path
        The path of the store in ``fs`` (protocol stripped).
    url
        The URL as the user gave it, local paths made absolute (for messages).
    kind
        The store kind when the URL decides it (writing always; reading a ``zip::`` URL
        or a local path), ``None`` when only looking can tell (a remote prefix or object).
    """

    fs: fsspec.AbstractFileSystem
    path: str
    url: str
    kind: StoreKind | None

    @property
    def local(self) -> bool:
        """On the local disk."""
        return isinstance(self.fs, LocalFileSystem)


def _is_url(text: str) -> bool:
    return "://" in text or "::" in text


def resolve(
    urlpath: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
    *,
    mode: Literal["r", "w"] = "r",
    store_type: StoreKind | Literal["local"] | None = None,
) -> Location:
    """Resolve a path or fsspec URL into a filesystem, a path and a store kind.

    Parameters
    ----------
    urlpath
        A local path (``~`` expanded, made absolute) or an fsspec URL: ``file://``,
        ``memory://``, ``s3://bucket/key``, chained URLs such as ``zip::s3://...`` or
        ``simplecache::s3://...``.
    storage_options
        Passed to fsspec; for ``s3://``, ``config_kwargs.max_pool_connections`` defaults
        to :data:`S3_MAX_POOL_CONNECTIONS`. For chained URLs, key them by protocol.
    mode
        ``"r"`` to read, ``"w"`` to write. Writing over a read-only protocol (``http``,
        ``reference``, ...) is refused, and ``zip::<url>`` names the zip file to write.
    store_type
        When writing: ``"directory"`` (a directory locally, a key prefix on remote
        storage), ``"zip"`` or ``None`` to decide from the URL (``.zip`` or ``zip::``
        means zip). ``"local"`` is accepted for ``"directory"``.

    Returns
    -------
    Location

    Raises
    ------
    TypeError
        ``urlpath`` is not a path or URL string.
    ValueError
        An unknown ``store_type``, or writing over a read-only protocol.
    ImportError
        The protocol's filesystem package is missing; the message says what to install.
    StoreNotFoundError
        A chained URL whose target does not exist.
    DamagedStoreError
        A ``zip::`` URL whose zip file is damaged.
    """
    if not isinstance(urlpath, str | os.PathLike):
        raise TypeError(f"urlpath must be a path or URL, not {type(urlpath).__name__}")
    if store_type == "local":
        store_type = "directory"
    if store_type not in (None, "directory", "zip"):
        raise ValueError(f"store_type must be 'directory', 'zip' or None, not {store_type!r}")
    url = os.fspath(urlpath)
    if mode == "w" and url.startswith("zip::"):  # the zip file itself is written
        url, store_type = url[len("zip::") :], "zip"
    if not _is_url(url):
        url = os.path.abspath(os.path.expanduser(url))
    options = _with_defaults(url, dict(storage_options or {}))
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        protocol = url.split("://", 1)[0].split("::")[-1]
        hint = _EXTRAS.get(protocol)
        raise ImportError(f"{url}: {exc}" + (f" (install {hint})" if hint else "")) from exc
    except FileNotFoundError as exc:  # a chained URL opens its target at once
        raise StoreNotFoundError(f"{url}: no such file or object") from exc
    except ZIP_ERRORS as exc:
        raise DamagedStoreError(f"{url}: damaged or truncated zip file: {exc}") from exc
    if mode == "w":
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        if protocols & _READ_ONLY_PROTOCOLS:
            raise ValueError(f"{url}: cannot write a zspy store over {min(protocols)}://")
        if store_type is None:
            store_type = "zip" if path.lower().endswith(".zip") else "directory"
        if store_type == "zip":
            return Location(fs, path, url, "zip")
        kind: StoreKind = "directory" if isinstance(fs, LocalFileSystem) else "prefix"
        return Location(fs, path.rstrip("/"), url, kind)
    if isinstance(fs, ZipFileSystem):
        return Location(fs, "", url, "zip")
    if isinstance(fs, LocalFileSystem):
        local: StoreKind | None = "directory" if os.path.isdir(path) else None
        return Location(fs, path, url, local if os.path.exists(path) else None)
    return Location(fs, path, url, None)


#: Appended to the errors botocore raises before a request gets an answer.
S3_HINT = " (check the endpoint_url and the credentials in storage_options)"


def botocore_errors() -> tuple[type[Exception], ...]:
    """botocore's own errors (no endpoint, no credentials, ...), which are no ``OSError``:
    empty until s3fs has imported botocore, as none can be raised before."""
    module = sys.modules.get("botocore.exceptions")
    return () if module is None else (module.BotoCoreError,)


def _with_defaults(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Storage options with intake-zspy's performance defaults (user settings win)."""
    if not url.startswith(("s3://", "s3a://")):
        return options
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("max_pool_connections", S3_MAX_POOL_CONNECTIONS)
    return {**options, "config_kwargs": config}


def _is_zarr_store(obj: object) -> bool:
    """Whether ``obj`` is a zarr 3 Store (without importing zarr for a path or URL: an
    object that is a zarr Store means zarr is imported already)."""
    if isinstance(obj, str | os.PathLike) or "zarr" not in sys.modules:
        return False
    from zarr.abc.store import Store

    return isinstance(obj, Store)


def open_store(
    urlpath: str | os.PathLike[str] | Any,
    storage_options: Mapping[str, Any] | None = None,
    *,
    prefetch: Sequence[str] = (),
) -> KeyValueStore:
    """Open a store for reading.

    Parameters
    ----------
    urlpath
        One of:

        - a local directory, a local zip file or HDF5 file (HyperSpy's ``.hspy``),
          told apart by their first bytes (an HDF5 file gives an :class:`HDF5File`);
        - an fsspec URL (see :func:`resolve`): a prefix or a zip object on remote
          storage is told apart by one listing;
        - an :class:`fsspec.FSMap` (``fsspec.get_mapper(...)``);
        - a :class:`zarr.abc.store.Store` instance (``LocalStore``, ``ZipStore``,
          ``MemoryStore``, ``FsspecStore``, wrappers such as ``LoggingStore``);
        - a :class:`KeyValueStore` (returned as is).
    storage_options
        Passed to fsspec when ``urlpath`` is a URL or path.
    prefetch
        Keys to fetch on remote storage in the same round trip as the listing (handed
        out once by the store's first read of them).

    Returns
    -------
    KeyValueStore

    Raises
    ------
    StoreNotFoundError
        Nothing exists at ``urlpath`` (a ``FileNotFoundError``).
    ZspyFormatError
        ``urlpath`` is a file that is neither a zip archive, an HDF5 file nor a directory
        store.
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
    loc = resolve(urlpath, storage_options)
    fs, path, url = loc.fs, loc.path, loc.url
    if loc.kind == "zip":  # explicit zip:: chain
        return FsspecStore(fs, "", url)
    if loc.local:
        if loc.kind == "directory":
            return DirectoryStore(path, url)
        if not os.path.exists(path):
            raise StoreNotFoundError(f"{url}: no such file or directory")
        return _open_zip(fs, path, url)
    # one round trip: the listing (directory or zip?) and the prefetched keys, concurrently
    for key in prefetch:
        check_key(key, url)
    root = path.rstrip("/")
    try:
        with ThreadPoolExecutor(max_workers=1 + len(prefetch)) as pool:
            listed = pool.submit(list_fs, fs, path)
            early = {k: pool.submit(cat_or_none, fs, f"{root}/{k}") for k in prefetch}
            listing = listed.result()
            prefetched = {k: f.result() for k, f in early.items()}
    except FileNotFoundError as exc:
        raise StoreNotFoundError(f"{url}: no such object or prefix") from exc
    except OSError as exc:
        raise StoreReadError(f"{url}: cannot list the store: {exc}") from exc
    except botocore_errors() as exc:
        raise StoreReadError(f"{url}: cannot list the store: {exc}{S3_HINT}") from exc
    if listing and set(listing) != {""}:
        return FsspecStore(fs, path, url, listing=listing, prefetched=prefetched)
    if not fs.isfile(path):
        raise StoreNotFoundError(f"{url}: no such object or prefix")
    return _open_zip(fs, path, url)


def _open_zip(fs: fsspec.AbstractFileSystem, path: str, url: str) -> KeyValueStore:
    with fs.open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(HDF5_SIGNATURE):  # HyperSpy's .hspy, read through h5py
        return HDF5File(fs, path, url)
    if not head.startswith(_ZIP_MAGIC):
        raise ZspyFormatError(
            f"{url}: not a zspy store nor a HyperSpy .hspy file: a file that is neither a "
            "zip archive, an HDF5 file nor a directory"
        )
    return FsspecStore.from_zip(fs, path, url)


# -- credentials ---------------------------------------------------------------------------

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
