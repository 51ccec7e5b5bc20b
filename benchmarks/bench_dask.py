"""The dask path against the eager one, raw zarr 3 and the floors; before and after.

One persistent measuring process per source tree (the checkout, and with ``--before`` a
``git worktree`` of an older commit, first on its ``PYTHONPATH``); the trees and the cases
alternate round by round, so drifting machine load hits them alike. Every case reads the
1.07 GB 4D-STEM store (16 chunks of 19x19x256x256 float32), locally and from the S3 lab:

- ``eager``: ``open_dataset(url)["data"].values``;
- ``dask``: ``open_dataset(url, chunks={})["data"].compute()``;
- ``to_dask``: ``ZspySource(url).to_dask()["data"].compute()``;
- ``blocks``: the same graph computed to its blocks, without dask's final assembly;
- ``zarr3``: ``zarr.open_array(url, path=..., zarr_format=2)[...]``;
- floors: ``decode`` (every chunk's bytes, already in memory, decompressed by one thread
  per core into a reused buffer), ``assembly`` (numpy copying the 16 blocks into one
  array, as dask's ``compute`` does at the end: ``dask.array.core.concatenate3``) and,
  remotely, ``get`` (s3fs GET of every chunk object, all at once, nothing decoded).

Times exclude interpreter start and imports; each remote run uses a new s3fs filesystem
and the proxy's counters are reset before it. Memory is made warm before every timed run
(``_common.memory.warm_memory``): on this VM a page the process touches for the first time costs
0.3-1.8 s per GiB when the guest had handed it back to the host (which it does a few
seconds after it is freed), about 0.1 s when it was just freed; the ``touch_*`` rows
measure both. Usage::

    git worktree add /tmp/before-11 <commit>
    python benchmarks/bench_dask.py --before /tmp/before-11 [--rounds 3] [--docs]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SERVE = "--serve" in sys.argv  # a measuring process: the tree under test comes first
if not SERVE and str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

if not SERVE:
    from benchmarks._common.lab import Lab, add_lab_options
    from benchmarks._common.paths import BUCKET, DATA_DIR, DOCS, STEM
    from benchmarks._common.report import command_line, log, save_results, utc_date, write_section

ARRAY = "Experiments/4D-STEM/data"
LIBRARY_CASES = ("eager", "dask", "to_dask", "blocks")
FLOOR_CASES = ("decode", "assembly", "zarr3")
TOUCH_CASES = ("touch_warm", "touch_cold")
WHAT = {
    "eager": 'intake_zspy `open_dataset(url)["data"].values`',
    "dask": 'intake_zspy `open_dataset(url, chunks={})["data"].compute()`',
    "to_dask": '`ZspySource(url).to_dask()["data"].compute()`',
    "blocks": "same dask graph, computed to its 16 blocks (no final assembly)",
    "zarr3": "zarr 3 `zarr.open_array(url, path=..., zarr_format=2)[...]`",
    "decode": "floor: decompress every chunk (bytes in memory) into a reused buffer, 1 thread per core",
    "assembly": "floor: numpy copies the 16 blocks into one array (dask's final `concatenate3`)",
    "get": "floor: s3fs GET of every chunk object, all at once, no decoding",
    "touch_warm": "memory: first touch of 1.07 GB just after freeing 3 GiB (how every row runs)",
    "touch_cold": "memory: first touch of 1.07 GB, 10 s after freeing (the VM's host took it back)",
}
STORE_BYTES = 64 * 64 * 256 * 256 * 4


@functools.cache
def _memory() -> Any:
    """``benchmarks/_common/memory.py`` of this checkout, loaded by path: a measuring
    process has an older tree first on its path, whose ``_common`` may lack it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_bench_memory", Path(__file__).resolve().parent / "_common" / "memory.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the measuring process --------------------------------------------------------------


def _chunk_bytes(url: str, options: dict[str, Any]) -> list[bytes]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **options)
    paths = [p for p in fs.find(f"{root}/{ARRAY}") if not p.rsplit("/", 1)[-1].startswith(".z")]
    return list(fs.cat(paths).values())


