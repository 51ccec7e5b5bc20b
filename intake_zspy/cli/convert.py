"""``intake-zspy convert``: :func:`intake_zspy.copy` from the command line."""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> int:
    """Run ``convert``."""
    import dask

    from intake_zspy.errors import StoreExistsError
    from intake_zspy.format.decode import open_url
    from intake_zspy.ops.copy import KEEP, copy, plan_signals, source_compressor
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
    target = WriteTarget(resolve(args.dst, dst_options, mode="w", store_type=args.store_type))
    if target.exists() and not args.overwrite:
        raise StoreExistsError(f"{target.url}: already exists; pass --overwrite to replace it")
    start = time.monotonic()
    file = open_url(args.src, src_options)
    with file.store as store:
        try:
            plans = plan_signals(file, rule)
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
        config: dict[str, Any] = {"scheduler": "threads"}
        if args.workers is not None:
            config["num_workers"] = args.workers
        with dask.config.set(config):
            url = copy(
                store,
                args.dst,
                chunks=rule,
                compressor=compressor,
                store_type=args.store_type,
                overwrite=args.overwrite,
                consolidated=args.consolidated,
                target_storage_options=dst_options,
                progress=c.show_progress(args.progress),
            )
        return _report(url, dst_options, store, start)


def _report(url: str, options: dict[str, Any], source: KeyValueStore, start: float) -> int:
    from intake_zspy.format.decode import open_url

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
