"""HyperSpy axes: the three axis types and the values each one stands for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.errors import LimitExceededError, ZspyFormatError
from intake_zspy.format import names
from intake_zspy.format.expression import parse
from intake_zspy.format.limits import get_limits

if TYPE_CHECKING:
    from intake_zspy.format.hierarchy import ItemEncoder

__all__ = ["Axis", "axis_from_dict", "encode_axis"]

#: Keys of an axis dictionary that are not functional-axis parameters.
_AXIS_KEYS = frozenset(
    {
        names.AXIS_TYPE,
        "name",
        "units",
        "navigate",
        "is_binned",
        "size",
        "scale",
        "offset",
        "expression",
        names.AXIS_VECTOR,
        names.FUNCTIONAL_X,
    }
)


@dataclass(frozen=True)
class Axis:
    """One HyperSpy axis.

    ``values`` are the coordinates HyperSpy computes: ``offset + scale * arange(size)``
    for uniform axes, the stored vector for ``DataAxis``, the expression evaluated on the
    ``x`` axis for ``FunctionalDataAxis``. ``raw`` keeps the whole stored dictionary so a
    writer can store the axis back exactly.
    """

    kind: str
    name: str | None
    units: str | None
    navigate: bool | None
    is_binned: bool
    values: np.ndarray
    raw: dict[str, Any] = field(repr=False)

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    @property
    def scale(self) -> float | None:
        value = self.raw.get("scale")
        return None if value is None else float(value)  # checked by axis_from_dict

    @property
    def offset(self) -> float | None:
        value = self.raw.get("offset")
        return None if value is None else float(value)

    @property
    def expression(self) -> str | None:
        value = self.raw.get("expression")
        return None if value is None else str(value)

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameters of a functional axis (every key that is not an axis setting)."""
        if self.kind != names.FUNCTIONAL_AXIS:
            return {}
        return {k: v for k, v in self.raw.items() if k not in _AXIS_KEYS}


_KINDS = (names.UNIFORM_AXIS, names.DATA_AXIS, names.FUNCTIONAL_AXIS)


def _kind_of(d: dict[str, Any], where: str) -> str:
    kind = d.get(names.AXIS_TYPE)
    if kind is not None:
        if kind not in _KINDS:
            raise ZspyFormatError(f"{where}: unknown axis type {kind!r}")
        return str(kind)
    # files without _type (HyperSpy < 1.7) only had uniform axes
    if names.AXIS_VECTOR in d:
        return names.DATA_AXIS
    if "expression" in d:
        return names.FUNCTIONAL_AXIS
    return names.UNIFORM_AXIS


def _number(d: dict[str, Any], key: str, default: float, where: str) -> float:
    value = d.get(key, default)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ZspyFormatError(f"{where}: axis {key} must be a number, not {value!r}")
    return float(value)


def _flag(d: dict[str, Any], key: str, where: str) -> bool | None:
    value = d.get(key)
    if isinstance(value, np.bool_):
        value = bool(value)
    if value is not None and not isinstance(value, bool):
        raise ZspyFormatError(f"{where}: axis {key} must be true or false, not {value!r}")
    return value


