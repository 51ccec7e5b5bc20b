"""Byte counts as text, for the command line, reports and HTML views (standard library
only: the command line imports it at start)."""

from __future__ import annotations

__all__ = ["format_bytes"]


def format_bytes(n: int | None, unknown: str = "?") -> str:
    """``"1.2 MB"`` (decimal units); ``unknown`` for ``None``."""
    if n is None:
        return unknown
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
