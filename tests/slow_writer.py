"""A writer process for the crash-safety tests: ``to_zspy`` of slowly computed dask arrays.

Run as ``python tests/slow_writer.py JOBS_JSON [--delay S] [--blocks N]`` where ``JOBS_JSON``
is a list of ``{"url": ..., "storage_options": {...}, "overwrite": bool, "store_type": ...}``.
The jobs are written concurrently (one thread each), so one process can be killed in the
middle of several writes. Every dask block sleeps ``--delay`` seconds before returning, so
the parent can watch data chunks appear and kill this process (SIGKILL) mid-write. Block
``i`` holds the constant ``i`` (shape ``(N, 4, 8)``, chunks ``(1, 4, 8)``). Prints
``done <url>`` for every finished job.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr


def slow_block(block_id: tuple[int, ...] | None = None, *, delay: float) -> np.ndarray:
    time.sleep(delay)
    assert block_id is not None
    return np.full((1, 4, 8), float(block_id[0]), dtype="f4")


def slow_signal(blocks: int, delay: float) -> xr.DataArray:
    data = da.map_blocks(
        slow_block,
        delay=delay,
        chunks=((1,) * blocks, (4,), (8,)),
        dtype="f4",
        meta=np.empty((0, 0, 0), "f4"),
    )
    return xr.DataArray(data, dims=("t", "y", "x"), name="slow")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("jobs", help="JSON list of {url, storage_options, overwrite, store_type}")
    parser.add_argument("--delay", type=float, default=0.25)
    parser.add_argument("--blocks", type=int, default=40)
    args = parser.parse_args(argv)

    import intake_zspy

    errors: list[BaseException] = []

    def write(job: dict[str, Any]) -> None:
        try:
            url = intake_zspy.to_zspy(
                slow_signal(args.blocks, args.delay),
                job["url"],
                storage_options=job.get("storage_options") or {},
                overwrite=bool(job.get("overwrite")),
                store_type=job.get("store_type"),
            )
            print(f"done {url}", flush=True)
        except BaseException as exc:
            errors.append(exc)
            raise

    with dask.config.set(scheduler="threads", num_workers=2):
        threads = [threading.Thread(target=write, args=(job,)) for job in json.loads(args.jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
