"""Metadata documents as JSON, in both directions.

Reading, :func:`parse_json` bounds a document in size and nesting depth before it is
used, and :func:`consolidated_docs` unpacks a ``.zmetadata`` into the documents it
copies, keyed like the store (every key checked). :func:`serializations` gives the bytes
zarr writers store for a document, so that a listing's content hash can vouch for it
(:func:`vouched`).

Writing, :func:`dumps` serialises a document as zarr 2 does, :func:`consolidated_document`
builds a ``.zmetadata``, and :func:`json_safe` (with :func:`text_key` and
:func:`bytes_to_text`) turns attribute values into plain JSON types.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import zlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.errors import LimitExceededError, UnsafePathError, ZspyFormatError
from intake_zspy.format import names
from intake_zspy.format.limits import get_limits

if TYPE_CHECKING:
    from intake_zspy.storage import KeyInfo

__all__ = [
    "bytes_to_text",
    "consolidated_docs",
    "consolidated_document",
    "dumps",
    "json_safe",
    "parse_json",
    "serializations",
    "text_key",
    "vouched",
]


def parse_json(raw: bytes, url: str, key: str) -> dict[str, Any]:
    """A metadata document, bounded in size and depth.

    Raises
    ------
    ZspyFormatError
        Not valid UTF-8 JSON, or not a JSON object.
    LimitExceededError
        Larger than ``max_document_bytes`` or nested deeper than ``max_depth``.
    """
    limits = get_limits()
    if len(raw) > limits.max_document_bytes:
        raise LimitExceededError(
            f"{url}: {key!r} is {len(raw)} bytes, more than the limit of "
            f"{limits.max_document_bytes} (intake_zspy.set_limits(max_document_bytes=...))"
        )
    try:
        doc = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:
        raise LimitExceededError(f"{url}: {key!r} is nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ZspyFormatError(f"{url}: {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ZspyFormatError(f"{url}: {key!r} is not a JSON object")
    if _depth(doc) > limits.max_depth:
        raise LimitExceededError(
            f"{url}: {key!r} is nested deeper than the limit of {limits.max_depth} levels"
        )
    return doc


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value (iterative: no recursion limit to hit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def consolidated_docs(raw: bytes, url: str) -> dict[str, dict[str, Any]]:
    """The documents inside a ``.zmetadata``, keyed like the store.

    Raises
    ------
    ZspyFormatError
        Not a consolidated metadata document, or an entry that is not a metadata
        document of a safe key.
    """
    from intake_zspy.storage import check_key

    doc = parse_json(raw, url, names.ZMETADATA)
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
        raise ZspyFormatError(f"{url}: {names.ZMETADATA} has no valid 'metadata' mapping")
    docs = {}
    for key, value in meta.items():
        key = key.lstrip("/")
        try:
            check_key(key, url)
        except UnsafePathError as exc:
            raise UnsafePathError(f"{url}: {names.ZMETADATA}: {exc}") from None
        if posixpath.basename(key) not in names.METADATA_DOCS:
            raise ZspyFormatError(
                f"{url}: {names.ZMETADATA} holds {key!r}, which is not a zarr v2 metadata document"
            )
        docs[key] = value
    return docs


def serializations(doc: Mapping[str, Any]) -> Iterator[bytes]:
    """The bytes zarr writers store for ``doc``: zarr 2 (and HyperSpy, and intake-zspy)
    sort keys with an indent of 4; zarr 3 keeps the order with an indent of 2. Made one
    at a time: the first is usually the one (indented JSON is encoded in Python, slowly)."""
    yield dumps(doc)
    yield json.dumps(doc, indent=2, allow_nan=True).encode()


def vouched(doc: Mapping[str, Any] | None, info: KeyInfo) -> bool:
    """Whether the listing's content hash proves the stored document equals ``doc``.

    ``info.digest`` (``"md5:<hex>"`` or ``"crc32:<hex>"``) is compared with the hash of
    each of :func:`serializations` of ``doc`` whose length matches ``info.size``.
    """
    if doc is None or info.digest is None:
        return False
    algorithm, _, expected = info.digest.partition(":")
    for candidate in serializations(doc):
        if info.size is not None and len(candidate) != info.size:
            continue
        if (
            algorithm == "md5"
            and hashlib.md5(candidate, usedforsecurity=False).hexdigest() == expected
        ):
            return True
        if algorithm == "crc32" and f"{zlib.crc32(candidate):08x}" == expected:
            return True
    return False


# -- writing ----------------------------------------------------------------------------


def dumps(doc: Mapping[str, Any]) -> bytes:
    """Serialise a metadata document the way zarr 2 does (sorted keys, indent 4)."""
    return json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=True, allow_nan=True).encode()


def consolidated_document(docs: Mapping[str, Any]) -> bytes:
    """The ``.zmetadata`` of ``docs`` (the mirror of :func:`consolidated_docs`)."""
    return dumps({"metadata": docs, "zarr_consolidated_format": 1})


def json_safe(value: Any, where: str = "") -> Any:
    """Plain JSON types for an attribute value (numpy scalars and arrays converted)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = bytes_to_text(value, where)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), where)
    if isinstance(value, list | tuple):
        return [json_safe(v, where) for v in value]
    if isinstance(value, Mapping):
        return {text_key(k, where): json_safe(v, where) for k, v in value.items()}
    raise TypeError(f"{where}: cannot store a {type(value).__name__} as a JSON attribute")


def text_key(key: Any, where: str) -> str:
    """A dictionary key as text (any text is a valid attribute name)."""
    if isinstance(key, str):
        return key
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"{where}: dictionary key {key!r} ({type(key).__name__}) is not a string")


def bytes_to_text(value: bytes, where: str) -> str:
    if b"\x00" in value:
        raise ValueError(f"{where}: bytes containing NUL cannot be stored in zspy")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: bytes that are not UTF-8 cannot be stored in zspy") from exc
