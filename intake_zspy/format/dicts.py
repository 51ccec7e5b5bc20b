"""Decode HyperSpy's dictionary encoding (metadata, original_metadata, models, ...).

A dictionary is a group. Attributes hold scalars and strings (``"_None_"`` is ``None``),
arrays hold numpy data, sub-groups hold dictionaries, and name prefixes restore types
JSON cannot express. See :mod:`intake_zspy.format.names` for the list.

Unlike the reference reader, sequences stored as groups (``_list_<n>_<key>``) come back
in their true order (children ``0 .. n-1`` sorted numerically).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.errors import ZspyFormatError
from intake_zspy.format import names

if TYPE_CHECKING:
    from intake_zspy.format.hierarchy import Hierarchy

__all__ = [
    "Decoder",
    "axes_dicts",
    "decode_attr_value",
    "decode_group",
    "signal_dict",
    "unflatten_ragged",
]

_DATETIME_ARGS = re.compile(r"\(([\d\s,]*)\)")


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def decode_attr_value(value: Any) -> Any:
    """A JSON attribute value as HyperSpy means it (``"_None_"`` becomes ``None``)."""
    if value == names.NONE and isinstance(value, str):
        return None
    return value


def _legacy_datetime(key: str, value: Any) -> tuple[str, str]:
    """``_datetime_date``/``_datetime_time`` attrs of old files, as ISO strings.

    The stored value is the ``repr`` of a ``datetime.date``/``time``; its numbers are
    parsed with a regular expression, never evaluated.
    """
    match = _DATETIME_ARGS.search(str(value)) if isinstance(value, str) else None
    if match is None or len(match.group(1)) > 64:
        raise ValueError(f"cannot parse legacy datetime attribute {key}={value!r}")
    numbers = [int(n) for n in match.group(1).replace(",", " ").split()]
    try:
        value = (
            datetime.date(*numbers)
            if key.startswith(f"{names.DATETIME}date")
            else datetime.time(*numbers)  # type: ignore[arg-type]
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"legacy datetime attribute {key}={value!r}: {exc}") from exc
    return key[len(names.DATETIME) :], value.isoformat()


def _bytes_attr(key: str, value: Any) -> bytes:
    """A ``_bs_`` attribute: text (UTF-8) or a list of byte values."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 256 for v in value
    ):
        return bytes(value)
    raise ValueError(f"bytes attribute {key} must hold text or byte values, not {value!r}")


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


def _as_text(array: np.ndarray) -> np.ndarray:
    """Fixed-width byte strings (``|S``) read back as text, as HyperSpy does."""
    if array.dtype.kind == "S":
        try:
            return np.char.decode(array, "utf-8")
        except UnicodeDecodeError:  # binary content that must stay bytes
            return array
    return array


def _sequence_items(array: np.ndarray) -> list[Any]:
    array = _as_text(array)
    if array.dtype.kind == "O":
        return [item.decode() if isinstance(item, bytes) else item for item in array.tolist()]
    return array.tolist()  # type: ignore[no-any-return]


