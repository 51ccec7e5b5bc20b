"""intake-zspy: HyperSpy ``.zspy`` stores for xarray, zarr 3, fsspec and intake."""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from intake_zspy import accessor as _accessor  # noqa: F401 - registers ``.zspy``
from intake_zspy.errors import (
    ChunkDecodeError,
    DamagedStoreError,
    IncompleteStoreError,
    LimitExceededError,
    SignalNotFoundError,
    StaleMetadataWarning,
    StoreExistsError,
    StoreNotFoundError,
    StoreReadError,
    UnsafePathError,
    UnsupportedCodecError,
    ZspyError,
    ZspyFormatError,
    ZspyVersionWarning,
    ZspyWarning,
)
from intake_zspy.format.limits import Limits, get_limits, set_limits
from intake_zspy.reader import open_dataset, open_datatree
from intake_zspy.writer import to_zspy

#: intake adapters, imported on first use so that ``import intake_zspy`` stays light
_LAZY = {
    "ZspySource": "intake_zspy.source",
    "ZspyExperimentsCatalog": "intake_zspy.catalog",
    "ZspyStoresCatalog": "intake_zspy.catalog",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'intake_zspy' has no attribute {name!r}")


try:
    __version__ = version("intake-zspy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ChunkDecodeError",
    "DamagedStoreError",
    "IncompleteStoreError",
    "LimitExceededError",
    "Limits",
    "SignalNotFoundError",
    "StaleMetadataWarning",
    "StoreExistsError",
    "StoreNotFoundError",
    "StoreReadError",
    "UnsafePathError",
    "UnsupportedCodecError",
    "ZspyError",
    "ZspyExperimentsCatalog",
    "ZspyFormatError",
    "ZspySource",
    "ZspyStoresCatalog",
    "ZspyVersionWarning",
    "ZspyWarning",
    "__version__",
    "get_limits",
    "open_dataset",
    "open_datatree",
    "set_limits",
    "to_zspy",
]
