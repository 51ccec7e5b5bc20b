"""``intake-zspy check``: read and decode every chunk of every array of a store."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from intake_zspy.cli import _common as c

if TYPE_CHECKING:
    from intake_zspy.ops import Report

__all__ = ["register", "render"]

_EPILOG = """\
examples:
  intake-zspy check run.zspy
  intake-zspy check s3://lab/run.zspy --storage-options @s3.json --workers 16
  intake-zspy check copy.zip --json > report.json
  intake-zspy check run.zspy --strict        # missing chunks and stale .zmetadata fail too

exit status: 0 the store is sound (warnings allowed), 1 it is damaged (corrupted or
unreadable chunks, invalid metadata documents, not a complete zspy store; also warnings
with --strict), 2 the check could not run (nothing at the URL, bad options, ...).
Missing chunk keys are reported as warnings: zarr reads them as the fill value, which
is how sparse arrays are stored, but also what a partial copy looks like.
"""


def register(commands: Any) -> None:
    """Add the ``check`` command."""
    p = commands.add_parser(
        "check",
        help="read and decode every chunk; report missing and corrupted ones",
        description="Verify a zspy store: parse every metadata document, check the zspy "
        "structure, then fetch every chunk of every array (data, axis vectors, metadata "
        "arrays, ragged arrays) in concurrent batches and decode it. Corrupted chunks "
        "are named by key on stderr; missing ones are reported against the chunk grid.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="the store: a directory, a zip file or an fsspec URL")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1) on warnings too: missing chunks, "
        "stale .zmetadata, keys outside any chunk grid",
    )
    p.add_argument(
        "--workers", type=int, default=8, metavar="N", help="decoding threads (default 8)"
    )
    p.add_argument(
        "--batch",
        type=int,
        default=128,
        metavar="N",
        help="chunks fetched per concurrent request batch (default 128)",
    )
    p.add_argument(
        "--max-batch-bytes",
        default="64MB",
        metavar="SIZE",
        help="stored bytes fetched per batch at most, bounding memory (default 64MB)",
    )
    c.add_progress(p)
    c.add_storage_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``check``."""
    from intake_zspy.ops import verify

    options = c.parse_storage_options(args.storage_options)
    if args.workers < 1 or args.batch < 1:
        raise c.CliError("--workers and --batch must be at least 1")
    batch_bytes = c.parse_size(args.max_batch_bytes)
    progress = c.show_progress(args.progress)
    start = time.monotonic()
    report = verify(
        args.url,
        storage_options=options,
        workers=args.workers,
        batch=args.batch,
        batch_bytes=batch_bytes,
        progress=progress,
    )
    elapsed = time.monotonic() - start
    failed = bool(report.problems) or (args.strict and bool(report.warnings))
    prog = "intake-zspy check"
    for problem in report.problems:
        sys.stderr.write(f"{prog}: {problem}\n")
    for warning in report.warnings:
        sys.stderr.write(f"{prog}: warning: {warning}\n")
    if args.json:
        doc = report.as_json()
        doc.update(ok=not failed, seconds=round(elapsed, 3))
        c.write_json(doc)
    else:
        sys.stdout.write("\n".join(render(report, elapsed, failed)) + "\n")
    return c.EXIT_DAMAGED if failed else c.EXIT_OK


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def render(report: Report, elapsed: float, failed: bool) -> list[str]:
    """The text summary of a check."""
    if report.kind == "?":  # the store could not even be opened
        return [report.url, "DAMAGED: the store cannot be opened (see stderr)"]
    arrays = report.arrays
    expected = sum(a.expected for a in arrays)
    missing = sum(len(a.missing) for a in arrays)
    corrupted = sum(len(a.corrupted) for a in arrays)
    rows = [
        [
            "store",
            f"{report.kind}, {_count(len(report.signals), 'signal')}: {', '.join(report.signals)}",
        ],
        [
            "arrays",
            (
                f"{_count(len(arrays), 'array')}, {expected} chunks in their grids: {report.chunks_read} "
                f"read ({c.format_bytes(report.bytes_read)}), {missing} missing, "
                f"{corrupted} corrupted"
            ),
        ],
        ["documents", f"{report.documents} metadata documents, {len(report.bad_documents)} bad"],
        ["time", f"{elapsed:.2f} s"],
    ]
    lines = [report.url, *c.table(rows)]
    for a in arrays:
        if a.missing or a.corrupted or a.stray or a.error:
            lines.append(f"  {a.path}: " + a.summary())
    if failed:
        lines.append(f"DAMAGED: {_count(len(report.problems), 'problem')}, listed on stderr")
    elif report.warnings:
        lines.append(f"OK with {_count(len(report.warnings), 'warning')}, listed on stderr")
    else:
        lines.append("OK: every chunk decodes")
    return lines
