"""Output: progress lines, table formatting, the results JSON and the docs sections."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._common.paths import REPO, RESULTS_DIR


def log(msg: str) -> None:
    """Progress to stderr (stdout is for the tables)."""
    print(msg, file=sys.stderr, flush=True)


def utc_date() -> str:
    """Now, as the docs sections print it."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def command_line(script: str, argv: Sequence[str]) -> str:
    """The shell command that runs ``benchmarks/<script>`` with ``argv``."""
    return f"python benchmarks/{script}" + "".join(f" {shlex.quote(a)}" for a in argv)


def secs(x: float) -> str:
    """Seconds for the tables: 3 decimals below 10 s, 1 above."""
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def ops_text(by_op: dict[str, int] | None) -> str:
    """The proxy's request counts by S3 operation, e.g. ``2 HEAD, 16 GET``."""
    if not by_op:
        return ""
    short = {
        "GetObject": "GET",
        "HeadObject": "HEAD",
        "ListObjectsV2": "LIST",
        "ListObjects": "LIST",
    }
    return ", ".join(f"{n} {short.get(op, op)}" for op, n in by_op.items())


def library_line(lib: dict[str, Any] | None) -> str:
    """The docs line of a :func:`library_state`."""
    if not lib:
        return "**Library:** state not recorded."
    text = f"**Library:** intake-zspy at commit `{lib['commit']}` ({lib['subject']})"
    if lib["uncommitted"]:
        files = ", ".join(f"`{f}`" for f in lib["uncommitted"])
        text += f", with uncommitted changes to {files}"
    return text + "."


def save_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results`` to ``RESULTS_DIR/<name>-<UTC stamp>.json``; return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = RESULTS_DIR / f"{name}-{stamp}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    log(f"raw results: {out.relative_to(REPO)}")
    return out


def section_markers(script: str) -> tuple[str, str]:
    """The comments around the docs section that ``script`` generates."""
    return (
        f"<!-- BEGIN {script} output: generated, do not edit by hand -->",
        f"<!-- END {script} output -->",
    )


def write_section(path: Path, script: str, section: str, heading: str | None = None) -> None:
    """Replace ``script``'s section (markers included) of the markdown file ``path``.

    Without the markers, the section is appended (under ``heading`` if given); a missing
    file is created.
    """
    begin, end = section_markers(script)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + (f"{heading}\n\n" if heading else "") + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def revision(tree: Path) -> str:
    """``<short hash> <subject>`` of the commit checked out in ``tree``, and whether its
    ``intake_zspy/`` has uncommitted changes."""
    done = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    status = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no", "intake_zspy"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = " + uncommitted changes to intake_zspy/" if status.stdout.strip() else ""
    return done.stdout.strip()[:60] + dirty
