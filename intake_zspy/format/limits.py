"""Bounds on what a store may declare, checked before anything is allocated or parsed.

A store's documents declare sizes (shapes, chunks, element counts) that the reader would
otherwise trust when it allocates memory. These limits turn an absurd declaration into a
:class:`~intake_zspy.errors.LimitExceededError` naming the store, instead of a
``MemoryError`` or a machine brought to its knees. The defaults are far above anything
HyperSpy writes; raise them with :func:`set_limits` for trusted data.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

__all__ = ["Limits", "get_limits", "set_limits"]


@dataclass(frozen=True)
class Limits:
    """Upper bounds applied while reading.

    Attributes
    ----------
    max_document_bytes
        Size of one JSON document (``.zmetadata``, ``.zarray``, ``.zattrs``, ...).
    max_depth
        Nesting depth of JSON values and of groups below a signal.
    max_chunk_bytes
        Decoded size of one chunk (numcodecs cannot handle more than 2 GiB anyway).
    max_metadata_array_bytes
        Declared size of an array decoded whole while a store is opened (metadata and
        original_metadata arrays, axis vectors, learning results, models, ragged shape
        tables); the signal's data is only read when asked for.
    max_axis_length
        Length of one axis, whose coordinate values are computed in memory.
    max_ndim
        Dimensions of one array.
    """

    max_document_bytes: int = 256 * 2**20
    max_depth: int = 64
    max_chunk_bytes: int = 2**31 - 1
    max_metadata_array_bytes: int = 2**30
    max_axis_length: int = 2**27
    max_ndim: int = 32


_lock = threading.Lock()
_current = Limits()


def get_limits() -> Limits:
    """The limits in force."""
    return _current


class _LimitsContext:
    """Returned by :func:`set_limits`: leaving its ``with`` block restores the limits."""

    def __init__(self, previous: Limits) -> None:
        self._previous = previous

    def __enter__(self) -> Limits:
        return _current

    def __exit__(self, *exc: object) -> None:
        global _current
        with _lock:
            _current = self._previous


def set_limits(**changes: int) -> _LimitsContext:
    """Change the limits, for the process or for a ``with`` block.

    Parameters
    ----------
    **changes
        New values for fields of :class:`Limits` (positive integers).

    Returns
    -------
    A context manager: leaving its ``with`` block restores the previous limits.

    Raises
    ------
    TypeError
        An unknown limit name.
    ValueError
        A value that is not a positive integer.

    Examples
    --------
    >>> import intake_zspy
    >>> with intake_zspy.set_limits(max_document_bytes=4 * 2**30):
    ...     pass  # open a store with a 3 GB .zmetadata
    """
    global _current
    known = {f.name for f in dataclasses.fields(Limits)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(f"unknown limits {unknown}; known: {sorted(known)}")
    for name, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"limit {name} must be a positive integer, not {value!r}")
    with _lock:
        previous = _current
        _current = dataclasses.replace(previous, **changes)
    return _LimitsContext(previous)
