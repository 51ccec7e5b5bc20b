"""The metadata documents of a zarr v2 hierarchy, loaded in as few round trips as possible.

A :class:`Hierarchy` holds every ``.zgroup``, ``.zattrs`` and ``.zarray`` document of a
store, keyed like the store. It comes from one listing of the store and either one
concurrent fetch of every document, or consolidated metadata (``.zmetadata``) checked
against that listing. Either way the number of round trips does not grow with the
number of groups.

Consolidated metadata is a copy, and copies go stale: a tool edits ``data/.zarray`` and
leaves ``.zmetadata`` as it was. A document from ``.zmetadata`` is therefore only used
when the storage itself vouches for it: the listing carries a content hash of the
per-node document (an S3 ETag, a zip member's CRC-32) equal to the hash of the copy as
zarr writes it. Every other document is fetched from its own key, and when it disagrees
with ``.zmetadata`` the store's document wins, with a
:class:`~intake_zspy.errors.StaleMetadataWarning`. Modification times play no part: they
say nothing about content, and uploads reorder them.

Writing, :class:`ItemEncoder` is the mirror of :class:`Hierarchy`: it collects the
documents and encoded chunks of groups and arrays, and their ``.zmetadata``. The JSON of
the documents, both ways, is :mod:`~intake_zspy.format.documents`.
"""

from __future__ import annotations

import math
import posixpath
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numcodecs
import numpy as np
from numcodecs.abc import Codec

from intake_zspy.errors import (
    LimitExceededError,
    StaleMetadataWarning,
    ZspyError,
    ZspyFormatError,
)
from intake_zspy.format import names
from intake_zspy.format.arrays import (
    DEFAULT_COMPRESSOR,
    ArrayEncoder,
    ArrayMeta,
    Box,
    V2Array,
    fill_boxes,
)
from intake_zspy.format.documents import (
    consolidated_docs,
    consolidated_document,
    dumps,
    json_safe,
    parse_json,
    vouched,
)
from intake_zspy.format.limits import get_limits
from intake_zspy.format.ragged import flatten_ragged

if TYPE_CHECKING:
    from intake_zspy.storage import KeyInfo, KeyValueStore

