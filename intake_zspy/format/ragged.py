"""Ragged (object) arrays: flattened with their shapes for writing, and back.

An object array (a ragged signal's data, or an object array in a dictionary) is stored
with an object codec chosen by its elements: ``vlen-utf8`` for strings, ``vlen-array``
for numeric arrays, ``msgpack2`` for other arrays and lists. Array elements are stored
flat, the shape of each in a companion array (``_ragged_shapes_<name>``, see
:mod:`~intake_zspy.format.names`); reading gives each element its shape back.
"""

from __future__ import annotations

import math
from typing import Any

import numcodecs
import numpy as np
from numcodecs.abc import Codec

from intake_zspy.errors import ZspyFormatError

__all__ = ["flatten_ragged", "unflatten_ragged"]


def flatten_ragged(data: np.ndarray, where: str) -> tuple[np.ndarray, Codec, np.ndarray | None]:
    """Flatten a ragged object array, choose its object codec and collect element shapes.

    Elements that are numeric arrays use ``vlen-array``; other arrays (strings) and
    lists use ``msgpack2``; plain strings use ``vlen-utf8``. Array elements are stored
    flattened, with their shapes in a ``_ragged_shapes_`` companion.
    """
    items = [x for x in data.ravel() if x is not None]
    if items and all(isinstance(x, str) for x in items):
        return data, numcodecs.VLenUTF8(), None
    arrays = bool(items) and all(isinstance(x, np.ndarray) for x in items)
    numeric = arrays and all(x.dtype.kind in "biuf" for x in items)
    element = np.result_type(*{x.dtype for x in items}) if numeric else None
    flat = np.empty(data.shape, dtype=object)
    shapes = np.empty(data.shape, dtype=object) if arrays else None
    for index in np.ndindex(data.shape):
        x: Any = data[index]
        if arrays:
            x = np.zeros(0, dtype=element) if x is None else np.asarray(x, dtype=element)
            shapes[index] = np.asarray(x.shape, dtype="<i8")  # type: ignore[index]
            x = x.ravel() if numeric else x.ravel().tolist()
        elif isinstance(x, np.ndarray):
            x = x.tolist()
        flat[index] = x
    if numeric:
        assert element is not None
        return flat, numcodecs.VLenArray(element.str), shapes
    codec = numcodecs.MsgPack()
    try:
        codec.encode(flat.ravel())
    except Exception as exc:
        raise TypeError(f"{where}: object array items cannot be stored (msgpack: {exc})") from exc
    return flat, codec, shapes


def unflatten_ragged(flat: np.ndarray, shapes: np.ndarray, where: str = "") -> np.ndarray:
    """Give each element of a ragged object array its stored shape.

    Raises
    ------
    ZspyFormatError
        The shape table does not match the array: another shape, or an element whose
        length is not the product of its stored shape.
    """
    if shapes.shape != flat.shape:
        raise ZspyFormatError(
            f"{where}: ragged shape table of shape {shapes.shape} for data of shape {flat.shape}"
        )
    out = np.empty(flat.shape, dtype=object)
    for index in np.ndindex(flat.shape):
        item = flat[index]
        shape = shapes[index]
        if item is not None and shape is not None:
            if not (isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu"):
                raise ZspyFormatError(f"{where}: ragged shape {shape!r} at {index}")
            dims = tuple(shape.tolist())
            try:
                item = np.asarray(item)
            except ValueError as exc:
                raise ZspyFormatError(f"{where}: element {index}: {exc}") from exc
            if min(dims, default=0) < 0 or item.ndim != 1 or item.size != math.prod(dims):
                raise ZspyFormatError(
                    f"{where}: element {index} holds {item.size} values, its stored shape "
                    f"{dims} needs {math.prod(dims)}"
                )
            item = item.reshape(dims)
        out[index] = item
    return out
