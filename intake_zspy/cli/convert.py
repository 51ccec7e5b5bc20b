"""``intake-zspy convert``: copy a store to another URL or store type, optionally rechunked.

Without ``--chunks`` or ``--compressor`` the chunk objects are copied as they are (no
decoding, no encoding), in bounded batches, with the crash-safe order of the writer and a
fresh ``.zmetadata``. Otherwise the copy streams through dask: each signal is opened with dask chunks that read whole
target chunks straight from the source (or the source chunks, split afterwards, when the
target chunks are smaller), and :func:`intake_zspy.to_zspy` encodes and writes each
block in the task that computes it. Memory stays around a few blocks per worker thread.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from intake_zspy.cli import _common as c
from intake_zspy.cli._specs import (
    CHUNKS_HELP,
    COMPRESSOR_HELP,
    ChunkSpec,
    parse_chunks,
    parse_compressor,
)
from intake_zspy.errors import StoreExistsError

if TYPE_CHECKING:
    from intake_zspy.format.decode import ZspyFile
    from intake_zspy.storage import KeyValueStore, WriteTarget

__all__ = ["SignalPlan", "plan_signals", "register"]

#: ``--compressor`` not given: use the source's.
_KEEP = object()

_EPILOG = """\
examples:
  intake-zspy convert run.zspy run.zip                       # directory -> zip file
  intake-zspy convert run.zip s3://lab/run.zspy --storage-options @s3.json
  intake-zspy convert s3://lab/run.zspy local.zspy --chunks auto-signal:16MB
  intake-zspy convert run.zspy tiled.zspy --chunks y=32,x=32 --compressor blosc:zstd:5
  intake-zspy convert run.zspy run_zip.zspy --store-type zip --overwrite
  intake-zspy convert big.zspy s3://lab/big.zspy --chunks auto-signal --dry-run