__all__ = [
    "Hierarchy",
    "ItemEncoder",
    "check_opening_reads",
    "consolidated_document",
    "dumps",
    "load_hierarchy",
    "parse_json",
]


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


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

    #: The root ``file_format`` attribute the container's files carry.
    file_format: ClassVar[str] = names.FILE_FORMAT
    #: What the container is called in messages.
    container_name: ClassVar[str] = "zspy store"

    def __init__(
        self,
        store: KeyValueStore,
        docs: dict[str, dict[str, Any]],
        unverified: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.docs = docs
        # .zarray documents taken from .zmetadata alone, fetched before an array is read
        self._unverified = set(unverified)
        limit = get_limits().max_depth
        for key in docs:
            if key.count("/") > limit:
                raise LimitExceededError(
                    f"{store.url}: {key!r} lies deeper than the limit of {limit} groups"
                )

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

    def _unverified_keys(self, paths: Iterable[str]) -> list[str]:
        return [k for k in (_join(p, names.ZARRAY) for p in paths) if k in self._unverified]

    def _take(self, keys: Sequence[str], fresh: Mapping[str, dict[str, Any]]) -> set[str]:
        """Put fetched ``.zarray`` documents in place; the array paths that changed."""
        self._unverified.difference_update(keys)
        gone = [k for k in keys if k not in fresh]
        changed = {k for k, v in fresh.items() if self.docs.get(k) != v} | set(gone)
        _merge(self.store.url, self.docs, fresh, gone)
        if gone:
            self.__dict__.pop("_children", None)
        return {posixpath.dirname(k) for k in changed}

    def verify(self, paths: Iterable[str]) -> None:
        """Fetch the ``.zarray`` of arrays known only from ``.zmetadata`` (one batch).

        Where a fetched document disagrees with ``.zmetadata``, it replaces it, with a
        :class:`~intake_zspy.errors.StaleMetadataWarning`.
        """
        keys = self._unverified_keys(paths)
        if keys:
            self._take(keys, _fetch_docs(self.store, keys))

    def array(self, path: str) -> V2Array:
        """A lazy handle on the array at ``path``, from its verified ``.zarray``."""
        self.verify([path])
        return self._handle(path)

    def _handle(self, path: str) -> V2Array:
        key = _join(path, names.ZARRAY)
        if key not in self.docs:
            raise ZspyFormatError(f"{self.store.url}: no array at {path!r}")
        where = f"{self.store.url}: array {path!r}"
        return V2Array(self.store, path, ArrayMeta.from_json(self.docs[key], where))

    def read_arrays(
        self, paths: Iterable[str], verify: Iterable[str] = ()
    ) -> dict[str, np.ndarray]:
        """Read several whole arrays with one batch of concurrent requests.

        ``.zarray`` documents still to be checked (these arrays' and those of ``verify``)
        are fetched in the same round trip, while the chunks are read as ``.zmetadata``
        describes them; the few arrays whose document turns out different are read again.
        """
        paths = list(paths)
        keys = self._unverified_keys([*paths, *verify])
        if not keys:
            return self._read_whole(paths)
        out: dict[str, np.ndarray] | None = None
        with ThreadPoolExecutor(1) as pool:
            fetched = pool.submit(_fetch_docs, self.store, keys)
            try:
                out = self._read_whole(paths)
            except ZspyError:
                out = None  # perhaps a stale document: decided once the store's are in
            changed = self._take(keys, fetched.result())
        if out is None:
            return self._read_whole(paths)
        redo = [p for p in paths if p in changed]
        return {**out, **self._read_whole(redo)} if redo else out

    def _read_whole(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        handles = [self._handle(p) for p in paths]
        check_opening_reads(handles)
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


def check_opening_reads(arrays: Iterable[V2Array]) -> None:
    """Refuse metadata arrays larger than the limit before any of them is read.

    Raises
    ------
    LimitExceededError
        An array declares more bytes than ``max_metadata_array_bytes``.
    """
    limit = get_limits().max_metadata_array_bytes
    for a in arrays:
        nbytes = math.prod(a.shape) * a.dtype.itemsize
        if nbytes > limit:
            raise LimitExceededError(
                f"{a.where} declares {nbytes} bytes, more than the limit of {limit} for "
                "an array read while opening (intake_zspy.set_limits("
                "max_metadata_array_bytes=...))"
            )


def load_hierarchy(store: KeyValueStore, consolidated: bool | None = None) -> Hierarchy:
    """Load the metadata documents of ``store``.

    Parameters
    ----------
    store
        The store to read.
    consolidated
        ``None`` (default): list the store, and take from ``.zmetadata`` the documents
        whose listed content hash matches; fetch the others (all of them where the
        storage lists no hashes, as on a local disk). ``True``: trust ``.zmetadata``
        for groups and attributes without listing the store (fewest requests); the
        ``.zarray`` of every array read is still fetched and checked. ``False``: ignore
        ``.zmetadata``.

    Raises
    ------
    ZspyFormatError
        When ``consolidated=True`` and there is no ``.zmetadata``, or a document is not
        valid JSON.
    LimitExceededError
        A document is too large or too deeply nested.
    UnsafePathError
        A key would address something outside the store.
    """
    if consolidated:
        raw = store.get(names.ZMETADATA)
        if raw is None:
            raise ZspyFormatError(
                f"{store.url}: consolidated=True but the store has no {names.ZMETADATA}; "
                "pass consolidated=None to read the documents one by one"
            )
        docs = consolidated_docs(raw, store.url)
        return Hierarchy(store, docs, unverified=[k for k in docs if _is_zarray(k)])
    listing = store.list()
    listed = [k for k in listing if posixpath.basename(k) in names.METADATA_DOCS]
    if consolidated is None and names.ZMETADATA in listing:
        raw = store.get(names.ZMETADATA)
        if raw is not None:
            docs = consolidated_docs(raw, store.url)
            _reconcile(store, docs, listed, listing)
            return Hierarchy(store, docs)
    return Hierarchy(store, _fetch_docs(store, listed))


def _is_zarray(key: str) -> bool:
    return posixpath.basename(key) == names.ZARRAY


def _fetch_docs(store: KeyValueStore, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    raws = store.get_many(keys)
    return {k: parse_json(v, store.url, k) for k, v in raws.items() if v is not None}


def _reconcile(
    store: KeyValueStore,
    docs: dict[str, dict[str, Any]],
    listed: Sequence[str],
    listing: Mapping[str, KeyInfo],
) -> None:
    """Make consolidated ``docs`` agree with the store's own documents."""
    suspects = [k for k in listed if not vouched(docs.get(k), listing[k])]
    gone = sorted(set(docs) - set(listed))
    _merge(store.url, docs, _fetch_docs(store, suspects), gone)


def _merge(
    url: str,
    docs: dict[str, dict[str, Any]],
    fresh: Mapping[str, dict[str, Any]],
    gone: Sequence[str],
) -> None:
    """Put the store's own documents in place of ``.zmetadata``'s; warn where they differ."""
    changed = sorted(k for k, v in fresh.items() if docs.get(k) != v)
    for key in gone:
        docs.pop(key, None)
    docs.update(fresh)
    differ = changed + sorted(gone)
    if differ:
        more = len(differ) - 5
        warnings.warn(
            f"{url}: {names.ZMETADATA} is stale ({', '.join(differ[:5])}"
            f"{f' and {more} more' if more > 0 else ''} differ from the store's own "
            "documents); using the store's own documents",
            StaleMetadataWarning,
            stacklevel=5,
        )


# -- writing ----------------------------------------------------------------------------


class ItemEncoder:
    """Collects the items (``{key: bytes}``) of groups, arrays and dictionaries.

    Parameters
    ----------
    compressor
        Compressor for every array written through this encoder.
    """

    def __init__(self, compressor: Codec | None = DEFAULT_COMPRESSOR) -> None:
        self.compressor = compressor
        self.items: dict[str, bytes] = {}
        self.docs: dict[str, dict[str, Any]] = {}

    def doc(self, key: str, doc: dict[str, Any]) -> None:
        """A metadata document (``.zgroup``, ``.zattrs``, ``.zarray``)."""
        self.docs[key] = doc
        self.items[key] = dumps(doc)

    def group(self, path: str, attrs: Mapping[str, Any] | None = None) -> None:
        """A group with attributes."""
        prefix = f"{path}/" if path else ""
        self.doc(f"{prefix}{names.ZGROUP}", {"zarr_format": 2})
        if attrs:
            self.doc(f"{prefix}{names.ZATTRS}", json_safe(dict(attrs), path))

    def parents(self, parent: str, rel: str) -> None:
        """The groups a key holding ``/`` implies below ``parent`` (no attributes)."""
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            path = "/".join(filter(None, [parent, *parts[:i]]))
            if f"{path}/{names.ZGROUP}" not in self.docs:
                self.doc(f"{path}/{names.ZGROUP}", {"zarr_format": 2})

    def array(self, path: str, data: np.ndarray, chunks: tuple[int, ...] | None = None) -> None:
        """A whole in-memory array (metadata arrays, axis vectors, small data)."""
        data = np.asarray(data)
        object_codec = None
        if data.dtype.kind == "U":
            data = np.char.encode(data, "utf-8")
        if data.dtype.kind == "O":
            data, object_codec, shapes = flatten_ragged(data, path)
            if shapes is not None:
                parent, name = path.rsplit("/", 1) if "/" in path else ("", path)
                shapes_path = (
                    f"{parent}/{names.RAGGED_SHAPES}{name}"
                    if parent
                    else f"{names.RAGGED_SHAPES}{name}"
                )
                self._object_array(shapes_path, shapes, numcodecs.VLenArray("<i8"), chunks)
            self._object_array(path, data, object_codec, chunks)
            return
        encoder = ArrayEncoder(data.shape, data.dtype, chunks or data.shape, self.compressor)
        self._write(path, encoder, data)

    def _object_array(
        self, path: str, data: np.ndarray, codec: Codec, chunks: tuple[int, ...] | None
    ) -> None:
        encoder = ArrayEncoder(data.shape, data.dtype, chunks or data.shape, self.compressor, codec)
        self._write(path, encoder, data)

    def _write(self, path: str, encoder: ArrayEncoder, data: np.ndarray) -> None:
        self.doc(f"{path}/{names.ZARRAY}", encoder.zarray())
        for index in encoder.grid():
            self.items[f"{path}/{encoder.key(index)}"] = encoder.encode_chunk(
                data[encoder.region(index)]
            )

    def consolidated(self) -> bytes:
        """The ``.zmetadata`` document of everything encoded so far."""
        return consolidated_document(self.docs)
