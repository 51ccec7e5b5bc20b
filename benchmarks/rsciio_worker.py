"""Time RosettaSciIO reading a zspy store (runs INSIDE the HyperSpy venv).

``bench_read.py`` runs this script with the HyperSpy reference venv's python (see
``tests/hyperspy/env.py``) so that RosettaSciIO uses its own stack (zarr 2, numcodecs,
s3fs). Only the reading is timed: interpreter start, imports and an untimed warm-up (a full
read of a local ``warmup`` store, or one GET of a remote one's ``.zgroup``) happen before
the clock starts. Usage::

    python benchmarks/rsciio_worker.py '<job as JSON>'
    python benchmarks/rsciio_worker.py --serve      # one job per stdin line, one result line each

The job is ``{"store": STORE, "lazy": bool, "repeats": int, "consolidated": bool,
"warmup": STORE | null, "control": "http://127.0.0.1:9001" | null}`` where STORE is
``{"path": "/local/dir.zspy"}`` or ``{"url": "s3://bucket/key.zspy", "storage_options": {...}}``.

A remote store is a zarr 2 ``FSStore`` (fsspec/s3fs), as RosettaSciIO users open cloud
stores; ``consolidated: true`` wraps it in zarr 2's ``ConsolidatedMetadataStore`` (what
``zarr.open_consolidated`` does), because ``rsciio.zspy.file_reader`` itself calls
``zarr.open`` and never reads ``.zmetadata``. With ``lazy: false`` the data are read into
memory by the reader; with ``lazy: true`` only the metadata are (a dask array is built).

When ``control`` is the s3lab proxy's control URL, its request counters are reset before
each timed read and fetched after it. The result (the last line printed, or one line
per job with ``--serve``) is a JSON list with, per repeat, ``{"seconds", "t0", "t1",
"stats", "nbytes"}``; ``"repeats": 0`` only warms up.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np
import zarr
from rsciio.zspy import file_reader

from benchmarks._common.lab import proxy_call
from benchmarks._common.venv import serve


def _read(spec: dict[str, Any], lazy: bool, consolidated: bool) -> int:
    kwds: dict[str, Any] = {"mode": "r"}
    if "path" in spec:
        store: Any = spec["path"]  # file_reader opens local directories itself
    else:
        store = zarr.storage.FSStore(spec["url"], mode="r", **spec.get("storage_options", {}))
    if consolidated:  # what zarr.open_consolidated does
        kwds["chunk_store"] = store
        store = zarr.storage.ConsolidatedMetadataStore(store)
    signals = file_reader(store, lazy=lazy, **kwds)
    data = signals[0]["data"]
    if not lazy:
        data = np.asarray(data)
    return int(data.nbytes)


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    control = job.get("control")
    lazy = bool(job.get("lazy", False))
    consolidated = bool(job.get("consolidated", False))
    warmup = job.get("warmup")
    if warmup and "path" in warmup:
        _read(warmup, lazy=lazy, consolidated=False)
    elif warmup:  # one request: creates the first s3fs/aiobotocore client of the process
        zarr.storage.FSStore(warmup["url"], mode="r", **warmup.get("storage_options", {}))[
            ".zgroup"
        ]
    results = []
    for _ in range(int(job.get("repeats", 1))):
        if control:
            proxy_call(control, "/reset", {})
        t0 = time.time()
        start = time.perf_counter()
        nbytes = _read(job["store"], lazy=lazy, consolidated=consolidated)
        seconds = time.perf_counter() - start
        t1 = time.time()
        stats = proxy_call(control, "/stats") if control else None
        results.append({"seconds": seconds, "t0": t0, "t1": t1, "stats": stats, "nbytes": nbytes})
    return results


if __name__ == "__main__":
    sys.exit(serve(run_job))
