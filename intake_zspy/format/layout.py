"""The zspy layout for writing: which groups a store holds and in which order they land.

A reader must never take a half-written store for a whole one. Writers therefore put
the groups down to each signal first (:func:`first_keys`), then data chunks and the other
documents, and the root attributes (``file_format``) and ``.zmetadata`` last
(:data:`LAST`): until those land, the store reads as incomplete
(:class:`~intake_zspy.errors.IncompleteStoreError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from intake_zspy.format import names

__all__ = ["LAST", "first_keys"]

#: Keys written after every other one: the root attributes, then consolidated metadata.
LAST: Final = (names.ZATTRS, names.ZMETADATA)


def first_keys(signals: Iterable[str]) -> list[str]:
    """The group documents written before anything else: root, ``Experiments`` and each
    signal's group (``signals`` are ``Experiments/`` group names)."""
    keys = [names.ZGROUP, f"{names.EXPERIMENTS}/{names.ZGROUP}"]
    return keys + [f"{names.EXPERIMENTS}/{name}/{names.ZGROUP}" for name in signals]
