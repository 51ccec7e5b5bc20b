"""intake-zspy: HyperSpy ``.zspy`` stores for xarray, zarr 3, fsspec and intake.

``import intake_zspy`` is light: it does not import numpy, xarray, zarr or dask. The
errors and the limits are defined here at once; every other public name (``open_dataset``,
``to_zspy``, ...) is imported on first access (PEP 562), so the command line starts in a
blink and ``--help`` needs none of the heavy dependencies. The ``.zspy`` accessor of
xarray objects is registered as soon as xarray is (or gets) imported: see
:mod:`intake_zspy.accessor`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from intake_zspy import accessor as _accessor
from intake_zspy.errors import (
    ChunkDecodeError,
    DamagedStoreError,
    IncompleteStoreError,
    LimitExceededError,
    PreviewError,
    SignalNotFoundError,
    StaleMetadataWarning,
    StoreExistsError,
    StoreNotFoundError,
    StoreReadError,
    UnsafePathError,
    UnsupportedCodecError,
    UnsupportedVersionError,
    ZspyError,
    ZspyFormatError,
    ZspyNameWarning,
    ZspyVersionWarning,
    ZspyWarning,
)
from intake_zspy.format.limits import Limits, get_limits, set_limits

if TYPE_CHECKING:
    from intake_zspy.archive import browse
    from intake_zspy.catalog import ZspyExperimentsCatalog, ZspyStoresCatalog
    from intake_zspy.ops.copy import copy
    from intake_zspy.ops.describe import describe
    from intake_zspy.ops.verify import verify
    from intake_zspy.preview import preview_figure
    from intake_zspy.reader import open_dataset, open_datatree
    from intake_zspy.source import ZspySource
    from intake_zspy.writer import to_zspy

    __version__: str

_accessor.install()

#: public names imported on first access: name -> module defining it
_LAZY = {
    "open_dataset": "intake_zspy.reader",
    "open_datatree": "intake_zspy.reader",
    "to_zspy": "intake_zspy.writer",
    "verify": "intake_zspy.ops.verify",
    "copy": "intake_zspy.ops.copy",
    "describe": "intake_zspy.ops.describe",
    "browse": "intake_zspy.archive",
    "preview_figure": "intake_zspy.preview",
    "ZspySource": "intake_zspy.source",
    "ZspyExperimentsCatalog": "intake_zspy.catalog",
    "ZspyStoresCatalog": "intake_zspy.catalog",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("intake-zspy")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        _accessor.register()  # xarray is imported by now (or the hook will see it)
    else:
        raise AttributeError(f"module 'intake_zspy' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ChunkDecodeError",
    "DamagedStoreError",
    "IncompleteStoreError",
    "LimitExceededError",
    "Limits",
    "PreviewError",
    "SignalNotFoundError",
    "StaleMetadataWarning",
    "StoreExistsError",
    "StoreNotFoundError",
    "StoreReadError",
    "UnsafePathError",
    "UnsupportedCodecError",
    "UnsupportedVersionError",
    "ZspyError",
    "ZspyExperimentsCatalog",
    "ZspyFormatError",
    "ZspyNameWarning",
    "ZspySource",
    "ZspyStoresCatalog",
    "ZspyVersionWarning",
    "ZspyWarning",
    "__version__",
    "browse",
    "copy",
    "describe",
    "get_limits",
    "open_dataset",
    "open_datatree",
    "preview_figure",
    "set_limits",
    "to_zspy",
    "verify",
]
