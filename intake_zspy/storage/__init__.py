"""Storage: where stores live and how their keys are read and written.

The lowest layer of intake-zspy; it knows nothing of zarr documents or HyperSpy. One
resolver (:func:`resolve`) turns paths, URLs and storage options into filesystems for
reading, writing, catalogs and the command line; :func:`open_store` gives a
:class:`KeyValueStore` to read, :func:`open_target` a :class:`WriteTarget` to write.
"""

from __future__ import annotations

from intake_zspy.storage._fsspec import FsspecStore
from intake_zspy.storage._hdf5 import HDF5_SIGNATURE, HDF5File
from intake_zspy.storage._keys import KeyInfo, check_key
from intake_zspy.storage._kinds import STORE_KINDS, StoreKind
from intake_zspy.storage._local import DirectoryStore
from intake_zspy.storage._resolve import (
    CREDENTIAL_KEYS,
    S3_MAX_POOL_CONNECTIONS,
    Location,
    open_store,
    resolve,
    strip_credentials,
)
from intake_zspy.storage._stores import KeyValueStore, SnapshotStore
from intake_zspy.storage._target import WriteTarget, open_target
from intake_zspy.storage._zarr import ZarrStoreAdapter

__all__ = [
    "CREDENTIAL_KEYS",
    "HDF5_SIGNATURE",
    "S3_MAX_POOL_CONNECTIONS",
    "STORE_KINDS",
    "DirectoryStore",
    "FsspecStore",
    "HDF5File",
    "KeyInfo",
    "KeyValueStore",
    "Location",
    "SnapshotStore",
    "StoreKind",
    "WriteTarget",
    "ZarrStoreAdapter",
    "check_key",
    "open_store",
    "open_target",
    "resolve",
    "strip_credentials",
]
