"""Decode HyperSpy's dictionary encoding (metadata, original_metadata, models, ...).

A dictionary is a group. Attributes hold scalars and strings (``"_None_"`` is ``None``),
arrays hold numpy data, sub-groups hold dictionaries, and name prefixes restore types
JSON cannot express. See :mod:`intake_zspy.format.names` for the list.

Unlike the reference reader, sequences stored as groups (``_list_<n>_<key>``) come back
in their true order (children ``0 .. n-1`` sorted numerically).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.errors import ZspyFormatError
from intake_zspy.format import names
from intake_zspy.format.axes import encode_axis
from intake_zspy.format.documents import bytes_to_text, json_safe, text_key
from intake_zspy.format.ragged import unflatten_ragged

if TYPE_CHECKING:
    from intake_zspy.format.hierarchy import Hierarchy, ItemEncoder

__all__ = [
    "Decoder",
    "axes_dicts",
    "decode_attr_value",
    "decode_group",
    "encode_dictionary",
    "encode_signal_dict",
    "encode_signal_parts",
    "node_path",
    "signal_dict",
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


# -- writing: the mirror of the above ----------------------------------------------------

_SEPARATORS = re.compile(r"[/\\]+")
_RESERVED = frozenset({"", ".", "..", *names.METADATA_DOCS, names.ZMETADATA})


def node_path(key: str, where: str) -> str:
    """The group or array path a dictionary key becomes, relative to its group.

    As in HyperSpy (through zarr 2), ``/`` and ``\\`` in a key that holds a dictionary or
    an array make nested groups: ``{"Sub/Group": {...}}`` is stored, and read back, as
    ``{"Sub": {"Group": {...}}}``.

    Raises
    ------
    ValueError
        The key names no node zarr can store (empty, ``.``, ``..``, a metadata document
        name such as ``.zattrs``, or a NUL character).
    """
    parts = [p for p in _SEPARATORS.split(key) if p]
    if not parts or "\0" in key or any(p in _RESERVED for p in parts):
        raise ValueError(
            f"{where}: key {key!r} cannot be stored as a group or array name (neither zarr "
            "nor HyperSpy can store it); rename it"
        )
    return "/".join(parts)


def _list_attribute(value: list[Any] | tuple[Any, ...], where: str) -> list[Any]:
    """A list under a key holding ``/``: a JSON list attribute, as HyperSpy reads one.

    (A ``_list_`` array or group would be split at the ``/``: HyperSpy reads that back
    as something else.) Tuples come back as lists.
    """
    items = json_safe(list(value), where)
    if not all(v is None or isinstance(v, bool | int | float | str) for v in items):
        raise ValueError(
            f"{where}: a list of lists, dictionaries or arrays under a key holding '/' "
            "cannot be stored so that HyperSpy reads it back; rename the key"
        )
    return items  # type: ignore[no-any-return]


def _is_signal_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and "data" in value and "axes" in value


def _sequence_array(items: list[Any] | tuple[Any, ...]) -> np.ndarray | None:
    """A 1-D array for a homogeneous sequence of numbers or strings, else ``None``."""
    kinds = {type(v) for v in items}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is str:
        return np.array(items, dtype=object)
    if kind in (bool, int, float, complex) or issubclass(kind, np.number | np.bool_):
        array = np.asarray(items)
        return array if array.ndim == 1 and array.dtype.kind in "biufc" else None
    return None


def encode_dictionary(
    enc: ItemEncoder, path: str, d: Mapping[str, Any], attrs: Mapping[str, Any] | None = None
) -> None:
    """A dictionary in HyperSpy's encoding (the mirror of ``dicts.Decoder.group``)."""
    group_attrs: dict[str, Any] = dict(attrs or {})
    for raw_key, value in d.items():
        key = text_key(raw_key, path)
        where = f"{path}/{key}" if path else key
        node = isinstance(value, Mapping | np.ndarray) or hasattr(value, "__array_function__")
        child = where
        if node:
            rel = node_path(key, where)
            child = f"{path}/{rel}" if path else rel
            if "/" in rel:
                enc.parents(path, rel)
        if isinstance(value, Mapping) and key.startswith(names.SIGNAL) and _is_signal_dict(value):
            encode_signal_dict(enc, child, value, nested=True)
        elif isinstance(value, Mapping):
            encode_dictionary(enc, child, value)
        elif value is None:
            group_attrs[key] = names.NONE
        elif node:
            enc.array(child, np.asarray(value))
        elif isinstance(value, list | tuple) and _SEPARATORS.search(key) and value:
            group_attrs[key] = _list_attribute(value, where)
        elif isinstance(value, list | tuple):
            _encode_sequence(enc, path, key, value, group_attrs)
        elif isinstance(value, bytes):
            group_attrs[key] = bytes_to_text(value, child)
        elif isinstance(value, np.generic):
            group_attrs[key] = value.item()
        elif isinstance(value, bool | int | float | str):
            group_attrs[key] = value
        else:
            raise TypeError(f"{child}: cannot store a {type(value).__name__} in zspy metadata")
    enc.group(path, group_attrs)


