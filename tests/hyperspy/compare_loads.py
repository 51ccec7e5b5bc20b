"""Check that HyperSpy loads a converted store equal to its source, pair by pair.

Runs **inside the HyperSpy virtual environment** (see ``env.py``)::

    python tests/hyperspy/compare_loads.py SOURCE TARGET [SOURCE TARGET ...]

For each pair, ``hs.load`` both and compare every signal: data (NaN equal to NaN,
ragged items one by one), dtype, axes (``axes_manager.as_dictionary()``), metadata but
``General.FileIO`` (the record of loads and saves), original_metadata, learning
results and stored models (by name and component). Prints one JSON object per pair,
``{"source", "target", "signals", "problems": [...]}``, on one line each, and exits
with status 1 when any pair has problems.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from typing import Any

import numpy as np

warnings.filterwarnings("ignore")


def _equal(a: Any, b: Any, path: str, problems: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            problems.append(f"{path}: keys {sorted(set(a) ^ set(b))} differ")
        for key in set(a) & set(b):
            _equal(a[key], b[key], f"{path}.{key}", problems)
        return
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if type(a) is not type(b):
            problems.append(f"{path}: {type(a).__name__} != {type(b).__name__}")
        if len(a) != len(b):
            problems.append(f"{path}: lengths {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal(x, y, f"{path}[{i}]", problems)
        return
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            problems.append(f"{path}: shapes {a.shape} != {b.shape}")
        elif a.dtype.kind == "O" or b.dtype.kind == "O":
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                _equal(x, y, f"{path}[{i}]", problems)
        elif not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            problems.append(f"{path}: values differ")
        return
    if hasattr(a, "as_dictionary") and hasattr(b, "as_dictionary"):
        _equal(a.as_dictionary(), b.as_dictionary(), path, problems)
        return
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return
    if a != b:
        problems.append(f"{path}: {a!r} != {b!r}")


def _without_fileio(metadata: dict[str, Any]) -> dict[str, Any]:
    metadata.get("General", {}).pop("FileIO", None)
    return metadata


def compare_signals(src: Any, dst: Any) -> list[str]:
    """Differences between two loaded signals (empty when HyperSpy sees no difference)."""
    problems: list[str] = []
    if type(src) is not type(dst):
        problems.append(f"class {type(src).__name__} != {type(dst).__name__}")
    if src.data.dtype != dst.data.dtype:
        problems.append(f"dtype {src.data.dtype} != {dst.data.dtype}")
    _equal(np.asarray(src.data), np.asarray(dst.data), "data", problems)
    _equal(src.axes_manager.as_dictionary(), dst.axes_manager.as_dictionary(), "axes", problems)
    _equal(
        _without_fileio(src.metadata.as_dictionary()),
        _without_fileio(dst.metadata.as_dictionary()),
        "metadata",
        problems,
    )
    _equal(
        src.original_metadata.as_dictionary(),
        dst.original_metadata.as_dictionary(),
        "original_metadata",
        problems,
    )
    for attr in ("factors", "loadings", "explained_variance"):
        a = getattr(src.learning_results, attr, None)
        b = getattr(dst.learning_results, attr, None)
        _equal(a, b, f"learning_results.{attr}", problems)
    models_src = sorted(src.models._models.keys())
    models_dst = sorted(dst.models._models.keys())
    if models_src != models_dst:
        problems.append(f"models {models_src} != {models_dst}")
    for name in models_src:
        a = [c["name"] for c in src.models._models[name]._dict["components"]]
        b = [c["name"] for c in dst.models._models[name]._dict["components"]]
        _equal(a, b, f"models.{name}.components", problems)
    return problems


def main(argv: list[str]) -> int:
    """Compare each ``SOURCE TARGET`` pair of ``argv``."""
    import hyperspy.api as hs

    hs.set_log_level("ERROR")
    logging.getLogger("rsciio").setLevel(logging.ERROR)
    failed = False
    for source, target in zip(argv[::2], argv[1::2], strict=True):
        loaded = [hs.load(source), hs.load(target)]
        src, dst = ([x] if not isinstance(x, list) else x for x in loaded)
        problems = [] if len(src) == len(dst) else [f"{len(src)} != {len(dst)} signals"]
        for i, (a, b) in enumerate(zip(src, dst, strict=False)):
            problems += [f"signal {i}: {p}" for p in compare_signals(a, b)]
        failed = failed or bool(problems)
        record = {"source": source, "target": target, "signals": len(dst), "problems": problems}
        print(json.dumps(record))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
