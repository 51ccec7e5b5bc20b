"""HyperSpy axes: the three axis types and the values each one stands for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intake_zspy.errors import ZspyFormatError
from intake_zspy.format import names
from intake_zspy.format.expression import parse

__all__ = ["Axis", "axis_from_dict"]

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
        return None if value is None else float(value)

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


def _kind_of(d: dict[str, Any]) -> str:
    kind = d.get(names.AXIS_TYPE)
    if kind is not None:
        return str(kind)
    # files without _type (HyperSpy < 1.7) only had uniform axes
    if names.AXIS_VECTOR in d:
        return names.DATA_AXIS
    if "expression" in d:
        return names.FUNCTIONAL_AXIS
    return names.UNIFORM_AXIS


def _values(d: dict[str, Any], size: int | None, where: str) -> np.ndarray:
    kind = _kind_of(d)
    if kind == names.UNIFORM_AXIS:
        if size is None:
            size = d.get("size")
        if size is None:
            raise ZspyFormatError(f"{where}: uniform axis without a size")
        scale = float(d.get("scale", 1.0) if d.get("scale") is not None else 1.0)
        offset = float(d.get("offset", 0.0) if d.get("offset") is not None else 0.0)
        return offset + scale * np.arange(int(size), dtype=np.float64)
    if kind == names.DATA_AXIS:
        vector = d.get(names.AXIS_VECTOR)
        if vector is None:
            raise ZspyFormatError(f"{where}: DataAxis without an 'axis' array")
        return np.asarray(vector)
    if kind == names.FUNCTIONAL_AXIS:
        x_dict = d.get(names.FUNCTIONAL_X)
        if not isinstance(x_dict, dict):
            raise ZspyFormatError(f"{where}: FunctionalDataAxis without an 'x' axis group")
        x = _values(x_dict, size if x_dict.get("size") is None else None, f"{where}/x")
        expr = parse(str(d.get("expression")))
        params = {k: v for k, v in d.items() if k not in _AXIS_KEYS}
        try:
            values = expr({**params, "x": x})
        except ZspyFormatError as exc:
            raise ZspyFormatError(f"{where}: {exc}") from exc
        return np.broadcast_to(np.asarray(values, dtype=np.float64), x.shape).copy()
    raise ZspyFormatError(f"{where}: unknown axis type {kind!r}")


def axis_from_dict(d: dict[str, Any], size: int, where: str) -> Axis:
    """Build an :class:`Axis` from a decoded axis dictionary for a dimension of ``size``.

    Raises
    ------
    ZspyFormatError
        The axis is malformed or its length disagrees with the data.
    """
    stored = d.get("size")
    values = _values(d, size, where)
    found = int(stored) if stored is not None else (values.shape[0] if values.ndim else 0)
    if found != size or values.ndim != 1 or values.shape[0] != size:
        raise ZspyFormatError(f"{where}: axis has {found} values but the data dimension has {size}")
    navigate = d.get("navigate")
    return Axis(
        kind=_kind_of(d),
        name=None if d.get("name") is None else str(d["name"]),
        units=None if d.get("units") is None else str(d["units"]),
        navigate=None if navigate is None else bool(navigate),
        is_binned=bool(d.get("is_binned", False)),
        values=values,
        raw=d,
    )