def _cpu_ticks() -> tuple[int, int]:
    """(all, idle) clock ticks of the machine's CPUs so far, from ``/proc/stat``."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def _run(case: str, url: str, options: dict[str, Any]) -> dict[str, float]:
    """Run ``case`` once: its ``seconds`` (what is timed depends on the case) and, for
    the reads, how ``busy`` the machine's cores were meanwhile (0-1)."""
    import dask
    import numcodecs
    import numpy as np

    import intake_zspy

    opts = options or None
    memory = _memory()
    warm_memory = memory.warm_memory
    if case.startswith("touch_"):
        warm_memory()
        if case == "touch_cold":
            time.sleep(10)
        return {"seconds": float(memory.touch(STORE_BYTES))}
    if case in ("decode", "assembly"):  # what they work on is prepared untimed
        if case == "decode":
            raws = _chunk_bytes(url, options)
            codec = numcodecs.Blosc()
            from concurrent.futures import ThreadPoolExecutor
            from threading import local

            mine = local()

            def decode(raw: bytes) -> None:
                if not hasattr(mine, "buf"):
                    mine.buf = np.empty(19 * 19 * 256 * 256, "f4")
                codec.decode(raw, out=mine.buf)

            warm_memory()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
                list(pool.map(decode, raws))
            return {"seconds": time.perf_counter() - t0}
        from dask.array.core import concatenate3

        lazy = intake_zspy.open_dataset(url, storage_options=opts, chunks={})["data"].data
        nested = np.empty(lazy.numblocks, dtype=object)
        for i, block in enumerate(dask.compute(*lazy.to_delayed().ravel())):
            nested.flat[i] = block
        warm_memory()
        t0 = time.perf_counter()
        concatenate3(nested.tolist())
        return {"seconds": time.perf_counter() - t0}
    result: Any
    warm_memory()
    all0, idle0 = _cpu_ticks()
    t0 = time.perf_counter()
    if case == "eager":
        result = intake_zspy.open_dataset(url, storage_options=opts)["data"].values
    elif case == "dask":
        result = intake_zspy.open_dataset(url, storage_options=opts, chunks={})["data"].compute()
    elif case == "to_dask":
        source = intake_zspy.ZspySource(url, storage_options=opts)
        result = source.to_dask()["data"].compute()
        source.close()
    elif case == "blocks":
        lazy = intake_zspy.open_dataset(url, storage_options=opts, chunks={})["data"].data
        result = dask.compute(*lazy.to_delayed().ravel())
    elif case == "zarr3":
        import zarr

        z = zarr.open_array(url, path=ARRAY, zarr_format=2, storage_options=opts)
        result = z[...]
    elif case == "get":
        result = _chunk_bytes(url, options)
    else:
        raise ValueError(case)
    seconds = time.perf_counter() - t0
    all1, idle1 = _cpu_ticks()
    del result
    return {"seconds": seconds, "busy": 1 - (idle1 - idle0) / max(1, all1 - all0)}


def serve() -> None:
    """Answer ``case url options`` lines with a JSON line each, until stdin closes."""
    import importlib

    for module in ("xarray", "dask.array", "numcodecs", "zarr", "s3fs", "intake_zspy.source"):
        importlib.import_module(module)
    importlib.import_module("intake_zspy.xarray_backend")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        case, url, options = json.loads(line)
        try:
            print(json.dumps(_run(case, url, options)), flush=True)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)


# -- the parent -----------------------------------------------------------------------------


class Worker:
    """A persistent measuring process over one source tree."""

    def __init__(self, tree: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(tree),
        )
        self.ask(None)

    def ask(self, request: list[Any] | None) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if request is not None:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def measure(
    workers: dict[str, Worker],
    where: str,
    url: str,
    options: dict[str, Any],
    rounds: int,
    lab: Lab | None,
) -> dict[str, dict[str, list[float]]]:
    """Interleaved rounds (the first one a warm-up): {case: {tree: [seconds]}}."""
    cases = [(c, t) for c in LIBRARY_CASES for t in workers]
    cases += [(c, "after") for c in FLOOR_CASES + (("get",) if lab else TOUCH_CASES)]
    out: dict[str, dict[str, list[float]]] = {}
    for r in range(rounds + 1):
        order = cases if r % 2 else list(reversed(cases))
        for case, tree in order:
            if lab is not None:
                lab.reset()
            reply = workers[tree].ask([case, url, options])
            seconds = reply["seconds"]
            extra = ""
            if lab is not None:
                stats = lab.stats()
                extra = f", {stats['total']} requests"
            log(f"  {where} round {r} {case:8s} {tree:6s} {seconds:.3f} s{extra}")
            if r:
                out.setdefault(case, {}).setdefault(tree, []).append(seconds)
                if "busy" in reply:
                    out[case].setdefault(f"{tree} busy", []).append(reply["busy"])
    return out


