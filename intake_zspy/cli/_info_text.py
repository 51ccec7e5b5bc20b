"""Aligned text for ``intake-zspy info``: stores, signals, dims and metadata trees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from intake_zspy.cli import _common as c

__all__ = ["describe_compressor", "render_signal", "render_store", "render_tree"]

_SHUFFLES = {-1: "autoshuffle", 0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}


def describe_compressor(config: Mapping[str, Any] | None) -> str:
    """``"blosc zstd level 1, shuffle"``, ``"zstd level 3"``, ``"none"``."""
    if not config:
        return "none"
    cfg = dict(config)
    codec = str(cfg.pop("id", "?"))
    if codec == "blosc":
        shuffle = _SHUFFLES.get(int(cfg.get("shuffle", 1)), str(cfg.get("shuffle")))
        return f"blosc {cfg.get('cname', '?')} level {cfg.get('clevel', '?')}, {shuffle}"
    level = cfg.pop("level", cfg.pop("clevel", None))
    rest = ", ".join(f"{k}={v}" for k, v in sorted(cfg.items()) if v not in (None, False))
    text = codec if level is None else f"{codec} level {level}"
    return f"{text}, {rest}" if rest else text


def _range(axis: Mapping[str, Any]) -> tuple[str, str]:
    if axis["first"] is None:
        return "(empty)", ""
    span = f"{c.format_number(axis['first'])} .. {c.format_number(axis['last'])}"
    if axis["axis_type"] == "UniformDataAxis" and axis["scale"] is not None:
        return span, c.format_number(axis["scale"])
    return span, "non-uniform" if axis["axis_type"] == "DataAxis" else "functional"


def render_signal(doc: Mapping[str, Any]) -> list[str]:
    """Aligned text lines for one signal's description."""
    shape = "(" + ", ".join(map(str, doc["shape"])) + ")"
    chunks = "(" + ", ".join(map(str, doc["chunks"])) + ")"
    kind = doc["signal_type"] or "(none)"
    if doc["package"]:
        kind += f"  [{doc['package']} {doc['package_version']}]".rstrip()
    ratio = ""
    if doc["nbytes"] and doc["stored_bytes"]:
        ratio = f" (ratio {doc['nbytes'] / doc['stored_bytes']:.2f})"
    each = f" of {c.format_bytes(doc['chunk_bytes'])}" if doc["chunk_bytes"] else ""
    plural = "s" if doc["chunk_count"] != 1 else ""
    size = f"{c.format_bytes(doc['stored_bytes'])} stored{ratio}"
    if doc["nbytes"] is not None:
        size = f"{c.format_bytes(doc['nbytes'])} uncompressed, {size}"
    rows = [
        ["title", doc["title"] or "(none)"],
        ["signal type", kind],
        ["data", f"{doc['dtype']} {shape}{'  ragged' if doc['ragged'] else ''}"],
        ["hyperspy", f"{doc['hyperspy']}  (navigation|signal)"],
        [
            "chunks",
            f"{chunks}: {doc['chunk_count']} chunk{plural}{each}, {doc['stored_chunks']} stored",
        ],
        ["compressor", describe_compressor(doc["compressor"])],
        ["size", size],
    ]
    if doc["models"]:
        rows.append(["models", ", ".join(doc["models"])])
    if doc["learning_results"]:
        rows.append(["analysis", "learning results (decomposition)"])
    lines = [f"{doc['path']}", *c.table(rows)]
    axes = [["dim", "size", "units", "range", "step", "role"]]
    for a in doc["dims"]:
        role = {True: "navigation", False: "signal"}.get(a["navigate"], "?")
        axes.append([a["dim"], str(a["size"]), a["units"] or "-", *_range(a), role])
    lines.append("  dims")
    lines.extend(c.table(axes, indent="    "))
    for key in ("metadata", "original_metadata"):
        if key in doc:
            lines.append(f"  {key}")
            lines.extend(render_tree(doc[key], indent="    "))
    return lines


def _format_name(doc: Mapping[str, Any]) -> str:
    """``zspy``, or ``HyperSpy .hspy`` for an HDF5 file."""
    return "HyperSpy .hspy" if doc.get("file_format") == "HyperSpy" else "zspy"


def render_store(doc: Mapping[str, Any]) -> list[str]:
    """Aligned text lines for a store's description."""
    count = len(doc["signals"])
    lines = [
        doc["url"],
        *c.table(
            [
                [
                    "store",
                    f"{doc['store_kind']}, {_format_name(doc)} format {doc['format_version'] or '?'}",
                ],
                [
                    "contents",
                    (
                        f"{count} signal{'s' if count != 1 else ''}, {doc['keys']} keys, "
                        f"{c.format_bytes(doc['stored_bytes'])}"
                        f"{', consolidated metadata' if doc['consolidated'] else ''}"
                    ),
                ],
            ]
        ),
    ]
    for sig in doc["signals"]:
        lines.append("")
        lines.extend(render_signal(sig))
    return lines


def _leaf(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.size <= 8 and value.dtype.fields is None and value.dtype.kind != "O":
            return f"array({value.tolist()}, dtype={value.dtype})"
        return f"<array {value.dtype} {value.shape}>"
    if isinstance(value, str):
        return value if value.strip() == value and value else repr(value)
    return " ".join(repr(value).split())


def render_tree(tree: Mapping[str, Any], indent: str = "") -> list[str]:
    """A nested dictionary as a tree, like HyperSpy's metadata browser."""
    lines: list[str] = []
    items = list(tree.items())
    for i, (key, value) in enumerate(items):
        last = i == len(items) - 1
        branch, further = ("└── ", "    ") if last else ("├── ", "│   ")
        if isinstance(value, Mapping) and value:
            lines.append(f"{indent}{branch}{key}")
            lines.extend(render_tree(value, indent + further))
        else:
            shown = "{}" if isinstance(value, Mapping) else _leaf(value)
            lines.append(f"{indent}{branch}{key} = {shown}")
    return lines
