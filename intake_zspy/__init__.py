"""intake-zspy: HyperSpy ``.zspy`` stores for xarray, zarr 3, fsspec and intake."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from intake_zspy import accessor as _accessor  # noqa: F401 - registers ``.zspy``
from intake_zspy.errors import (
    ChunkDecodeError,
    IncompleteStoreError,
    SignalNotFoundError,
    StaleMetadataWarning,
    UnsupportedCodecError,
    ZspyError,
    ZspyFormatError,
    ZspyVersionWarning,
)
from intake_zspy.reader import open_dataset, open_datatree
from intake_zspy.writer import to_zspy

try:
    __version__ = version("intake-zspy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ChunkDecodeError",
    "IncompleteStoreError",
    "SignalNotFoundError",
    "StaleMetadataWarning",
    "UnsupportedCodecError",
    "ZspyError",
    "ZspyFormatError",
    "ZspyVersionWarning",
    "__version__",
    "open_dataset",
    "open_datatree",
    "to_zspy",
]