The target gets every signal with its axes, metadata, original_metadata, learning results
and models, consolidated metadata (.zmetadata) and HyperSpy's layout: hs.load reads it.
An existing target is only replaced with --overwrite, and only once the new store is
complete.
"""


def register(commands: Any) -> None:
    """Add the ``convert`` command."""
    p = commands.add_parser(
        "convert",
        help="copy a store between directory, zip and S3; rechunk, recompress",
        description="Copy a zspy store to another URL or store type (directory, zip file, "
        "S3 prefix, zip object on S3, ...), optionally rechunked and recompressed, "
        "streaming with bounded memory.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="the source store")
    p.add_argument("dst", help="the target: a path, a .zip path, zip::URL or a URL prefix")
    p.add_argument("--chunks", metavar="SPEC", help=CHUNKS_HELP)
    p.add_argument("--compressor", metavar="SPEC", help=COMPRESSOR_HELP)
    p.add_argument(
        "--store-type",
        choices=("directory", "zip"),
        help="the target's kind (default: zip for .zip paths and zip:: URLs, else a "
        "directory, or a key prefix on object storage)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing target")
    p.add_argument(
        "--no-consolidated",
        dest="consolidated",
        action="store_false",
        help="do not write .zmetadata (consolidated metadata)",
    )
    p.add_argument("--workers", type=int, metavar="N", help="dask threads (default: one per CPU)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the chunks and compressor, write nothing"
    )
    p.add_argument(
        "--target-storage-options",
        metavar="JSON",
        help="fsspec options of the target when they differ from --storage-options",
    )
    c.add_progress(p)
    c.add_storage_options(p)
    p.set_defaults(func=run)


@dataclass
class SignalPlan:
    """How one signal is read and written."""

    name: str
    dims: list[str]
    shape: tuple[int, ...]
    stored: tuple[int, ...]
    target: tuple[int, ...]
    read: tuple[int, ...]
    ragged: bool
    compressor: dict[str, Any] | None


def plan_signals(file: ZspyFile, spec: ChunkSpec | None) -> list[SignalPlan]:
    """The chunks each signal is read with and written with.

    Read chunks are the target chunks where those are at least the stored ones (dask then
    reads each target chunk straight from the source), else the stored chunks (split
    into target chunks afterwards), so every stored chunk is read about once.
    """
    from intake_zspy.dataset import dim_names
    from intake_zspy.format.decode import RaggedArray

    plans = []
    for name in file.signal_names():
        sig = file.signal(name)
        dims = dim_names(sig.axes)
        meta = sig.data.flat.meta if isinstance(sig.data, RaggedArray) else sig.data.meta
        shape = meta.shape
        stored = tuple(max(1, min(ch, n)) for ch, n in zip(meta.chunks, shape, strict=True))
        ragged = meta.is_object
        target = stored
        if spec is not None and not ragged:
            navigate = [a.navigate is not False for a in sig.axes]
            target = spec.resolve(dims, shape, stored, navigate, meta.dtype.itemsize)
        read = tuple(max(t, s) for t, s in zip(target, stored, strict=True))
        plans.append(SignalPlan(name, dims, shape, stored, target, read, ragged, meta.compressor))
    if spec is not None:
        spec.check_dims({d for p in plans for d in p.dims})
    return plans


def _open_tree(store: KeyValueStore, plans: list[SignalPlan]) -> Any:
    import xarray as xr

    from intake_zspy.reader import open_dataset

    nodes = {}
    for p in plans:
        with warnings.catch_warnings():  # the read chunks may straddle stored ones
            warnings.filterwarnings("ignore", message=".*separate the stored chunks.*")
            ds = open_dataset(store, signal=p.name, chunks=dict(zip(p.dims, p.read, strict=True)))
        if p.target != p.read:
            ds = ds.chunk(dict(zip(p.dims, p.target, strict=True)))
        nodes[f"/{p.name}"] = ds
    return xr.DataTree.from_dict(nodes)


@contextmanager
def _dask_progress(enabled: bool) -> Iterator[None]:
    """A tqdm bar over the dask tasks run inside the block."""
    if not enabled:
        yield
        return
    from dask.callbacks import Callback

    bar = c.progress_bar(0, "converting", "task", True)

    class _Bar(Callback):  # type: ignore[misc]
        def _start_state(self, dsk: Any, state: Any) -> None:
            bar.total += sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            bar.refresh()

        def _posttask(self, *args: Any) -> None:
            bar.update(1)

    try:
        with _Bar():
            yield
    finally:
        bar.close()


def _describe_chunks(plan: SignalPlan) -> str:
    if plan.ragged:
        return "ragged, written whole"
    if plan.target == plan.stored:
        return f"chunks {plan.stored} kept"
    return f"chunks {plan.stored} -> {plan.target}"


def run(args: argparse.Namespace) -> int:
    """Run ``convert``."""
    import dask

    from intake_zspy.cli.info import describe_compressor
    from intake_zspy.format.decode import open_file
    from intake_zspy.storage import open_store, open_target
    from intake_zspy.writer import to_zspy

    src_options = c.parse_storage_options(args.storage_options)
    dst_options = (
        c.parse_storage_options(args.target_storage_options, "--target-storage-options")
        if args.target_storage_options is not None
        else src_options
    )
    spec = parse_chunks(args.chunks)
    compressor: Any = _KEEP if args.compressor is None else parse_compressor(args.compressor)
    if args.workers is not None and args.workers < 1:
        raise c.CliError("--workers must be at least 1")
    store_type = args.store_type
    target = open_target(args.dst, dst_options, store_type)
    if target.exists() and not args.overwrite:
        raise StoreExistsError(f"{target.url}: already exists; pass --overwrite to replace it")
    progress = c.show_progress(args.progress)
    start = time.monotonic()
    with open_store(args.src, src_options) as store:
        file = open_file(store)
        plans = plan_signals(file, spec)
        if compressor is _KEEP:
            compressor = _source_compressor(plans[0])
        kind = {"prefix": "key prefix"}.get(target.kind, target.kind)
        lines = [f"{store.url} -> {target.url} ({kind})"]
        lines += [f"  {p.name}: {_describe_chunks(p)}" for p in plans]
        lines.append(
            "  compressor: " + describe_compressor(compressor.get_config() if compressor else None)
        )
        if args.dry_run:
            sys.stdout.write("\n".join(lines) + "\n")
            return c.EXIT_OK
        sys.stderr.write("\n".join(lines) + "\n")
        if spec is None and args.compressor is None:
            url = _copy_raw(store, file, target, args.consolidated, progress)
            return _report(url, dst_options, store, start)
        tree = _open_tree(store, plans)
        config: dict[str, Any] = {"scheduler": "threads"}
        if args.workers is not None:
            config["num_workers"] = args.workers
        with dask.config.set(config), _dask_progress(progress):
            url = to_zspy(
                tree,
                args.dst,
                storage_options=dst_options,
                store_type=store_type,
                overwrite=args.overwrite,
                compressor=compressor,
                consolidated=args.consolidated,
            )
        return _report(url, dst_options, store, start)


def _report(url: str, options: dict[str, Any], source: KeyValueStore, start: float) -> int:
    from intake_zspy.format.decode import open_file
    from intake_zspy.storage import open_store

    source_bytes = sum(i.size or 0 for i in source.list().values())
    with open_store(url, options) as written:
        written_file = open_file(written)
        stored = sum(i.size or 0 for i in written.list().values())
        count = len(written_file.signal_names())
    sys.stdout.write(
        f"wrote {url}: {count} signal{'s' if count != 1 else ''}, {c.format_bytes(stored)} "
        f"(source {c.format_bytes(source_bytes)}) in {time.monotonic() - start:.1f} s\n"
    )
    return c.EXIT_OK


def _copy_raw(
    store: KeyValueStore, file: ZspyFile, target: WriteTarget, consolidated: bool, progress: bool
) -> str:
    """Copy the stored objects unchanged: signal groups first, root attributes last."""
    from intake_zspy.format import layout
    from intake_zspy.format.fetch import batched, fetch_ahead
    from intake_zspy.format.hierarchy import consolidated_document

    listing = store.list()
    first = [k for k in layout.first_keys(file.signal_names()) if k in listing]
    middle = [k for k in listing if k not in (*first, *layout.LAST)]
    bar = c.progress_bar(len(listing), "copying", "object", progress)
    with target.staging(last=layout.LAST) as out:
        out.put_many(store.get_many(first))  # type: ignore[arg-type]
        batches = batched(middle, lambda k: listing[k].size or 0)
        for keys, values in fetch_ahead(store.get_many, batches, lambda k: k):
            out.put_many({k: v for k, v in values.items() if v is not None})
            if bar is not None:
                bar.update(len(keys))
        out.put_many({k: v for k, v in store.get_many(layout.LAST[:1]).items() if v is not None})
        if consolidated:
            out.put_many({layout.LAST[1]: consolidated_document(file.hierarchy.docs)})
    if bar is not None:
        bar.close()
    return target.url


def _source_compressor(plan: SignalPlan) -> Any:
    from intake_zspy.format.codecs import COMPRESSORS, make_codec

    if not plan.compressor:
        return None
    return make_codec(plan.compressor, f"signal {plan.name!r}", COMPRESSORS)
