"""Argument checks shared by the intake source and catalogs.

Every check runs before any I/O and raises :class:`TypeError` naming the bad value, so a
wrong catalog entry fails when it is made, not halfway through a read.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["Chunks", "check_chunks", "check_mapping", "check_no_extra_args", "check_urlpath"]

#: What ``chunks`` may be: ``None`` (stored chunks), an int, ``"auto"`` or dim -> size.
Chunks = int | str | Mapping[str, Any] | None


def check_urlpath(urlpath: Any) -> str:
    """``urlpath`` as a string; :class:`TypeError` unless a non-empty str or path."""
    if isinstance(urlpath, os.PathLike):
        urlpath = os.fspath(urlpath)
    if not isinstance(urlpath, str) or not urlpath:
        raise TypeError(
            "urlpath must be a non-empty path or fsspec URL string (e.g. 'run.zspy', "
            f"'s3://bucket/run.zspy'), not {urlpath!r}"
        )
    return urlpath


def check_chunks(chunks: Any) -> Chunks:
    """``chunks`` unchanged; :class:`TypeError` unless None, an int, a str or a dict."""
    if chunks is None or isinstance(chunks, str | Mapping):
        return chunks
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        return chunks
    raise TypeError(
        "chunks must be None (stored chunks), an int, 'auto' or a dict of dim -> chunk "
        f"size, not {type(chunks).__name__} {chunks!r}"
    )


def check_mapping(name: str, value: Any) -> dict[str, Any]:
    """A copy of the dict ``value`` (``{}`` for None); :class:`TypeError` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict or None, not {type(value).__name__} {value!r}")
    return dict(value)


def check_no_extra_args(owner: str, extra: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
    """Raise a :class:`TypeError` naming unknown arguments and the likely intended one.

    Catalog entries pass ``args`` as keywords; a misspelt one should say what to write.
    """
    if not extra:
        return
    unknown = sorted(extra)
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.5)
        if close:
            hints.append(f"did you mean {close[0]!r} for {name!r}?")
    plural = "s" if len(unknown) > 1 else ""
    raise TypeError(
        f"unknown argument{plural} {', '.join(repr(n) for n in unknown)}; {owner} takes "
        f"{', '.join(accepted)}" + (f" ({' '.join(hints)})" if hints else "")
    )
