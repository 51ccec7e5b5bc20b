"""``intake-zspy browse``: a browsable HTML index of every store under a folder or prefix."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from intake_zspy.cli import _common as c

__all__ = ["register"]

_EPILOG = """\
examples:
  intake-zspy browse /data/2026/ -o site/
  intake-zspy browse s3://lab/runs/ -o s3://lab/site/ --storage-options @s3.json
  intake-zspy browse "s3://lab/runs/*.zspy" -o site/ --no-previews

Writes OUT/index.html (self-contained: open it from disk, no server needed), OUT/thumbs/
and OUT/.browse-state.json. Running again over the same prefix redraws only the stores
whose listing changed (names, sizes, ETags or modification times). Damaged stores are
listed with their error. Credentials in --storage-options never reach the page.
"""


def register(commands: Any) -> None:
    """Add the ``browse`` command."""
    p = commands.add_parser(
        "browse",
        help="write a browsable HTML index (with thumbnails) of all stores under a prefix",
        description="Find every zspy store under a folder, bucket prefix or glob and write "
        "one static index.html with a thumbnail, title, signal type, shape, sizes, "
        "chunking, acquisition details and a Python snippet for each; filterable and "
        "sortable in any browser.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prefix", help="a folder, an fsspec URL prefix or a glob of stores")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="the folder to write, path or URL"
    )
    p.add_argument("--title", help="the page's heading (default: the prefix's last part)")
    p.add_argument(
        "--previews",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw a thumbnail of each store (default: on)",
    )
    p.add_argument(
        "--max-preview-size",
        metavar="SIZE",
        default="256MB",
        help="no thumbnail for stores with more stored bytes (default 256MB; 0: no limit)",
    )
    p.add_argument(
        "--target-storage-options",
        metavar="JSON",
        help="fsspec options for OUT (default: those of --storage-options)",
    )
    c.add_storage_options(p)
    c.add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``browse``."""
    from intake_zspy.archive import browse_report

    options = c.parse_storage_options(args.storage_options)
    target = (
        c.parse_storage_options(args.target_storage_options, "--target-storage-options")
        if args.target_storage_options
        else options
    )
    limit_text = str(args.max_preview_size).strip()
    limit = None if limit_text in ("0", "") else c.parse_size(limit_text)
    report = browse_report(
        args.prefix,
        args.output,
        storage_options=options,
        target_storage_options=target,
        previews=args.previews,
        max_preview_bytes=limit,
        title=args.title,
        progress=c.show_progress(args.progress),
    )
    bad = f" ({report.unreadable} unreadable)" if report.unreadable else ""
    sys.stderr.write(
        f"intake-zspy browse: {report.stores} stores{bad}; thumbnails: {report.drawn} drawn, "
        f"{report.reused} unchanged, {report.without} without; written to {report.url}\n"
    )
    return c.EXIT_OK