def _table(runs: dict[str, dict[str, list[float]]]) -> list[str]:
    med = {c: {t: statistics.median(v) for t, v in trees.items()} for c, trees in runs.items()}
    after = {c: m["after"] for c, m in med.items()}
    lines = [
        (
            "| what | before s | after s | after / before | zarr 3 / after | after / eager (after) "
            "| cores busy (after) |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for case, m in med.items():
        before = m.get("before")
        b = f"{before:.3f}" if before else ""
        change = f"{m['after'] / before:.2f}" if before else ""
        zarr = f"{after['zarr3'] / m['after']:.2f}x" if case in LIBRARY_CASES else ""
        eager = f"{m['after'] / after['eager']:.2f}x" if case in LIBRARY_CASES else ""
        busy = f"{m['after busy']:.0%}" if "after busy" in m else ""
        lines.append(
            f"| {WHAT[case]} | {b} | {m['after']:.3f} | {change} | {zarr} | {eager} | {busy} |"
        )
    if "get" in med:
        get, decode, eager_s = after["get"], after["decode"], after["eager"]
        lines += [
            "",
            (
                f"The GET floor alone keeps {med['get']['after busy']:.0%} of the cores busy (the "
                "client, the proxy and the S3 server run on them), so fetching and decoding "
                f"compete for the same CPU: the eager read takes {eager_s / max(get, decode):.2f}x "
                f"the larger floor and {eager_s / (get + decode):.2f}x the two one after the "
                f"other ({get + decode:.3f} s)."
            ),
        ]
    return lines


def main() -> int:
    if SERVE:
        serve()
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="source tree of the 'before' side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-only", action="store_true")
    parser.add_argument("--remote-only", action="store_true")
    parser.add_argument("--docs", action="store_true", help="rewrite its docs section")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    add_lab_options(parser)
    args = parser.parse_args()
    load0 = os.getloadavg()
    trees = {"after": REPO} | ({"before": args.before.resolve()} if args.before else {})
    workers = {name: Worker(tree) for name, tree in trees.items()}
    results: dict[str, Any] = {"rounds": args.rounds, "load_start": load0}
    try:
        if not args.remote_only:
            log("local: 4D-STEM store")
            results["local"] = measure(
                workers, "local", str(DATA_DIR / STEM), {}, args.rounds, None
            )
        if not args.local_only:
            lab = Lab(Path(args.lab_env))
            lab.config(latency_ms=args.latency_ms)
            url = f"s3://{BUCKET}/{STEM}"
            log(f"remote: {url} at +{args.latency_ms:g} ms")
            results["remote"] = measure(
                workers, "remote", url, lab.storage_options(), args.rounds, lab
            )
    finally:
        for worker in workers.values():
            worker.close()
    results["load_end"] = os.getloadavg()
    save_results("bench_dask", results)
    argv = [a for a in sys.argv[1:] if a != "--docs"]
    lines = [
        "<!-- BEGIN bench_dask.py output: generated, do not edit by hand -->",
        "",
        (
            f"Generated by `{command_line('bench_dask.py', [*argv, '--docs'])}` on {utc_date()}; "
            f"{os.cpu_count()} cores shared with the S3 lab and other work (load average "
            f"{load0[0]:.2f} at the start, {results['load_end'][0]:.2f} at the end). Median of "
            f"{args.rounds} interleaved rounds after a warm-up round; before = "
            f"`{args.before}` (the tree before issue 11), after = this checkout, each in its own "
            "persistent process. The 1.07 GB 4D-STEM store, 16 chunks. Every timed run "
            "starts right after touching and freeing 3 GiB (the `touch` rows: "
            "memory this VM's host has taken back costs up to ~1.8 s per GiB to touch again)."
        ),
        "",
    ]
    for where, title in (("local", "Local disk (warm page cache)"), ("remote", "S3 lab")):
        if where in results:
            lines += [f"**{title}**", "", *_table(results[where]), ""]
    lines.append("<!-- END bench_dask.py output -->")
    text = "\n".join(lines)
    print(text)
    if args.docs:
        write_section(
            DOCS, "bench_dask.py", text, "## Dask, eager and the floors, before and after"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