def _encode_sequence(
    enc: ItemEncoder, path: str, key: str, value: list[Any] | tuple[Any, ...], attrs: dict[str, Any]
) -> None:
    kind = "list" if isinstance(value, list) else "tuple"
    prefix = f"{path}/" if path else ""
    if key.startswith(names.AXES_MANAGER):
        encode_dictionary(enc, f"{prefix}{key}", {str(i): v for i, v in enumerate(value)})
        return
    if not value:
        attrs[f"_{kind}_empty_{key}"] = names.NONE
        return
    array = _sequence_array(value)
    if array is not None:
        enc.array(f"{prefix}_{kind}_{key}", array)
        return
    encode_dictionary(
        enc, f"{prefix}_{kind}_{len(value)}_{key}", {str(i): v for i, v in enumerate(value)}
    )


def encode_signal_parts(
    enc: ItemEncoder,
    path: str,
    parts: Mapping[str, Any],
    axes: Sequence[Mapping[str, Any]],
    *,
    nested: bool = False,
) -> None:
    """Everything of a signal but its data (the mirror of :meth:`Decoder.signal_parts` and
    :func:`axes_dicts`): axis groups (``axis-i``, or ``_list_<n>_axes`` for a signal
    nested in a dictionary), ``metadata``, ``original_metadata``, ``attributes``,
    decomposition results (``learning_results``, ``peak_learning_results`` in ``parts``)
    and the group attributes ``package``/``package_version``.
    """
    if nested:
        axes_path = f"{path}/{names.LIST}{len(axes)}_axes"
        enc.group(axes_path)
        for i, axis in enumerate(axes):
            encode_axis(enc, f"{axes_path}/{i}", axis)
    else:
        for i, axis in enumerate(axes):
            encode_axis(enc, f"{path}/{names.AXIS_PREFIX}{i}", axis)
    for part in (names.METADATA, names.ORIGINAL_METADATA, names.ATTRIBUTES):
        encode_dictionary(enc, f"{path}/{part}", parts.get(part) or {})
    for key in (names.LEARNING_RESULTS, names.PEAK_LEARNING_RESULTS):
        if isinstance(parts.get(key), Mapping):
            encode_dictionary(enc, f"{path}/{key}", parts[key])
    package = {
        names.ATTR_PACKAGE: parts.get("package", ""),
        names.ATTR_PACKAGE_VERSION: parts.get("package_version", ""),
    }
    enc.group(path, package)


def encode_signal_dict(
    enc: ItemEncoder, path: str, signal: Mapping[str, Any], *, nested: bool = False
) -> None:
    """A whole (small, in-memory) signal dictionary, e.g. ``_sig_`` in metadata (the
    mirror of :func:`signal_dict`)."""
    enc.array(f"{path}/{names.DATA}", np.asarray(signal["data"]))
    encode_signal_parts(enc, path, signal, list(signal.get("axes", [])), nested=nested)
