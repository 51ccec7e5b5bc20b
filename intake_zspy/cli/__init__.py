"""The ``intake-zspy`` command: inspect, check, convert, catalog, browse and preview zspy
stores.

Run ``intake-zspy --help`` (or ``python -m intake_zspy --help``). Each command lives in
its own module with a ``register(subparsers)`` function that adds its parser and sets
``func`` to the function running it; :func:`main` parses the arguments, runs the command
and turns every error into one line on stderr and an exit status:

- ``0``: success;
- ``1``: ``check`` found the store damaged (corrupted or unreadable chunks, invalid
  documents, an incomplete store), or warnings with ``--strict``;
- ``2``: the command could not run (bad arguments, nothing at the URL, a target that
  exists, a network error, ...);
- ``130``: interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from intake_zspy.cli import browse, catalog, check, convert, info, preview
from intake_zspy.cli._common import EXIT_ERROR, CliError

__all__ = ["build_parser", "main"]

PROG = "intake-zspy"

_EPILOG = """\
examples:
  intake-zspy info run.zspy
  intake-zspy info s3://lab/run.zspy --json --storage-options '{"anon": true}'
  intake-zspy check run_copy.zip
  intake-zspy convert run.zspy s3://lab/run.zspy --chunks auto-signal:16MB
  intake-zspy catalog s3://lab/2026/ -o catalog.yml --previews previews/
  intake-zspy browse s3://lab/2026/ -o site/
  intake-zspy preview run.zspy -o run.png

exit status: 0 success, 1 check found a damaged store, 2 error, 130 interrupted.
Run 'intake-zspy COMMAND --help' for the options of a command.
"""


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show the program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from intake_zspy import __version__

        sys.stdout.write(f"{parser.prog} {__version__}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``intake-zspy`` with every command.

    Building it imports only the standard library and the command modules' argument
    definitions: ``--help`` and ``--version`` never import numpy, xarray, zarr or dask.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, check, convert, catalog and preview HyperSpy .zspy stores "
        "(directories, zip files, S3 and any fsspec URL).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on an error, show the full Python traceback (for bug reports)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (info, check, convert, catalog, browse, preview):
        module.register(commands)
    return parser


def describe_error(exc: BaseException) -> str:
    """One line for an error: its message, with its type when that helps."""
    from intake_zspy.errors import ZspyError

    if isinstance(exc, KeyError) and not isinstance(exc, ZspyError) and exc.args:
        message = str(exc.args[0])
    else:
        message = str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.filename not in message:
        message = f"{exc.filename}: {exc.strerror or message}"
    known = (CliError, ZspyError, OSError, ValueError, TypeError, KeyError, ImportError)
    if not isinstance(exc, known) or not message:
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return " ".join(message.split())


@contextmanager
def _one_line_warnings(prog: str, stream: TextIO) -> Iterator[None]:
    """Show warnings as ``prog: warning: message`` lines (no source line, no path)."""

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = " ".join(str(message).split())
        stream.write(f"{prog}: warning: {text}\n")

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="xarray")
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``intake-zspy`` with ``argv`` (default: ``sys.argv[1:]``).

    Parameters
    ----------
    argv
        The arguments after the program name.

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    prog = f"{PROG} {args.command}"
    with _one_line_warnings(prog, sys.stderr):
        try:
            return int(args.func(args))
        except KeyboardInterrupt:
            sys.stderr.write(f"{prog}: interrupted\n")
            return 130
        except BrokenPipeError:  # e.g. piped into `head`: stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except Exception as exc:
            if args.traceback:
                raise
            sys.stderr.write(f"{prog}: error: {describe_error(exc)}\n")
            return EXIT_ERROR
