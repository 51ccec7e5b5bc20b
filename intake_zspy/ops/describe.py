"""Describe a store: its signals with dims, chunking, compressor and sizes, as a dict.

:func:`describe` is what ``intake-zspy info`` prints. It reads the metadata documents
and one listing of the store, no array data.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intake_zspy.format import names
from intake_zspy.ops.summary import summarize_signal

if TYPE_CHECKING:
    from intake_zspy.format.axes import Axis
    from intake_zspy.format.decode import ZspyFile
    from intake_zspy.format.model import Signal
    from intake_zspy.storage import KeyInfo, KeyValueStore

__all__ = ["describe", "describe_file", "store_description"]


def store_description(store: KeyValueStore) -> str:
    """The store's kind, with the protocol of a key prefix (``"s3 prefix"``)."""
    fs = getattr(store, "fs", None)
    if store.kind == "prefix" and fs is not None:
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        return f"{protocol} prefix"
    return store.kind


def _stored(listing: Mapping[str, KeyInfo], path: str) -> tuple[int, int | None]:
    """Chunk keys of the array at ``path`` and their total size (``None``: unknown)."""
    prefix = f"{path}/"
    count, total = 0, 0
    known = True
    for key, info in listing.items():
        if key.startswith(prefix) and posixpath.basename(key) not in names.METADATA_DOCS:
            count += 1
            known = known and info.size is not None
            total += info.size or 0
    return count, total if known else None


def _axis(axis: Axis, dim: str) -> dict[str, Any]:
    values = axis.values
    return {
        "dim": dim,
        "name": axis.name,
        "size": axis.size,
        "units": axis.units,
        "navigate": axis.navigate,
        "axis_type": axis.kind,
        "is_binned": axis.is_binned,
        "scale": axis.scale,
        "offset": axis.offset,
        "first": values[0].item() if values.size else None,
        "last": values[-1].item() if values.size else None,
    }


def _hyperspy_dims(axes: list[dict[str, Any]]) -> str:
    nav = [str(a["size"]) for a in reversed(axes) if a["navigate"] is not False]
    sig = [str(a["size"]) for a in reversed(axes) if a["navigate"] is False]
    return f"({', '.join(nav)}|{', '.join(sig)})"


def _signal(file: ZspyFile, signal: Signal, listing: Mapping[str, KeyInfo]) -> dict[str, Any]:
    from intake_zspy.format.h5 import H5Array
    from intake_zspy.format.model import RaggedArray

    summary = summarize_signal(file.hierarchy, signal.name)
    data = signal.data
    flat = data.flat if isinstance(data, RaggedArray) else data
    meta = flat.meta
    dims = [a["dim"] for a in summary["axes"]]
    axes = [_axis(a, d) for a, d in zip(signal.axes, dims, strict=True)]
    stored_chunks, stored_bytes = _stored(listing, flat.path)
    compressor = meta.compressor
    if isinstance(flat, H5Array):  # HDF5: the file's own chunk index and filters
        stored_chunks, stored_bytes, compressor = flat.stored()
    if isinstance(data, RaggedArray) and isinstance(data.shapes, H5Array):
        stored_bytes = (stored_bytes or 0) + data.shapes.stored()[1]
    elif isinstance(data, RaggedArray):
        _, shape_bytes = _stored(listing, data.shapes.path)
        stored_bytes = None if shape_bytes is None else (stored_bytes or 0) + shape_bytes
    itemsize = None if meta.is_object else meta.dtype.itemsize
    return {
        "name": signal.name,
        "path": signal.path,
        "title": summary["title"],
        "signal_type": summary["signal_type"],
        "package": signal.package,
        "package_version": signal.package_version,
        "ragged": isinstance(data, RaggedArray),
        "shape": summary["shape"],
        "dtype": summary["dtype"],
        "dims": axes,
        "navigation_dims": [a["dim"] for a in axes if a["navigate"] is not False],
        "signal_dims": [a["dim"] for a in axes if a["navigate"] is False],
        "hyperspy": _hyperspy_dims(axes),
        "chunks": list(meta.chunks),
        "chunk_grid": list(meta.grid),
        "chunk_count": math.prod(meta.grid),
        "stored_chunks": stored_chunks,
        "chunk_bytes": None if itemsize is None else math.prod(meta.chunks) * itemsize,
        "compressor": compressor,
        "filters": list(meta.filters),
        "fill_value": meta.fill_value,
        "nbytes": None if itemsize is None else math.prod(meta.shape) * itemsize,
        "stored_bytes": stored_bytes,
        "models": sorted(signal.models),
        "learning_results": bool(signal.attributes.get("learning_results")),
    }


def describe_file(
    file: ZspyFile,
    *,
    signal: str | None = None,
    metadata: bool = False,
    original_metadata: bool = False,
) -> dict[str, Any]:
    """:func:`describe` for an opened store."""
    from intake_zspy.storage import HDF5File

    listing = file.store.list()
    sizes = [i.size for i in listing.values()]
    if isinstance(file.store, HDF5File):  # one file: its size
        sizes = [file.store.fs.size(file.store.path)]
    wanted = [file.resolve_name(signal)] if signal is not None else file.signal_names()
    signals = []
    for name in wanted:
        sig = file.signal(name)
        doc = _signal(file, sig, listing)
        if metadata:
            doc["metadata"] = sig.metadata
        if original_metadata:
            doc["original_metadata"] = sig.original_metadata
        signals.append(doc)
    return {
        "url": file.url,
        "store_kind": store_description(file.store),
        "file_format": file.hierarchy.file_format,
        "format_version": file.format_version,
        "consolidated": names.ZMETADATA in listing,
        "keys": len(listing),
        "stored_bytes": None if None in sizes else sum(s or 0 for s in sizes),
        "signals": signals,
    }


def describe(
    url: Any,
    *,
    signal: str | None = None,
    metadata: bool = False,
    original_metadata: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe a store and its signals.

    Parameters
    ----------
    url
        The store (anything :func:`intake_zspy.open_dataset` takes).
    signal
        Only this signal (``Experiments/`` group name or title).
    metadata, original_metadata
        Also include each signal's ``metadata`` / ``original_metadata`` tree.
    storage_options
        Passed to fsspec.

    Returns
    -------
    dict
        ``url``, ``store_kind``, ``format_version``, ``consolidated``, ``keys``,
        ``stored_bytes`` and ``signals``: per signal its title, signal type, shape,
        dtype, dims (with units, navigation flag, axis type, scale, offset, first and
        last value), navigation and signal dims, HyperSpy's ``(nav|sig)`` notation,
        chunks, chunk grid, stored chunk count and bytes, compressor, filters, fill
        value, uncompressed bytes, models and whether it holds decomposition results.

    Raises
    ------
    StoreNotFoundError, ZspyFormatError, SignalNotFoundError
        As :func:`intake_zspy.open_dataset`.
    """
    from intake_zspy.format.decode import open_url

    file = open_url(url, storage_options)
    with file.store:
        return describe_file(
            file, signal=signal, metadata=metadata, original_metadata=original_metadata
        )
