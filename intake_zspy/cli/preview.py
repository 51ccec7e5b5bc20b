"""``intake-zspy preview``: a PNG to judge a store at a glance."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intake_zspy.cli import _common as c

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["make_preview", "parse_pixels", "preview_figure", "register"]

#: Bytes per dask chunk while summing (bounds memory: a few chunks per thread).
PREVIEW_CHUNK_BYTES = "32MiB"
DEFAULT_DPI = 100

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


def make_preview(
    url: str,
    storage_options: Mapping[str, Any],
    *,
    signal: str | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = DEFAULT_DPI,
    log: bool = False,
) -> bytes:
    """PNG bytes of the preview of one signal of a store.

    Raises
    ------
    CliError
        The signal cannot be previewed, or matplotlib is missing.
    """
    import io

    fig = preview_figure(url, storage_options, signal=signal, size=size, dpi=dpi, log=log)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def preview_figure(
    url: str,
    storage_options: Mapping[str, Any],
    *,
    signal: str | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = DEFAULT_DPI,
    log: bool = False,
) -> Figure:
    """The preview of one signal of a store as a matplotlib Figure (Agg canvas).

    Raises
    ------
    CliError
        The signal cannot be previewed, or matplotlib is missing.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise c.CliError("preview needs matplotlib: pip install intake-zspy[preview]") from exc
    import dask

    from intake_zspy.cli._render import compute_sums, make_figure
    from intake_zspy.reader import open_dataset
    from intake_zspy.storage import open_store

    if dpi < 10:
        raise c.CliError("--dpi must be at least 10")
    with (
        open_store(url, storage_options) as store,
        dask.config.set({"array.chunk-size": PREVIEW_CHUNK_BYTES, "scheduler": "threads"}),
    ):
        ds = open_dataset(store, signal=signal)  # metadata only: check what the data is
        if ds["data"].dtype.kind == "O":
            raise c.CliError(f"{store.url}: ragged signals have no fixed shape to sum: no preview")
        ds = open_dataset(store, signal=signal, chunks="auto")  # aligned to stored chunks
        sums = compute_sums(ds)
    panels = (sums.signal is not None) + (sums.navigation is not None)
    size = size or ((1200, 480) if panels > 1 else (640, 480))
    return make_figure(sums, source_line(url, ds), size=size, dpi=dpi, log=log)


def source_line(url: str, ds: Any) -> str:
    """The store's name, and the signal's group when it says more than the title."""
    from intake_zspy.format.names import UNNAMED

    name = str(url).rstrip("/").rsplit("/", 1)[-1]
    group = str(ds.attrs.get("zspy_signal") or "")
    title = str(ds.attrs.get("title") or "")
    if not group or group == UNNAMED or group == title.replace("/", "-"):
        return name
    return f"{name}: {group}"


def run(args: argparse.Namespace) -> int:
    """Run ``preview``."""
    options = c.parse_storage_options(args.storage_options)
    size = parse_pixels(args.size)
    output = c.resolve_output(args.output, options, overwrite=args.overwrite)
    png = make_preview(args.url, options, signal=args.signal, size=size, dpi=args.dpi, log=args.log)
    output.write(png)
    sys.stdout.write(f"wrote {args.output} ({c.format_bytes(len(png))})\n")
    return c.EXIT_OK
