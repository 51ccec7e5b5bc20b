"""The metadata documents of a zarr v2 hierarchy, loaded in as few round trips as possible.

A :class:`Hierarchy` holds every ``.zgroup``, ``.zattrs`` and ``.zarray`` document of a
store, keyed like the store. It comes from consolidated metadata (``.zmetadata``, one
request) checked against one listing of the store, or from that listing and one
concurrent fetch of every document. Either way the number of round trips does not grow
with the number of groups.
"""

from __future__ import annotations

import json
import posixpath
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from intake_zspy.errors import StaleMetadataWarning, ZspyFormatError
from intake_zspy.format import names
from intake_zspy.format.v2array import ArrayMeta, Box, V2Array, fill_boxes

if TYPE_CHECKING:
    from intake_zspy._store import KeyValueStore

__all__ = ["Hierarchy", "consolidated_docs", "load_hierarchy", "parse_json"]


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def parse_json(raw: bytes, url: str, key: str) -> dict[str, Any]:
    """A metadata document; :class:`ZspyFormatError` naming the store and key if invalid."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ZspyFormatError(f"{url}: {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ZspyFormatError(f"{url}: {key!r} is not a JSON object")
    return doc


class Hierarchy:
    """Every metadata document of a store, with navigation helpers.

    Parameters
    ----------
    store
        The store the documents come from (and where arrays are read).
    docs
        ``{"path/.zattrs": {...}, "path/data/.zarray": {...}, ...}``; the root group's
        documents have keys ``".zgroup"`` and ``".zattrs"``.
    """

    def __init__(self, store: KeyValueStore, docs: dict[str, dict[str, Any]]) -> None:
        self.store = store
        self.docs = docs

    @cached_property
    def _children(self) -> dict[str, dict[str, str]]:
        """``{group path: {child name: "group" | "array"}}``."""
        children: dict[str, dict[str, str]] = defaultdict(dict)
        for key in self.docs:
            node, doc = posixpath.split(key)
            if doc == names.ZATTRS or not node:
                continue
            parent, name = posixpath.split(node)
            children[parent][name] = "array" if doc == names.ZARRAY else "group"
        return children

    def is_group(self, path: str) -> bool:
        return _join(path, names.ZGROUP) in self.docs

    def is_array(self, path: str) -> bool:
        return _join(path, names.ZARRAY) in self.docs

    def attrs(self, path: str) -> dict[str, Any]:
        """The attributes of a group or array (empty when it has none)."""
        return self.docs.get(_join(path, names.ZATTRS), {})

    def groups(self, path: str) -> list[str]:
        """Names of the sub-groups of ``path``, sorted."""
        return sorted(n for n, kind in self._children.get(path, {}).items() if kind == "group")

    def arrays(self, path: str) -> list[str]:
        """Names of the arrays in group ``path``, sorted."""
        return sorted(n for n, kind in self._children.get(path, {}).items() if kind == "array")

    def array(self, path: str) -> V2Array:
        """A lazy handle on the array at ``path``."""
        key = _join(path, names.ZARRAY)
        if key not in self.docs:
            raise ZspyFormatError(f"{self.store.url}: no array at {path!r}")
        where = f"{self.store.url}: {key}"
        return V2Array(self.store, path, ArrayMeta.from_json(self.docs[key], where))

    def read_arrays(self, paths: Iterable[str]) -> dict[str, np.ndarray]:
        """Read several whole arrays with one batch of concurrent requests."""
        handles = [self.array(p) for p in paths]
        outs = [h.empty(h.shape) for h in handles]
        boxes: list[Box] = [
            (h, o, [0] * len(h.shape), None) for h, o in zip(handles, outs, strict=True)
        ]
        fill_boxes(self.store, boxes)
        return {h.path: o for h, o in zip(handles, outs, strict=True)}

    def walk_arrays(self, path: str) -> list[str]:
        """Paths of every array below group ``path`` (recursively)."""
        prefix = f"{path}/" if path else ""
        return [
            key[: -len(names.ZARRAY) - 1]
            for key in self.docs
            if key.endswith(f"/{names.ZARRAY}") and key.startswith(prefix)
        ]


def load_hierarchy(store: KeyValueStore, consolidated: bool | None = None) -> Hierarchy:
    """Load the metadata documents of ``store``.

    Parameters
    ----------
    store
        The store to read.
    consolidated
        ``None`` (default): use ``.zmetadata`` when present, after checking it against a
        listing of the store (documents newer than ``.zmetadata``, added or removed since
        are fetched and win, with a :class:`~intake_zspy.errors.StaleMetadataWarning`).
        ``True``: trust ``.zmetadata`` without listing (fewest requests); it must exist.
        ``False``: ignore ``.zmetadata``.

    Raises
    ------
    ZspyFormatError
        When ``consolidated=True`` and there is no ``.zmetadata``, or a document is not
        valid JSON.
    """
    if consolidated:
        raw = store.get(names.ZMETADATA)
        if raw is None:
            raise ZspyFormatError(
                f"{store.url}: consolidated=True but the store has no {names.ZMETADATA}; "
                "pass consolidated=None to read the documents one by one"
            )
        return Hierarchy(store, consolidated_docs(raw, store.url))
    listing = store.list()
    listed = [k for k in listing if posixpath.basename(k) in names.METADATA_DOCS]
    if consolidated is None and names.ZMETADATA in listing:
        raw = store.get(names.ZMETADATA)
        if raw is not None:
            docs = consolidated_docs(raw, store.url)
            _refresh(store, docs, listed, listing)
            return Hierarchy(store, docs)
    return Hierarchy(store, _fetch_docs(store, listed))


def consolidated_docs(raw: bytes, url: str) -> dict[str, dict[str, Any]]:
    """The documents inside a ``.zmetadata``, keyed like the store."""
    doc = parse_json(raw, url, names.ZMETADATA)
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
        raise ZspyFormatError(f"{url}: {names.ZMETADATA} has no valid 'metadata' mapping")
    return {k.lstrip("/"): v for k, v in meta.items()}


def _fetch_docs(store: KeyValueStore, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    raws = store.get_many(keys)
    return {k: parse_json(v, store.url, k) for k, v in raws.items() if v is not None}


def _refresh(
    store: KeyValueStore,
    docs: dict[str, dict[str, Any]],
    listed: Sequence[str],
    listing: dict[str, Any],
) -> None:
    """Make consolidated ``docs`` agree with the store, warning when they did not."""
    reference = listing[names.ZMETADATA].order
    suspects = [
        k
        for k in listed
        if k not in docs or (reference is not None and (listing[k].order or reference) > reference)
    ]
    fresh = _fetch_docs(store, suspects)
    changed = sorted(k for k, v in fresh.items() if docs.get(k) != v)
    gone = sorted(set(docs) - set(listed))
    for key in gone:
        del docs[key]
    docs.update(fresh)
    if changed or gone:
        shown = ", ".join((changed + gone)[:5])
        more = len(changed) + len(gone) - 5
        warnings.warn(
            f"{store.url}: {names.ZMETADATA} is stale ({shown}{f' and {more} more' if more > 0 else ''} "
            "changed since it was written); using the store's own documents",
            StaleMetadataWarning,
            stacklevel=4,
        )
