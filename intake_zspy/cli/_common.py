"""Helpers shared by the commands: options, errors, sizes, tables, JSON and progress bars."""

from __future__ import annotations

import argparse
import json
import math
import numbers
import os
import posixpath
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from intake_zspy._units import format_bytes

__all__ = [
    "EXIT_DAMAGED",
    "EXIT_ERROR",
    "EXIT_OK",
    "CliError",
    "Output",
    "add_progress",
    "add_storage_options",
    "format_bytes",
    "format_number",
    "parse_size",
    "parse_storage_options",
    "resolve_output",
    "show_progress",
    "table",
    "write_json",
]

#: Exit statuses: success, a damaged store (``check``), an error (bad input, I/O).
EXIT_OK = 0
EXIT_DAMAGED = 1
EXIT_ERROR = 2

_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
_BINARY = {"KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}


class CliError(Exception):
    """A user error detected by the command line itself (printed as one line)."""


def parse_storage_options(text: str | None, what: str = "--storage-options") -> dict[str, Any]:
    """The fsspec options given on the command line.

    Parameters
    ----------
    text
        A JSON object, ``@path`` to read one from a file, or ``None`` (no options).
    what
        The option's name, for error messages.

    Raises
    ------
    CliError
        The text is not a JSON object, or the file cannot be read.
    """
    if text is None or not text.strip():
        return {}
    source = what
    if text.startswith("@"):
        source = f"{what} file {text[1:]!r}"
        try:
            with open(os.path.expanduser(text[1:]), encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise CliError(f"{source}: cannot read it: {exc.strerror or exc}") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(
            f"{source}: not valid JSON ({exc}); expected an object such as "
            '\'{"anon": true}\' or \'{"client_kwargs": {"endpoint_url": "http://..."}}\''
        ) from exc
    if not isinstance(value, dict):
        raise CliError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return value


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--storage-options`` to a command's parser."""
    parser.add_argument(
        "--storage-options",
        metavar="JSON",
        help="fsspec options as a JSON object, or @FILE holding one (e.g. "
        "'{\"anon\": true}'); S3 endpoints and credentials also come from the usual "
        "fsspec/s3fs configuration (FSSPEC_S3_ENDPOINT_URL, AWS_* variables, ~/.aws)",
    )


def parse_size(text: str) -> int:
    """Bytes in ``"100MB"``, ``"32MiB"``, ``"1.5G"``, ``"4096"``.

    Raises
    ------
    CliError
        The text is not a size.
    """
    t = text.strip().upper().replace(" ", "")
    number = t.rstrip("BKMGTI")
    unit = t[len(number) :]
    factor = _BINARY.get(unit.removesuffix("B")) or _UNITS.get(unit.removesuffix("B") or unit)
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if factor is None or not math.isfinite(value) or value <= 0:
        raise CliError(f"{text!r} is not a size (examples: 100MB, 32MiB, 1.5G, 4096)")
    return max(1, int(value * factor))


def format_number(x: Any) -> str:
    """A short, exact-enough text for an axis value."""
    if isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral):
        return f"{float(x):.6g}"
    return str(x)


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows of cells as aligned text lines (the last column is not padded)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    lines = []
    for row in rows:
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def write_json(doc: Any, out: IO[str] | None = None) -> None:
    """Write ``doc`` as indented, key-sorted strict JSON and a newline."""
    from intake_zspy.ops._plain import jsonable

    out = out or sys.stdout
    out.write(json.dumps(jsonable(doc), indent=2, sort_keys=True, allow_nan=False) + "\n")


@dataclass(frozen=True)
class Output:
    """A file to write: local path or fsspec URL (see :func:`resolve_output`)."""

    fs: Any
    path: str
    url: str

    def write(self, data: bytes) -> None:
        """Write ``data``, creating parent folders."""
        parent = posixpath.dirname(self.path.rstrip("/"))
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(self.path, "wb") as f:
            f.write(data)


def resolve_output(path: str, storage_options: Mapping[str, Any], *, overwrite: bool) -> Output:
    """Where to write an output file; checked before any work is done.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    from intake_zspy.storage import resolve

    loc = resolve(path, storage_options, mode="w")
    fs, fpath, path = loc.fs, loc.path, loc.url
    if not overwrite and fs.exists(fpath):
        raise FileExistsError(f"{path}: already exists; pass --overwrite to replace it")
    if fs.isdir(fpath):
        raise IsADirectoryError(f"{path}: is a directory, not a file")
    return Output(fs, fpath, path)


def show_progress(flag: bool | None) -> bool:
    """Whether to draw progress bars: ``--progress``/``--no-progress``, else on a terminal.

    Raises
    ------
    CliError
        ``--progress`` was given but tqdm is not installed.
    """
    if flag is False:
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError as exc:
        if flag:
            raise CliError("progress bars need tqdm: pip install intake-zspy[progress]") from exc
        return False
    return bool(flag) or sys.stderr.isatty()


def add_progress(parser: argparse.ArgumentParser) -> None:
    """Add ``--progress``/``--no-progress`` to a command's parser."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )
