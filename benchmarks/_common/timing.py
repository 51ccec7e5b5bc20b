"""Timed runs, interleaved rounds, medians and ranges."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from benchmarks._common.lab import request_shape
from benchmarks._common.report import log

if TYPE_CHECKING:
    from benchmarks._common.lab import Lab

T = TypeVar("T")

Case = Callable[[], dict[str, Any]]
"""One timed run: returns a record like :func:`timed`'s."""
Cases = dict[str, tuple[str, Case, Callable[[], object] | None]]
"""key -> (label, timed run, untimed warm-up or None), for :func:`interleaved`."""


def timed(fn: Callable[[], int], lab: Lab | None = None) -> dict[str, Any]:
    """Run ``fn`` (which returns the number of bytes it produced) once and time it.

    With a ``lab``, the proxy's counters are reset before and read after (``"stats"``).
    """
    gc.collect()
    if lab is not None:
        lab.reset()
    t0 = time.time()
    start = time.perf_counter()
    nbytes = fn()
    seconds = time.perf_counter() - start
    t1 = time.time()
    rec: dict[str, Any] = {"seconds": seconds, "t0": t0, "t1": t1, "nbytes": nbytes}
    if lab is not None:
        rec["stats"] = lab.stats()
    return rec


def in_process(fn: Callable[[], int], lab: Lab | None = None) -> Case:
    """A :data:`Case` timing ``fn`` in this process."""
    return lambda: timed(fn, lab)


def prepared(prep: Callable[[], Any], fn: Callable[[Any], int], lab: Lab | None = None) -> Case:
    """A :data:`Case`: ``prep()`` (untimed) then ``fn(prep's result)`` timed."""

    def run() -> dict[str, Any]:
        arg = prep()
        return timed(lambda: fn(arg), lab)

    return run


def round_robin(
    runs: dict[str, Callable[[], T]], rounds: int, after: Callable[[], object] | None = None
) -> dict[str, list[T]]:
    """Call every run once per round, round after round (``after()`` follows each call).

    Interleaving spreads slow drifts of the machine's load over all the runs alike, so
    their ratios hold up better than with back-to-back repeats.
    """
    out: dict[str, list[T]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            out[key].append(run())
            if after is not None:
                after()
    return out


def summarize(runs: Sequence[dict[str, Any]], lab: Lab | None = None) -> dict[str, Any]:
    """Median time, range; requests, ops and request chain of the median run."""
    if lab is not None:
        for run in runs:
            run.update(request_shape(lab.requests_between(run["t0"], run["t1"])))
    times = [r["seconds"] for r in runs]
    median_run = sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]
    out: dict[str, Any] = {
        "seconds": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "repeats": len(runs),
        "nbytes": runs[0]["nbytes"],
        "runs": [{k: v for k, v in r.items() if k not in ("t0", "t1")} for r in runs],
    }
    stats = median_run.get("stats")
    if stats:
        out["requests"] = stats["total"]
        out["by_op"] = stats["by_op"]
        out["bytes_out"] = stats.get("bytes_out")
        out["round_trips"] = median_run.get("round_trips")
        out["max_inflight"] = median_run.get("max_inflight")
    return out


def interleaved(cases: Cases, rounds: int, lab: Lab | None = None) -> dict[str, Any]:
    """The warm-ups (untimed), then every case once per round; :func:`summarize` each."""
    for _label, _run, warmup in cases.values():
        if warmup is not None:
            warmup()
    runs = round_robin({key: run for key, (_label, run, _warmup) in cases.items()}, rounds)
    out = {}
    for key, (label, _run, _warmup) in cases.items():
        out[key] = summarize(runs[key], lab)
        extra = f", {out[key]['requests']} requests" if "requests" in out[key] else ""
        log(f"  {label}: {out[key]['seconds']:.3f} s (median of {rounds}{extra})")
    return out