def _text(d: dict[str, Any], key: str, where: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise ZspyFormatError(f"{where}: axis {key} must be a string, not {value!r}")
    return value


def _length(value: Any, where: str) -> int:
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ZspyFormatError(f"{where}: axis size must be a non-negative integer, not {value!r}")
    limit = get_limits().max_axis_length
    if value > limit:
        raise LimitExceededError(
            f"{where}: axis of {value} values, more than the limit of {limit} "
            "(intake_zspy.set_limits(max_axis_length=...))"
        )
    return value


def _parameter(name: str, value: Any, where: str) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.ndim <= 1:
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ZspyFormatError(
            f"{where}: functional axis parameter {name!r} must be a number, not {value!r}"
        )
    return value


def _values(d: dict[str, Any], size: int | None, where: str) -> np.ndarray:
    kind = _kind_of(d, where)
    if kind == names.UNIFORM_AXIS:
        if size is None:
            size = d.get("size")
        if size is None:
            raise ZspyFormatError(f"{where}: uniform axis without a size")
        scale = _number(d, "scale", 1.0, where)
        offset = _number(d, "offset", 0.0, where)
        return offset + scale * np.arange(_length(size, where), dtype=np.float64)
    if kind == names.DATA_AXIS:
        vector = d.get(names.AXIS_VECTOR)
        if vector is None:
            raise ZspyFormatError(f"{where}: DataAxis without an 'axis' array")
        vector = np.asarray(vector)
        if vector.ndim != 1 or vector.dtype.kind not in "iuf":
            raise ZspyFormatError(
                f"{where}: DataAxis 'axis' must be a 1-D numeric array, not {vector.dtype} "
                f"of shape {vector.shape}"
            )
        return vector
    x_dict = d.get(names.FUNCTIONAL_X)
    if not isinstance(x_dict, dict):
        raise ZspyFormatError(f"{where}: FunctionalDataAxis without an 'x' axis group")
    if _kind_of(x_dict, f"{where}/x") == names.FUNCTIONAL_AXIS:
        raise ZspyFormatError(f"{where}: the 'x' of a functional axis cannot be functional")
    x = _values(x_dict, size if x_dict.get("size") is None else None, f"{where}/x")
    expression = d.get("expression")
    if not isinstance(expression, str):
        raise ZspyFormatError(f"{where}: functional axis expression must be text")
    params = {k: _parameter(k, v, where) for k, v in d.items() if k not in _AXIS_KEYS}
    try:
        values = parse(expression)({**params, "x": x})
        return np.broadcast_to(np.asarray(values, dtype=np.float64), x.shape).copy()
    except ZspyFormatError as exc:
        raise ZspyFormatError(f"{where}: {exc}") from exc
    except ValueError as exc:  # parameters that do not broadcast against x
        raise ZspyFormatError(f"{where}: cannot evaluate {expression!r}: {exc}") from exc


def axis_from_dict(d: dict[str, Any], size: int, where: str) -> Axis:
    """Build an :class:`Axis` from a decoded axis dictionary for a dimension of ``size``.

    Every field is checked for its type (no truthiness of strings, no coercion).

    Raises
    ------
    ZspyFormatError
        The axis is malformed or its length disagrees with the data.
    LimitExceededError
        The axis is longer than ``max_axis_length``.
    """
    stored = d.get("size")
    if stored is not None:
        stored = _length(stored, where)
    values = _values(d, size, where)
    found = stored if stored is not None else values.shape[0]
    if found != size or values.shape[0] != size:
        raise ZspyFormatError(f"{where}: axis has {found} values but the data dimension has {size}")
    navigate = _flag(d, "navigate", where)
    return Axis(
        kind=_kind_of(d, where),
        name=_text(d, "name", where),
        units=_text(d, "units", where),
        navigate=navigate,
        is_binned=bool(_flag(d, "is_binned", where)),
        values=values,
        raw=d,
    )


def encode_axis(enc: ItemEncoder, path: str, axis: Mapping[str, Any]) -> None:
    """An axis group: attrs, plus the ``axis`` vector or the functional ``x`` axis."""
    attrs = {k: v for k, v in axis.items() if k not in (names.AXIS_VECTOR, names.FUNCTIONAL_X)}
    attrs = {k: (names.NONE if v is None else v) for k, v in attrs.items()}
    if names.AXIS_VECTOR in axis and axis[names.AXIS_VECTOR] is not None:
        enc.array(f"{path}/{names.AXIS_VECTOR}", np.asarray(axis[names.AXIS_VECTOR]))
    if isinstance(axis.get(names.FUNCTIONAL_X), Mapping):
        encode_axis(enc, f"{path}/{names.FUNCTIONAL_X}", axis[names.FUNCTIONAL_X])
    enc.group(path, attrs)
