"""``intake-zspy info``: what a store holds, from its metadata and one listing."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from intake_zspy.cli import _common as c
from intake_zspy.cli._info_text import render_store

__all__ = ["register"]

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
    from intake_zspy.ops import describe

    doc = describe(
        args.url,
        signal=args.signal,
        metadata=args.metadata,
        original_metadata=args.original_metadata,
        storage_options=c.parse_storage_options(args.storage_options),
    )
    if args.json:
        c.write_json(doc)
    else:
        sys.stdout.write("\n".join(render_store(doc)) + "\n")
    return c.EXIT_OK
