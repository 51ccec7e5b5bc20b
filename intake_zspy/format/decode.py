"""A zspy store as plain Python objects: :class:`ZspyFile` and its :class:`Signal` s.

Nothing here imports xarray; arrays stay lazy (:class:`~intake_zspy.format.arrays.V2Array`)
while metadata, axes and models are decoded in full.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intake_zspy.errors import (
    IncompleteStoreError,
    SignalNotFoundError,
    ZspyFormatError,
    ZspyVersionWarning,
)
from intake_zspy.format import names
from intake_zspy.format.axes import axis_from_dict
from intake_zspy.format.dicts import Decoder, axes_dicts, decode_group
from intake_zspy.format.hierarchy import Hierarchy, load_hierarchy
from intake_zspy.format.model import RaggedArray, Signal

if TYPE_CHECKING:
    from intake_zspy.format.arrays import V2Array
    from intake_zspy.storage import KeyValueStore

__all__ = ["ZspyFile", "open_file", "open_url"]

#: The companion of ragged data holding each element's shape (current and legacy names).
_SHAPES_NAMES = (f"{names.RAGGED_SHAPES}{names.DATA}", names.LEGACY_RAGGED_SHAPES)


def _version_tuple(value: Any) -> tuple[int, ...]:
    if isinstance(value, float):
        value = f"{value:.2f}".rstrip("0")
    parts = re.findall(r"\d+", str(value))
    return tuple(int(p) for p in parts) or (0,)


class ZspyFile:
    """An opened zspy store: its signals by name, decoded on demand.

    Use :func:`open_file` to create one.
    """

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        self.store = hierarchy.store
        self.url = hierarchy.store.url
        self._validate()

    def _validate(self) -> None:
        h, url = self.hierarchy, self.url
        if not h.is_group(""):
            listing = self.store.list()
            if not listing:
                raise ZspyFormatError(f"{url}: not a zspy store: it is empty")
            if "zarr.json" in listing:
                raise ZspyFormatError(
                    f"{url}: not a zspy store: a zarr format 3 hierarchy (zspy is zarr format 2)"
                )
            raise ZspyFormatError(
                f"{url}: not a zspy store: no {names.ZGROUP} at its root (not a zarr v2 group)"
            )
        attrs = h.attrs("")
        file_format = attrs.get(names.ATTR_FILE_FORMAT)
        if file_format is None:
            # an interrupted writer leaves data chunks (Experiments/<name>/data/...) behind
            prefix = f"{names.EXPERIMENTS}/"
            started = any(k.startswith(prefix) and k.count("/") >= 2 for k in self.store.list())
            if self.signal_names() or started:
                raise IncompleteStoreError(
                    f"{url}: incomplete store: it holds {names.EXPERIMENTS}/ but no root "
                    f"attributes ({names.ATTR_FILE_FORMAT}), which a writer stores last; "
                    "was the write interrupted?"
                )
            raise ZspyFormatError(
                f"{url}: not a zspy store: the root group has no "
                f"{names.ATTR_FILE_FORMAT}={names.FILE_FORMAT!r} attribute (a plain zarr group?)"
            )
        if str(file_format).lower() != h.file_format.lower():
            raise ZspyFormatError(
                f"{url}: not a {h.container_name}: {names.ATTR_FILE_FORMAT} is {file_format!r}"
            )
        version = attrs.get(names.ATTR_FORMAT_VERSION, names.FORMAT_VERSION)
        if _version_tuple(version) > _version_tuple(names.FORMAT_VERSION):
            warnings.warn(
                f"{url}: written with {h.file_format} format version {version}, newer than the "
                f"{names.FORMAT_VERSION} this version of intake-zspy knows; reading anyway",
                ZspyVersionWarning,
                stacklevel=4,
            )
        if not self.signal_names():
            raise ZspyFormatError(
                f"{url}: no signal: {names.EXPERIMENTS}/ holds no group with a {names.DATA!r} array"
            )

    @property
    def format_version(self) -> str:
        return str(self.hierarchy.attrs("").get(names.ATTR_FORMAT_VERSION, ""))

    def signal_names(self) -> list[str]:
        """Names of the signals (``Experiments/<name>`` groups with a ``data`` array)."""
        h = self.hierarchy
        return [
            name
            for name in h.groups(names.EXPERIMENTS)
            if h.is_array(f"{names.EXPERIMENTS}/{name}/{names.DATA}")
        ]

    def resolve_name(self, name: str | None) -> str:
        """The signal ``name`` designates (the first one when ``None``)."""
        available = self.signal_names()
        if name is None:
            return available[0]
        if name in available:
            return name
        if name.replace("/", "-") in available:  # a title given instead of a group name
            return name.replace("/", "-")
        raise SignalNotFoundError(
            f"{self.url}: no signal named {name!r}; available: {', '.join(available)}"
        )

    def signal(self, name: str | None = None) -> Signal:
        """Decode signal ``name`` (default: the first in name order).

        Raises
        ------
        SignalNotFoundError
            There is no such signal; the message lists the available ones.
        """
        name = self.resolve_name(name)
        h = self.hierarchy
        path = f"{names.EXPERIMENTS}/{name}"
        lazy = [f"{path}/{n}" for n in (names.DATA, *_SHAPES_NAMES)]
        # one round trip: the metadata arrays, and the documents of the data arrays
        decoder = Decoder(h, path, skip=lazy)
        flat = h.array(f"{path}/{names.DATA}")
        data: V2Array | RaggedArray = flat
        for shapes_name in _SHAPES_NAMES:
            if flat.meta.is_object and h.is_array(f"{path}/{shapes_name}"):
                shapes = h.array(f"{path}/{shapes_name}")
                if shapes.shape != flat.shape or shapes.chunks != flat.chunks:
                    raise ZspyFormatError(
                        f"{self.url}: {shapes.path!r} (shape {shapes.shape}, chunks "
                        f"{shapes.chunks}) does not match {flat.path!r} (shape {flat.shape}, "
                        f"chunks {flat.chunks})"
                    )
                data = RaggedArray(flat, shapes)
                break
        where = f"{self.url}: {path}"
        axes = [
            axis_from_dict(d, size, f"{where}/{names.AXIS_PREFIX}{i}")
            for i, (d, size) in enumerate(
                zip(axes_dicts(h, path, len(flat.shape), decoder), flat.shape, strict=True)
            )
        ]
        return Signal(
            name=name,
            path=path,
            data=data,
            axes=axes,
            models=self.models(f"/{path}"),
            **decoder.signal_parts(path),
        )

    def models(self, signal_path: str | None = None) -> dict[str, Any]:
        """Stored models, by name; only those of ``signal_path`` when given."""
        h = self.hierarchy
        out: dict[str, Any] = {}
        for name in h.groups(names.MODELS):
            path = f"{names.MODELS}/{name}"
            owner = h.attrs(path).get(names.MODEL_SIGNAL_ATTR)
            if signal_path is not None and owner != signal_path:
                continue
            model = decode_group(h, path)
            model.pop(names.MODEL_SIGNAL_ATTR, None)
            out[name] = model
        return out


def open_file(store: KeyValueStore, *, consolidated: bool | None = None) -> ZspyFile:
    """Load the metadata of a zspy store (or a HyperSpy ``.hspy`` file: an
    :class:`~intake_zspy.storage.HDF5File`) and check that it is one.

    Raises
    ------
    ImportError
        An HDF5 file, and h5py is missing (install ``intake-zspy[hspy]``).
    UnsupportedVersionError
        A ``.hspy`` file older than the versions read (the message says which).
    ZspyFormatError
        The store is not a zspy store; the message says what is missing.
    IncompleteStoreError
        The store was left incomplete by an interrupted writer.
    """
    from intake_zspy.storage import HDF5File

    if isinstance(store, HDF5File):
        from intake_zspy.format.h5 import load_h5_hierarchy

        return ZspyFile(load_h5_hierarchy(store))
    return ZspyFile(load_hierarchy(store, consolidated))


def open_url(
    urlpath: Any,
    storage_options: Mapping[str, Any] | None = None,
    *,
    consolidated: bool | None = None,
) -> ZspyFile:
    """Open the store at ``urlpath`` (see :func:`~intake_zspy.storage.open_store`) and
    load its metadata (:func:`open_file`); an opened :class:`ZspyFile` is returned as it
    is (its metadata is not read again).

    On remote storage ``.zmetadata`` is fetched together with the store's listing, in
    one round trip. A store opened here is closed again if its metadata cannot be
    loaded (a store passed in stays open).
    """
    from intake_zspy.storage import open_store

    if isinstance(urlpath, ZspyFile):
        if storage_options:
            raise TypeError("storage_options only apply to URLs and paths, not to an opened file")
        return urlpath

    prefetch = () if consolidated is False else (names.ZMETADATA,)
    store = open_store(urlpath, storage_options, prefetch=prefetch)
    try:
        return open_file(store, consolidated=consolidated)
    except BaseException:
        if store is not urlpath:
            store.close()
        raise
