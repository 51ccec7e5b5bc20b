"""Time HyperSpy's ``s.save()`` of a zspy store (runs INSIDE the HyperSpy venv).

``bench_write.py`` runs this script with the HyperSpy reference venv's python (see
``tests/hyperspy/env.py``) so that HyperSpy writes with its own stack (RosettaSciIO, zarr 2,
numcodecs, s3fs). Only ``s.save(...)`` is timed: interpreter start, imports, loading the
source signal (into memory for ``lazy: false``; ``hs.load(..., lazy=True)`` for ``lazy:
true``, so the lazy save also reads the source store) and removing an old destination happen
before the clock starts. Usage::

    python benchmarks/hyperspy_write_worker.py --serve   # one job per stdin line, one result line each

The job is ``{"src": "/local/source.zspy", "lazy": bool, "dest": DEST, "control":
"http://127.0.0.1:9001" | null, "repeats": int}`` where DEST is ``{"path": "/local/x.zspy"}``
(``s.save(path)``: HyperSpy's default ``NestedDirectoryStore``) or ``{"url":
"s3://bucket/key.zspy", "storage_options": {...}}`` (``s.save(zarr.storage.FSStore(url,
**storage_options))``, the documented way to save to a cloud store). A remote destination
gets a fresh key per repeat (``url`` + ``-<n>``), removed after the run. The eager signal is
loaded once and kept across jobs. The result is a JSON list with, per repeat, ``{"seconds",
"t0", "t1", "stats", "nbytes", "chunks"}``.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import hyperspy.api as hs
import zarr

from benchmarks._common.lab import proxy_call
from benchmarks._common.venv import serve

_EAGER: dict[str, Any] = {}


def _signal(src: str, lazy: bool) -> Any:
    if lazy:
        return hs.load(src, lazy=True)
    if src not in _EAGER:
        _EAGER.clear()
        _EAGER[src] = hs.load(src, lazy=False)
    return _EAGER[src]


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    control = job.get("control")
    lazy = bool(job.get("lazy", False))
    dest = job["dest"]
    results = []
    for _ in range(int(job.get("repeats", 1))):
        s = _signal(job["src"], lazy)
        fs = None
        if "path" in dest:
            shutil.rmtree(dest["path"], ignore_errors=True)
            target: Any = dest["path"]
            where = dest["path"]
        else:
            where = f"{dest['url']}-{uuid.uuid4().hex[:8]}"
            target = zarr.storage.FSStore(where, mode="w", **dest.get("storage_options", {}))
            fs = target.fs
        if control:
            proxy_call(control, "/reset", {})
        t0 = time.time()
        start = time.perf_counter()
        s.save(target, overwrite=True, show_progressbar=False)
        seconds = time.perf_counter() - start
        t1 = time.time()
        stats = proxy_call(control, "/stats") if control else None
        chunks = zarr.open(target if fs is not None else where, mode="r")[
            f"Experiments/{s.metadata.General.title or '__unnamed__'}/data"
        ].chunks
        if fs is not None:
            fs.rm(fs._strip_protocol(where), recursive=True)
        results.append(
            {
                "seconds": seconds,
                "t0": t0,
                "t1": t1,
                "stats": stats,
                "nbytes": int(s.data.nbytes),
                "chunks": list(chunks),
            }
        )
    return results


if __name__ == "__main__":
    sys.exit(serve(run_job))
