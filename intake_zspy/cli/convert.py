"""``intake-zspy convert``: :func:`intake_zspy.copy` from the command line."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any

from intake_zspy.cli import _common as c
from intake_zspy.cli._info_text import describe_compressor
from intake_zspy.cli._specs import CHUNKS_HELP, COMPRESSOR_HELP, parse_chunks, parse_compressor

if TYPE_CHECKING:
    from intake_zspy.storage import KeyValueStore

__all__ = ["register"]

_EPILOG = """\
examples:
  intake-zspy convert run.zspy run.zip                       # directory -> zip file
  intake-zspy convert run.zip s3://lab/run.zspy --storage-options @s3.json
  intake-zspy convert s3://lab/run.zspy local.zspy --chunks auto-signal:16MB
  intake-zspy convert run.zspy tiled.zspy --chunks y=32,x=32 --compressor blosc:zstd:5
  intake-zspy convert run.zspy run_zip.zspy --store-type zip --overwrite
  intake-zspy convert big.zspy s3://lab/big.zspy --chunks auto-signal --dry-run
  intake-zspy convert run.hspy s3://lab/run.zspy             # HyperSpy .hspy (HDF5) -> zspy
  intake-zspy convert archive/ s3://lab/archive/ --jobs 4    # every .hspy below archive/

A HyperSpy .hspy file (HDF5, needs intake-zspy[hspy]) is converted with chunks for cloud
reads (whole signals, navigation tiled up to ~32 MiB) and Blosc zstd unless --chunks and
--compressor say otherwise. A source ending in '/' (or a local folder that is no zspy
store) converts every .hspy file below it to <dst>/<same path>.zspy: targets that are
already complete zspy stores are skipped (unless --overwrite), targets left incomplete by
an interrupted run are converted again, so re-running the command resumes it.

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
        "--jobs",
        type=int,
        default=2,
        metavar="N",
        help="folder conversion: files converted at once (default: 2)",
    )
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


def run(args: argparse.Namespace) -> int:
    """Run ``convert``."""
    from intake_zspy.errors import StoreExistsError
    from intake_zspy.format.decode import open_url
    from intake_zspy.ops.copy import (
        KEEP,
        copy,
        plan_signals,
        source_compressor,
        source_defaults,
    )
    from intake_zspy.storage import WriteTarget, resolve

    src_options = c.parse_storage_options(args.storage_options)
    dst_options = (
        c.parse_storage_options(args.target_storage_options, "--target-storage-options")
        if args.target_storage_options is not None
        else src_options
    )
    rule = parse_chunks(args.chunks)
    compressor: Any = KEEP if args.compressor is None else parse_compressor(args.compressor)
    if args.workers is not None and args.workers < 1:
        raise c.CliError("--workers must be at least 1")
    if _is_folder(args.src, src_options):
        return _run_folder(args, src_options, dst_options, rule, compressor)
    target = WriteTarget(resolve(args.dst, dst_options, mode="w", store_type=args.store_type))
    if target.exists() and not args.overwrite:
        raise StoreExistsError(f"{target.url}: already exists; pass --overwrite to replace it")
    start = time.monotonic()
    file = open_url(args.src, src_options)
    with file.store as store:
        chunks, compressor = source_defaults(file, rule, compressor)
        try:
            plans = plan_signals(file, chunks)
        except ValueError as exc:
            raise c.CliError(f"--{exc}") from exc  # "chunks names dims ...": the option
        shown = source_compressor(plans[0]) if compressor == KEEP else compressor
        kind = {"prefix": "key prefix"}.get(target.kind, target.kind)
        lines = [f"{store.url} -> {target.url} ({kind})"]
        lines += [f"  {p.name}: {p.describe()}" for p in plans]
        lines.append("  compressor: " + describe_compressor(shown.get_config() if shown else None))
        if args.dry_run:
            sys.stdout.write("\n".join(lines) + "\n")
            return c.EXIT_OK
        sys.stderr.write("\n".join(lines) + "\n")
        with _dask_threads(args.workers, raw=chunks is None and compressor == KEEP):
            url = copy(
                file,
                args.dst,
                chunks=chunks,
                compressor=compressor,
                store_type=args.store_type,
                overwrite=args.overwrite,
                consolidated=args.consolidated,
                target_storage_options=dst_options,
                progress=c.show_progress(args.progress),
            )
        return _report(url, dst_options, store, start)


def _dask_threads(workers: int | None, *, raw: bool) -> Any:
    """dask's threaded scheduler (``workers`` threads) for a rechunking copy; nothing for
    a raw copy, which never imports dask."""
    if raw:
        return contextlib.nullcontext()
    import dask

    config: dict[str, Any] = {"scheduler": "threads"}
    if workers is not None:
        config["num_workers"] = workers
    return dask.config.set(config)


def _is_folder(src: str, options: dict[str, Any]) -> bool:
    """A folder of files to convert: ``.../`` or a local directory that is no zspy store."""
    import os

    if src.endswith("/"):
        return True
    path = os.path.expanduser(src)
    return "://" not in src and os.path.isdir(path) and not src.rstrip("/").endswith(".zspy")


def _run_folder(
    args: argparse.Namespace,
    src_options: dict[str, Any],
    dst_options: dict[str, Any],
    chunks: Any,
    compressor: Any,
) -> int:
    """``convert DIR/ PREFIX/``: every ``.hspy`` below ``DIR``, in parallel, resumably."""
    import dask

    from intake_zspy._progress import progress_bar
    from intake_zspy.ops.folder import FolderItem, convert_folder, plan_folder

    if args.jobs < 1:
        raise c.CliError("--jobs must be at least 1")
    items = plan_folder(args.src, args.dst, src_options)
    if args.dry_run:
        sys.stdout.write("".join(f"{i.source} -> {i.target}\n" for i in items))
        return c.EXIT_OK
    bar = progress_bar(len(items), "converting", "file", c.show_progress(args.progress))

    def done(item: FolderItem) -> None:
        if bar is not None:
            bar.write(item.line(), file=sys.stderr)
            bar.update(1)
        else:
            sys.stderr.write(item.line() + "\n")

    config: dict[str, Any] = {"scheduler": "threads"}
    if args.workers is not None:
        config["num_workers"] = args.workers
    with dask.config.set(config):
        items = convert_folder(
            args.src,
            args.dst,
            overwrite=args.overwrite,
            workers=args.jobs,
            chunks=chunks,
            compressor=compressor,
            storage_options=src_options,
            target_storage_options=dst_options,
            on_done=done,
        )
    if bar is not None:
        bar.close()
    counts = {s: sum(i.status == s for i in items) for s in ("converted", "skipped", "failed")}
    sys.stdout.write(", ".join(f"{n} {s}" for s, n in counts.items()) + "\n")
    return c.EXIT_ERROR if counts["failed"] else c.EXIT_OK


def _report(url: str, options: dict[str, Any], source: KeyValueStore, start: float) -> int:
    from intake_zspy.format.decode import open_url
    from intake_zspy.storage import HDF5File

    if isinstance(source, HDF5File):
        source_bytes = int(source.fs.size(source.path) or 0)
    else:
        source_bytes = sum(i.size or 0 for i in source.list().values())
    written = open_url(url, options)
    with written.store:
        count = len(written.signal_names())
        stored = sum(i.size or 0 for i in written.store.list().values())
    sys.stdout.write(
        f"wrote {url}: {count} signal{'s' if count != 1 else ''}, {c.format_bytes(stored)} "
        f"(source {c.format_bytes(source_bytes)}) in {time.monotonic() - start:.1f} s\n"
    )
    return c.EXIT_OK
