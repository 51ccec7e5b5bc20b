"""The in-memory model of a zspy signal: what is read (:class:`Signal`, lazy data) and
what is written (:class:`SignalSpec`). Neither knows about xarray or storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.format import names
from intake_zspy.format.ragged import unflatten_ragged

if TYPE_CHECKING:
    from intake_zspy.format.arrays import V2Array
    from intake_zspy.format.axes import Axis

__all__ = ["RaggedArray", "Signal", "SignalSpec", "dim_names", "dim_names_for"]


class RaggedArray:
    """A ragged (object) array whose elements get their shapes from a companion array."""

    __slots__ = ("flat", "shapes")

    def __init__(self, flat: V2Array, shapes: V2Array) -> None:
        self.flat = flat
        self.shapes = shapes

    @property
    def shape(self) -> tuple[int, ...]:
        return self.flat.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.flat.dtype

    @property
    def path(self) -> str:
        return self.flat.path

    @property
    def chunks(self) -> tuple[int, ...]:
        return self.flat.meta.chunks

    def read(self, selection: tuple[slice, ...] | None = None) -> np.ndarray:
        return unflatten_ragged(
            self.flat.read(selection), self.shapes.read(selection), self.flat.where
        )


@dataclass
class Signal:
    """One ``Experiments/<name>`` group.

    ``data`` is lazy; everything else is decoded. ``attributes`` holds what the reference
    reader puts there (``ragged``, ``learning_results``, ...).
    """

    name: str
    path: str
    data: V2Array | RaggedArray
    axes: list[Axis]
    metadata: dict[str, Any]
    original_metadata: dict[str, Any]
    attributes: dict[str, Any]
    package: str = ""
    package_version: str = ""
    models: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        general = self.metadata.get("General", {})
        return str(general.get("title", "")) if isinstance(general, dict) else ""

    @property
    def signal_type(self) -> str:
        sig = self.metadata.get("Signal", {})
        value = sig.get("signal_type", "") if isinstance(sig, dict) else ""
        return "" if value is None else str(value)


@dataclass
class SignalSpec:
    """Everything a writer needs to store one signal."""

    group: str
    data: Any
    dims: list[str]
    axes: list[dict[str, Any]]
    metadata: dict[str, Any]
    original_metadata: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    learning_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    package: str = ""
    package_version: str = ""
    #: The chunks of the store the data came from (``encoding["chunks"]``), if known.
    stored_chunks: tuple[int, ...] | None = None


def dim_names(axes: list[Axis]) -> list[str]:
    """The Dataset dimension names of a signal's axes (:func:`dim_names_for`)."""
    return dim_names_for([a.name for a in axes])


def dim_names_for(axis_names: Sequence[str | None]) -> list[str]:
    """Dimension names for axes named ``axis_names`` (``None``: unnamed).

    An axis gives its name to its dim when the name is set, is not ``data`` (the data
    variable) and holds no ``/``; otherwise, and for names used twice, the dim is
    ``dim_<i>``.
    """
    dims = [
        n if n and n != names.DATA and "/" not in n else f"dim_{i}"
        for i, n in enumerate(axis_names)
    ]
    # Duplicates fall back to dim_<i>; a fallback may collide with an axis really named
    # "dim_<i>", which then falls back too, so this ends after at most ndim passes.
    while len(set(dims)) < len(dims):
        dims = [d if dims.count(d) == 1 else f"dim_{i}" for i, d in enumerate(dims)]
    return dims
