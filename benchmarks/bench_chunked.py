"""Peak memory and speed of streaming a multi-GB store with intake's ``read_chunked()``.

The intake source promises that iterating ``read_chunked()`` holds about one partition
at a time. This script writes a store larger than a few partitions (default 3 GiB of
float32, whole spectra per chunk), then, each in a fresh subprocess so that peak RSS is
its own, measures:

- ``read_chunked()``: iterate every partition and reduce it (sum), the streaming way;
- ``read()``: load the whole dataset, the physical reference for memory;
- the raw floor: read and decompress every chunk file with numcodecs, one at a time.

It prints a table and, with ``--docs``, replaces its section of ``docs/benchmarks.md``.

Usage::

    python benchmarks/bench_chunked.py [--gib 3] [--docs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".cache" / "bench-data"
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- BEGIN bench_chunked.py output: generated, do not edit by hand -->"
END = "<!-- END bench_chunked.py output -->"


def make_store(path: Path, gib: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A dask-generated EELS-like cube written with to_zspy (chunks: 16 rows of spectra)."""
    import dask.array as da
    import numpy as np
    import xarray as xr

    import intake_zspy

    n_energy = 2048
    rows = max(16, round(gib * 2**30 / 4 / n_energy / 256 / 16) * 16)
    shape, chunks = (rows, 256, n_energy), (16, 256, n_energy)
    if path.exists():
        return shape, chunks
    rng = da.random.default_rng(0)
    energy = np.linspace(100.0, 1100.0, n_energy, dtype="f4")
    background = (1e6 * energy**-2.0).astype("f4")
    data = rng.poisson(lam=50.0, size=shape, chunks=chunks).astype("f4") + background
    cube = xr.DataArray(
        data,
        dims=("y", "x", "Energy loss"),
        coords={"Energy loss": ("Energy loss", energy, {"units": "eV"})},
        name="cube",
    )
    intake_zspy.to_zspy(cube, path)
    return shape, chunks


def _rss() -> int:
    """Resident set size of this process, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples this process's RSS every few milliseconds in a thread; keeps the peak."""

    def __init__(self) -> None:
        self.base = _rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def child(mode: str, path: str) -> None:
    """Run one measurement in this (fresh) process; print JSON."""
    import numcodecs
    import numpy as np

    import intake_zspy
    import intake_zspy.source

    total = 0.0
    parts = 0
    source = intake_zspy.ZspySource(path)
    source.discover()  # metadata, and xarray's lazy imports, before the clock starts
    with PeakRSS() as rss:
        start = time.perf_counter()
        if mode == "read_chunked":
            for part in source.read_chunked():
                total += float(part["data"].values.sum())  # numpy: no skipna temporaries
                parts += 1
        elif mode == "read":
            total = float(source.read()["data"].values.sum())
            parts = 1
        else:  # floor: chunk files one at a time, decompressed, reduced
            data = next(Path(path, "Experiments").glob("*/data"))
            meta = json.loads((data / ".zarray").read_text())
            codec = numcodecs.get_codec(meta["compressor"])
            files = sorted(p for p in data.rglob("*") if p.is_file() and p.name != ".zarray")
            for chunk in files:
                total += float(np.frombuffer(codec.decode(chunk.read_bytes()), "f4").sum())
                parts += 1
        seconds = time.perf_counter() - start
    result = {"seconds": seconds, "above": rss.peak - rss.base, "parts": parts, "total": total}
    print(json.dumps(result))


def measure(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=float, default=3.0, help="store size (GiB of float32)")
    parser.add_argument("--docs", action="store_true", help="rewrite its docs section")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    path = DATA / f"cube_{args.gib:g}gib.zspy"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shape, chunks = make_store(path, args.gib)
    made = time.perf_counter() - t0
    nbytes = 4 * shape[0] * shape[1] * shape[2]
    part = 4 * chunks[0] * chunks[1] * chunks[2]
    rows = {mode: measure(mode, path) for mode in ("read_chunked", "floor", "read")}
    gib = 2**30
    lines = [
        BEGIN,
        "",
        (
            f"Generated by `python benchmarks/bench_chunked.py --gib {args.gib:g} --docs` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, "
            f"Python {platform.python_version()}. Store: {shape} float32 "
            f"({nbytes / gib:.2f} GiB) written by `to_zspy` from dask in {made:.0f} s (or reused), "
            f"chunks {chunks} ({part / 2**20:.0f} MiB, one partition each). Local disk, warm "
            "page cache. Memory: the peak resident size above the one after imports, "
            "sampled every 2 ms in a fresh process per row."
        ),
        "",
        "| what | partitions | seconds | GB/s | peak memory | in partitions |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "read_chunked": "`ZspySource.read_chunked()`, each partition summed",
        "floor": "floor: chunk files read + decompressed one by one (numcodecs)",
        "read": "`ZspySource.read()` (whole dataset in memory)",
    }
    for mode, row in rows.items():
        lines.append(
            f"| {names[mode]} | {row['parts']:.0f} | {row['seconds']:.2f} | "
            f"{nbytes / row['seconds'] / 1e9:.2f} | {row['above'] / 2**20:.0f} MiB | "
            f"{row['above'] / part:.1f} |"
        )
    streaming = rows["read_chunked"]
    lines += [
        "",
        (
            f"Streaming holds {streaming['above'] / part:.1f} partitions at its peak, "
            f"{streaming['above'] / rows['read']['above']:.1%} of what loading the whole "
            f"dataset takes, at {rows['floor']['seconds'] / streaming['seconds']:.2f}x the "
            "speed of the single-threaded floor."
        ),
        "",
        END,
    ]
    text = "\n".join(lines)
    print(text)
    if args.docs:
        doc = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
        if BEGIN in doc:
            head, rest = doc.split(BEGIN, 1)
            doc = head + text + rest.split(END, 1)[1]
        else:
            doc = doc.rstrip() + "\n\n## Streaming with intake: `read_chunked()`\n\n" + text + "\n"
        DOCS.write_text(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
