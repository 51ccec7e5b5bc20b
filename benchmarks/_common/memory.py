"""Resident and peak memory of this process (Linux), and fresh processes to measure in."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self


def rss_bytes() -> int:
    """Resident set size of this process, in bytes (cheap enough to sample often)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples this process's RSS every few milliseconds in a thread; keeps the peak."""

    def __init__(self) -> None:
        self.base = rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


#: GiB touched and freed before a timed run, more than the runs here allocate.
WARM_GIB = 3


def touch(nbytes: int) -> float:
    """Allocate ``nbytes``, write one byte per page, free them; the seconds it took."""
    import numpy as np

    t0 = time.perf_counter()
    block = np.empty(nbytes, np.uint8)
    block[:: os.sysconf("SC_PAGE_SIZE")] = 1
    seconds = time.perf_counter() - t0
    del block
    return seconds


def warm_memory(gib: float = WARM_GIB) -> None:
    """Touch and free ``gib`` GiB, so that a timed run's allocations find pages the VM's
    host still backs.

    This VM's host takes freed guest memory back a few seconds after it is freed (free
    page reporting); touching such memory again costs 0.3-1.8 s per GiB, against about
    0.1 s for memory just freed. Without this, a run's time depends on how long ago the
    memory it allocates was last used.
    """
    touch(int(gib * 2**30))


def status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss(after_reset: bool) -> int:
    """``VmHWM`` when :func:`reset_peak_rss` worked, else ``ru_maxrss`` (which survives exec)."""
    if after_reset:
        return status_bytes("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_script(
    script: str | Path, *args: str, timeout: float | None = None, tree: Path | None = None
) -> dict[str, Any]:
    """Run ``script`` with this python in a fresh process; its last stdout line, as JSON.

    With ``tree``, that source tree comes first on the process's ``PYTHONPATH`` (the
    script must not put its own checkout before it).
    """
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
    )
    if proc.returncode:
        what = " ".join([Path(script).name, *args[:1]])
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
