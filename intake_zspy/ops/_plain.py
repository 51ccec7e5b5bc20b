"""Decoded zspy values as plain, strict JSON types (for reports and descriptions)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(value: Any, max_items: int = 1000) -> Any:
    """Plain JSON types for any decoded zspy value (stable, strict JSON).

    Non-finite floats become ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (zarr's spelling);
    arrays of more than ``max_items`` items become ``{"array": {"dtype", "shape"}}``.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, complex):
        return [jsonable(value.real), jsonable(value.imag)]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.size > max_items or value.dtype.fields is not None:
            return {"array": {"dtype": str(value.dtype), "shape": list(value.shape)}}
        return jsonable(value.tolist(), max_items)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, max_items) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v, max_items) for v in value]
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
