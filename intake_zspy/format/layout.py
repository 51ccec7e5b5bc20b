"""The zspy layout for writing: which groups a store holds, in which order they land, and
how its data is chunked by default.

Used by :func:`intake_zspy.to_zspy` and :func:`intake_zspy.copy` alike.

A reader must never take a half-written store for a whole one. Writers therefore put
the groups down to each signal first (:func:`first_keys`), then data chunks and the other
documents, and the root attributes (``file_format``) and ``.zmetadata`` last
(:data:`LAST`): until those land, the store reads as incomplete
(:class:`~intake_zspy.errors.IncompleteStoreError`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

from intake_zspy.format import names
from intake_zspy.format.dicts import encode_dictionary, encode_signal_parts, node_path

if TYPE_CHECKING:
    from intake_zspy.format.hierarchy import ItemEncoder
    from intake_zspy.format.model import SignalSpec

__all__ = [
    "LAST",
    "TARGET_CHUNK_BYTES",
    "default_chunks",
    "encode_models",
    "encode_root",
    "encode_signal",
    "first_keys",
    "group_name",
    "signal_path",
]

#: Keys written after every other one: the root attributes, then consolidated metadata.
LAST: Final = (names.ZATTRS, names.ZMETADATA)


def first_keys(signals: Iterable[str]) -> list[str]:
    """The group documents written before anything else: root, ``Experiments`` and each
    signal's group (``signals`` are ``Experiments/`` group names)."""
    keys = [names.ZGROUP, f"{names.EXPERIMENTS}/{names.ZGROUP}"]
    return keys + [f"{names.EXPERIMENTS}/{name}/{names.ZGROUP}" for name in signals]


# -- groups -------------------------------------------------------------------------------


def encode_root(enc: ItemEncoder) -> None:
    """The root group with the format attributes, and the ``Experiments`` group."""
    enc.group(
        "",
        {
            names.ATTR_FILE_FORMAT: names.FILE_FORMAT,
            names.ATTR_FORMAT_VERSION: names.FORMAT_VERSION,
        },
    )
    enc.group(names.EXPERIMENTS)


def group_name(title: str) -> str:
    """HyperSpy's ``Experiments/`` group name for a signal title."""
    return title.replace("/", "-") if title else names.UNNAMED


def signal_path(group: str) -> str:
    """``Experiments/<group>``, for a group name that is one safe path segment.

    Raises
    ------
    ValueError
        ``group`` is empty, ``.``, ``..`` or holds ``/`` or ``\\``.
    """
    if node_path(group, "signal") != group:
        raise ValueError(
            f"{group!r} cannot be an Experiments/ group name (one path segment, "
            "no '/', '\\', '.' or '..')"
        )
    return f"{names.EXPERIMENTS}/{group}"


def encode_signal(enc: ItemEncoder, spec: SignalSpec) -> str:
    """The groups of one signal (everything but its data); returns the data's path."""
    path = signal_path(spec.group)
    parts = {
        names.METADATA: spec.metadata,
        names.ORIGINAL_METADATA: spec.original_metadata,
        names.ATTRIBUTES: spec.attributes,
        names.ATTR_PACKAGE: spec.package,
        names.ATTR_PACKAGE_VERSION: spec.package_version,
        **spec.learning_results,
    }
    encode_signal_parts(enc, path, parts, spec.axes)
    return f"{path}/{names.DATA}"


def encode_models(enc: ItemEncoder, specs: Sequence[SignalSpec]) -> None:
    """The stored models of every signal, under ``Analysis/models``."""
    models = [(spec.group, name, model) for spec in specs for name, model in spec.models.items()]
    if not models:
        return
    enc.group(names.ANALYSIS)
    enc.group(names.MODELS)
    for group, name, model in models:
        owner = {names.MODEL_SIGNAL_ATTR: f"/{names.EXPERIMENTS}/{group}"}
        encode_dictionary(enc, f"{names.MODELS}/{name}", model, attrs=owner)


# -- chunks --------------------------------------------------------------------------------

#: Whole signals per data chunk, up to about this many bytes (HyperSpy aims at 100 MB;
#: smaller chunks read and write with more parallelism and smaller requests).
TARGET_CHUNK_BYTES = 32 * 2**20


def default_chunks(
    shape: Sequence[int], itemsize: int, navigate: Sequence[bool], budget: int = TARGET_CHUNK_BYTES
) -> tuple[int, ...]:
    """The one default chunking rule: whole signals per chunk, navigation dims tiled.

    Signal dims are never split. Starting from the whole array, the largest navigation
    chunk is halved (the last dim first among equals) until a chunk holds at most
    ``budget`` bytes, or every navigation chunk is 1: tiles stay about square, so
    regions of the navigation grid read few chunks.
    """
    chunks = [max(1, n) for n in shape]
    nav = [i for i, flag in enumerate(navigate) if flag]
    while nav and math.prod(chunks) * itemsize > budget:
        i = max(nav, key=lambda j: (chunks[j], j))
        if chunks[i] == 1:
            break
        chunks[i] = math.ceil(chunks[i] / 2)
    return tuple(chunks)
