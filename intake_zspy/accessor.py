"""``.zspy`` accessors: ``da.zspy.to_zspy(url)`` and ``ds.zspy.to_zspy(url)``."""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from intake_zspy.writer import to_zspy

__all__ = ["ZspyAccessor"]


class ZspyAccessor:
    """zspy methods on DataArrays and Datasets."""

    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    def to_zspy(self, urlpath: str | os.PathLike[str], **kwargs: Any) -> str:
        """Write this object as a zspy store; see :func:`intake_zspy.to_zspy`."""
        return to_zspy(self._obj, urlpath, **kwargs)


xr.register_dataarray_accessor("zspy")(ZspyAccessor)  # type: ignore[no-untyped-call]
xr.register_dataset_accessor("zspy")(ZspyAccessor)  # type: ignore[no-untyped-call]
