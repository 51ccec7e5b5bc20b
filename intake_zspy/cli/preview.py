"""``intake-zspy preview``: a PNG to judge a store at a glance."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from intake_zspy.cli import _common as c

__all__ = ["parse_pixels", "register"]

#: The resolution of ``--dpi`` unless told (:data:`intake_zspy.preview.DEFAULT_DPI`).
DEFAULT_DPI = 100
#: The lowest ``--dpi`` accepted (:data:`intake_zspy.preview.MIN_DPI`).
MIN_DPI = 10

_EPILOG = """\
examples:
  intake-zspy preview run.zspy -o run.png
  intake-zspy preview s3://lab/si.zspy -o si.png --signal "EELS SI" --log
  intake-zspy preview run.zip -o big.png --size 1600x600 --dpi 150

The left panel sums the data over its navigation dims (a spectrum, or an image for 2-D
signals); the right one sums it over the signal dims (the navigation image, or a line
for a 1-D scan). Axes carry the stored names, units and calibrated values; the title
comes from the metadata. Stored markers (points, texts, lines) are drawn on their panel,
those of every navigation position at once. Complex data is shown as magnitudes, RGB
records as the sum of their channels. The sums are computed lazily, chunk by chunk.
"""


def register(commands: Any) -> None:
    """Add the ``preview`` command."""
    p = commands.add_parser(
        "preview",
        help="draw the navigation-summed signal and the signal-summed navigation image",
        description="Write a PNG preview of one signal: the data summed over navigation "
        "(with physical axes) next to the data summed over the signal, titled from the "
        "metadata. Needs matplotlib (pip install intake-zspy[preview]).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="the store: a directory, a zip file or an fsspec URL")
    p.add_argument(
        "-o", "--output", required=True, metavar="PNG", help="the PNG to write (path or URL)"
    )
    p.add_argument("--signal", help="the signal to draw (default: the first)")
    p.add_argument(
        "--size",
        metavar="WxH",
        help="image size in pixels (default 1200x480 with two panels, 640x480 with one)",
    )
    p.add_argument("--dpi", type=int, default=DEFAULT_DPI, help="resolution (default 100)")
    p.add_argument("--log", action="store_true", help="logarithmic intensity scale")
    p.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    c.add_storage_options(p)
    p.set_defaults(func=run)


def parse_pixels(text: str | None) -> tuple[int, int] | None:
    """``"1200x480"`` as ``(1200, 480)``.

    Raises
    ------
    CliError
        Not ``WIDTHxHEIGHT`` with sizes from 50 to 10000.
    """
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or not all(50 <= int(g) <= 10000 for g in match.groups()):
        raise c.CliError(f"--size {text!r}: write WIDTHxHEIGHT in pixels, e.g. 1200x480")
    return int(match.group(1)), int(match.group(2))


def run(args: argparse.Namespace) -> int:
    """Run ``preview``: the drawing is :func:`intake_zspy.preview.preview_png`'s."""
    from intake_zspy.preview import preview_png

    options = c.parse_storage_options(args.storage_options)
    size = parse_pixels(args.size)
    if args.dpi < MIN_DPI:
        raise c.CliError(f"--dpi must be at least {MIN_DPI}")
    output = c.resolve_output(args.output, options, overwrite=args.overwrite)
    png = preview_png(
        args.url,
        signal=args.signal,
        size=size,
        dpi=args.dpi,
        log=args.log,
        storage_options=options,
    )
    output.write(png)
    sys.stdout.write(f"wrote {args.output} ({c.format_bytes(len(png))})\n")
    return c.EXIT_OK
