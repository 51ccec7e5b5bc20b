"""``intake-zspy info``: what a store holds, from its metadata and one listing."""

from __future__ import annotations

import argparse
import math
import posixpath
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intake_zspy.cli import _common as c
from intake_zspy.cli._info_text import describe_compressor, render_store

if TYPE_CHECKING:
    from intake_zspy.format.decode import Signal, ZspyFile
    from intake_zspy.storage import KeyInfo, KeyValueStore

__all__ = ["describe_compressor", "describe_signal", "describe_store", "register", "store_kind"]

_EPILOG = """\
examples:
  intake-zspy info run.zspy
  intake-zspy info run.zip --signal "EELS SI" --metadata
  intake-zspy info s3://lab/run.zspy --json --storage-options '{"anon": true}'
  FSSPEC_S3_ENDPOINT_URL=http://127.0.0.1:9000 intake-zspy info s3://lab/run.zspy

Shapes and dims are in array order; "hyperspy" gives HyperSpy's (navigation|signal)
notation, where each part lists its axes in reverse array order.
"""


def register(commands: Any) -> None:
    """Add the ``info`` command."""
    p = commands.add_parser(
        "info",
        help="show the signals of a store: shape, dtype, dims, chunks, sizes",
        description="Show the signals of a zspy store: title, signal type, shape and dtype, "
        "dims with units and ranges, navigation/signal split, chunking, compressor, stored "
        "and uncompressed sizes. Reads metadata and one listing, no array data.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="the store: a directory, a zip file or an fsspec URL")
    p.add_argument("--signal", help="only this signal (Experiments/ group name or title)")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.add_argument("--metadata", action="store_true", help="also print the metadata tree")
    p.add_argument("--original-metadata", action="store_true", help="also print original_metadata")
    c.add_storage_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``info``."""
    from intake_zspy.format.decode import open_file
    from intake_zspy.storage import open_store

    options = c.parse_storage_options(args.storage_options)
    with open_store(args.url, options) as store:
        file = open_file(store)
        doc = describe_store(
            file,
            signal=args.signal,
            metadata=args.metadata,
            original_metadata=args.original_metadata,
        )
    if args.json:
        c.write_json(doc)
    else:
        sys.stdout.write("\n".join(render_store(doc)) + "\n")
    return c.EXIT_OK


def store_kind(store: KeyValueStore) -> str:
    """The store's kind, with the protocol of a key prefix (``"s3 prefix"``)."""
    fs = getattr(store, "fs", None)
    if store.kind == "prefix" and fs is not None:
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        return f"{protocol} prefix"
    return store.kind


def _stored(listing: Mapping[str, KeyInfo], path: str) -> tuple[int, int | None]:
    """Chunk keys of the array at ``path`` and their total size (``None``: unknown)."""
    from intake_zspy.format import names

    prefix = f"{path}/"
    count, total = 0, 0
    known = True
    for key, info in listing.items():
        if key.startswith(prefix) and posixpath.basename(key) not in names.METADATA_DOCS:
            count += 1
            known = known and info.size is not None
            total += info.size or 0
    return count, total if known else None


def _axis(axis: Any, dim: str) -> dict[str, Any]:
    values = axis.values
    first = values[0].item() if values.size else None
    last = values[-1].item() if values.size else None
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
        "first": first,
        "last": last,
    }


def _hyperspy_dims(axes: list[dict[str, Any]]) -> str:
    nav = [str(a["size"]) for a in reversed(axes) if a["navigate"] is not False]
    sig = [str(a["size"]) for a in reversed(axes) if a["navigate"] is False]
    return f"({', '.join(nav)}|{', '.join(sig)})"


def describe_signal(signal: Signal, listing: Mapping[str, KeyInfo]) -> dict[str, Any]:
    """The JSON description of one signal (see ``intake-zspy info --json``)."""
    from intake_zspy.dataset import dim_names
    from intake_zspy.format.decode import RaggedArray

    data = signal.data
    flat = data.flat if isinstance(data, RaggedArray) else data
    meta = flat.meta
    axes = [_axis(a, d) for a, d in zip(signal.axes, dim_names(signal.axes), strict=True)]
    stored_chunks, stored_bytes = _stored(listing, flat.path)
    if isinstance(data, RaggedArray):
        _, shape_bytes = _stored(listing, data.shapes.path)
        stored_bytes = None if shape_bytes is None else (stored_bytes or 0) + shape_bytes
    nbytes = None if meta.is_object else math.prod(meta.shape) * meta.dtype.itemsize
    return {
        "name": signal.name,
        "path": signal.path,
        "title": signal.title,
        "signal_type": signal.signal_type,
        "package": signal.package,
        "package_version": signal.package_version,
        "ragged": isinstance(data, RaggedArray),
        "shape": list(meta.shape),
        "dtype": str(meta.dtype),
        "dims": axes,
        "navigation_dims": [a["dim"] for a in axes if a["navigate"] is not False],
        "signal_dims": [a["dim"] for a in axes if a["navigate"] is False],
        "hyperspy": _hyperspy_dims(axes),
        "chunks": list(meta.chunks),
        "chunk_grid": list(meta.grid),
        "chunk_count": math.prod(meta.grid),
        "stored_chunks": stored_chunks,
        "chunk_bytes": None if meta.is_object else math.prod(meta.chunks) * meta.dtype.itemsize,
        "compressor": meta.compressor,
        "filters": list(meta.filters),
        "fill_value": meta.fill_value,
        "nbytes": nbytes,
        "stored_bytes": stored_bytes,
        "models": sorted(signal.models),
        "learning_results": bool(signal.attributes.get("learning_results")),
    }


def describe_store(
    file: ZspyFile,
    *,
    signal: str | None = None,
    metadata: bool = False,
    original_metadata: bool = False,
) -> dict[str, Any]:
    """The JSON description of a store (``intake-zspy info --json``)."""
    listing = file.store.list()
    sizes = [i.size for i in listing.values()]
    wanted = [file.resolve_name(signal)] if signal is not None else file.signal_names()
    signals = []
    for name in wanted:
        sig = file.signal(name)
        doc = describe_signal(sig, listing)
        if metadata:
            doc["metadata"] = sig.metadata
        if original_metadata:
            doc["original_metadata"] = sig.original_metadata
        signals.append(doc)
    return {
        "url": file.url,
        "store_kind": store_kind(file.store),
        "format_version": file.format_version,
        "consolidated": ".zmetadata" in listing,
        "keys": len(listing),
        "stored_bytes": None if None in sizes else sum(s or 0 for s in sizes),
        "signals": signals,
    }