class Decoder:
    """Decodes the dictionaries below group ``root``.

    Every array below ``root`` (but those in ``skip``) is read up front in one batch of
    concurrent requests, so decoding costs one round trip however many arrays there are.
    The documents of the skipped arrays are checked in that round trip too.
    """

    def __init__(self, hierarchy: Hierarchy, root: str, skip: Collection[str] = ()) -> None:
        self.h = hierarchy
        paths = hierarchy.walk_arrays(root)
        self.arrays = hierarchy.read_arrays(
            [p for p in paths if p not in skip], verify=[p for p in paths if p in skip]
        )

    def array(self, group: str, name: str) -> np.ndarray:
        path = _join(group, name)
        data = self.arrays[path]
        for shapes_name in (f"{names.RAGGED_SHAPES}{name}", names.LEGACY_RAGGED_SHAPES):
            shapes_path = _join(group, shapes_name)
            if shapes_path in self.arrays and data.dtype.kind == "O":
                where = f"{self.h.store.url}: array {path!r}"
                return unflatten_ragged(data, self.arrays[shapes_path], where)
        return data

    def group(self, path: str) -> dict[str, Any]:
        try:
            return self._group(path)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ZspyFormatError):
                raise
            raise ZspyFormatError(f"{self.h.store.url}: group {path!r}: {exc}") from exc

    def _group(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.h.attrs(path).items():
            if key.startswith(names.SIGNAL):
                continue
            if key.startswith(names.LIST_EMPTY):
                out[key[len(names.LIST_EMPTY) :]] = []
            elif key.startswith(names.TUPLE_EMPTY):
                out[key[len(names.TUPLE_EMPTY) :]] = ()
            elif key.startswith(names.BYTES):
                out[key[len(names.BYTES) :]] = _bytes_attr(key, value)
            elif key.startswith(names.DATETIME):
                k, v = _legacy_datetime(key, value)
                out[k] = v
            else:
                out[key] = decode_attr_value(value)
        for name in self.h.arrays(path):
            if name.startswith(names.RAGGED_SHAPES) or name == names.LEGACY_RAGGED_SHAPES:
                continue
            data = self.array(path, name)
            if name.startswith(names.LIST):
                out[name[len(names.LIST) :]] = _sequence_items(data)
            elif name.startswith(names.TUPLE):
                out[name[len(names.TUPLE) :]] = tuple(_sequence_items(data))
            else:
                out[name] = _as_text(data)
        for name in self.h.groups(path):
            child = _join(path, name)
            if name.startswith(names.SIGNAL):
                out[name] = self.signal(child)
            elif name.startswith(names.AXES_MANAGER):
                out[name] = self.sequence(child, None)
            elif match := names.SEQUENCE_GROUP.match(name):
                kind, length, key = match.groups()
                items = self.sequence(child, int(length))
                out[key] = items if kind == "list" else tuple(items)
            else:
                out[name] = self.group(child)
        return out

    def sequence(self, path: str, length: int | None) -> list[Any]:
        items = self.group(path)
        if not all(k.isascii() and k.isdigit() for k in items):
            raise ZspyFormatError(
                f"{self.h.store.url}: sequence group {path!r} has non-numeric items"
            )
        order = sorted(items, key=int)
        expected = len(items) if length is None else length
        if len(order) != expected or [int(k) for k in order] != list(range(expected)):
            raise ZspyFormatError(
                f"{self.h.store.url}: sequence group {path!r} should hold items "
                f"0..{expected - 1}, found {order[:10]}"
            )
        return [items[k] for k in order]

    def signal(self, path: str) -> dict[str, Any]:
        """A signal nested in a dictionary (``_sig_<key>``), as a signal dictionary."""
        return signal_dict(self.h, path, self)

    def signal_parts(self, path: str) -> dict[str, Any]:
        """Everything of the signal at ``path`` but its data and axes.

        As the reference reader does, an ``__unnamed__`` title reads as ``""`` and
        decomposition results go into ``attributes``.
        """
        metadata = self.group(_join(path, names.METADATA))
        general = metadata.get("General")
        if isinstance(general, dict) and general.get("title") == names.UNNAMED:
            general["title"] = ""
        attributes = self.group(_join(path, names.ATTRIBUTES))
        for key in (names.LEARNING_RESULTS, names.PEAK_LEARNING_RESULTS):
            if self.h.is_group(_join(path, key)):
                attributes[key] = self.group(_join(path, key))
        attrs = self.h.attrs(path)
        return {
            "metadata": metadata,
            "original_metadata": self.group(_join(path, names.ORIGINAL_METADATA)),
            "attributes": attributes,
            "package": str(attrs.get(names.ATTR_PACKAGE, "")),
            "package_version": str(attrs.get(names.ATTR_PACKAGE_VERSION, "")),
        }


def decode_group(hierarchy: Hierarchy, path: str) -> dict[str, Any]:
    """Decode the dictionary stored in group ``path`` (empty if the group is absent)."""
    if not hierarchy.is_group(path):
        return {}
    return Decoder(hierarchy, path).group(path)


def axes_dicts(h: Hierarchy, path: str, ndim: int, decoder: Decoder) -> list[dict[str, Any]]:
    """The axis dictionaries of the signal at ``path``: ``axis-i`` or ``_list_<n>_axes``.

    Raises
    ------
    ZspyFormatError
        The axis groups do not match the data's dimensions one to one.
    """
    current = [_join(path, f"{names.AXIS_PREFIX}{i}") for i in range(ndim)]
    found = sorted(g for g in h.groups(path) if g.startswith(names.AXIS_PREFIX))
    extra = sorted(set(found) - {p.rsplit("/", 1)[-1] for p in current})
    if extra:
        raise ZspyFormatError(
            f"{h.store.url}: signal {path!r} has {ndim} dimensions but also axis groups "
            f"{extra}; the axis groups must match the data's dimensions"
        )
    if all(h.is_group(p) for p in current):
        return [decoder.group(p) for p in current]
    legacy = _join(path, f"{names.LIST}{ndim}_axes")
    if h.is_group(legacy):
        return decoder.sequence(legacy, ndim)
    raise ZspyFormatError(
        f"{h.store.url}: signal {path!r} has {ndim} dimensions but no axis-0..axis-{ndim - 1} "
        f"groups (nor {legacy.rsplit('/', 1)[-1]!r})"
    )


def signal_dict(h: Hierarchy, path: str, decoder: Decoder | None = None) -> dict[str, Any]:
    """A whole signal dictionary (data read), like the reference reader's."""
    decoder = decoder or Decoder(h, path)
    data = decoder.array(path, names.DATA)
    return {
        "data": data,
        "axes": axes_dicts(h, path, data.ndim, decoder),
        **decoder.signal_parts(path),
    }
