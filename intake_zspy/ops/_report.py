"""What ``intake-zspy check`` found: per array (:class:`ArrayCheck`) and in all (:class:`Report`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArrayCheck", "Report", "shown"]

#: Keys listed per array in messages and JSON (counts are always complete).
SHOWN_KEYS = 10
JSON_KEYS = 1000


@dataclass
class ArrayCheck:
    """What ``check`` found about one array."""

    path: str
    shape: list[int] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    dtype: str = ""
    fill_value: Any = None
    expected: int = 0
    present: int = 0
    missing: list[str] = field(default_factory=list)
    corrupted: dict[str, str] = field(default_factory=dict)
    stray: list[str] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> str:
        """One line: counts of missing, corrupted and stray chunk keys."""
        if self.error:
            return f"invalid array: {self.error}"
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} of {self.expected} chunks missing")
        if self.corrupted:
            parts.append(f"{len(self.corrupted)} corrupted")
        if self.stray:
            parts.append(f"{len(self.stray)} keys outside the chunk grid")
        return ", ".join(parts) or "ok"

    def as_json(self) -> dict[str, Any]:
        """The array's part of ``check --json``."""
        return {
            "path": self.path,
            "shape": self.shape,
            "chunks": self.chunks,
            "dtype": self.dtype,
            "fill_value": self.fill_value,
            "expected_chunks": self.expected,
            "stored_chunks": self.present,
            "missing_chunks": len(self.missing),
            "missing_keys": self.missing[:JSON_KEYS],
            "corrupted": dict(itertools.islice(self.corrupted.items(), JSON_KEYS)),
            "stray_keys": self.stray[:JSON_KEYS],
            "error": self.error,
        }


@dataclass
class Report:
    """Everything ``check`` found; ``problems`` make it fail, ``warnings`` do not."""

    url: str
    kind: str = "?"
    format_version: str = ""
    signals: list[str] = field(default_factory=list)
    documents: int = 0
    bad_documents: dict[str, str] = field(default_factory=dict)
    arrays: list[ArrayCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_read: int = 0
    bytes_read: int = 0

    def add_array_findings(self) -> None:
        """Turn what the arrays hold into problems (corrupted) and warnings (missing, stray)."""
        for a in self.arrays:
            prefix = f"{a.path}/"
            for key, reason in a.corrupted.items():
                self.problems.append(f"corrupted chunk {key}: {reason}")
            if a.missing:
                self.warnings.append(
                    f"{a.path}: {len(a.missing)} of {a.expected} chunks missing (read as fill "
                    f"value {a.fill_value}): {shown(a.missing, prefix)}"
                )
            if a.stray:
                self.warnings.append(
                    f"{a.path}: {len(a.stray)} key(s) outside the chunk grid "
                    f"(shape {tuple(a.shape)}, chunks {tuple(a.chunks)}): {shown(a.stray, prefix)}"
                )

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON types (``check --json``)."""
        return {
            "url": self.url,
            "store_kind": self.kind,
            "format_version": self.format_version,
            "signals": self.signals,
            "documents": self.documents,
            "bad_documents": self.bad_documents,
            "arrays": [a.as_json() for a in self.arrays],
            "chunks_read": self.chunks_read,
            "bytes_read": self.bytes_read,
            "missing_chunks": sum(len(a.missing) for a in self.arrays),
            "corrupted_chunks": sum(len(a.corrupted) for a in self.arrays),
            "problems": self.problems,
            "warnings": self.warnings,
        }


def shown(keys: Iterable[str], prefix: str) -> str:
    keys = list(keys)
    text = ", ".join(k.removeprefix(prefix) for k in keys[:SHOWN_KEYS])
    return text + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")
