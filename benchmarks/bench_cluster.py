"""A dask.distributed reduction of the 4D-STEM store on the S3 lab, against one thread.

The intake source and its dask graph are pickled to a ``LocalCluster`` of 2 worker
processes (one thread each); every worker opens the store itself and fetches its chunks
from the S3 lab (no data passes through the scheduler: only the 256x256 result). Measured
side by side, in interleaved rounds after a warm-up round:

- ``cluster``: ``client.compute(source.to_dask()["data"].sum(nav dims))``;
- ``single``: the same graph with dask's single-threaded scheduler in this process;
- ``eager``: ``source.read()["data"].values.sum(axis=(0, 1))``, the eager path and numpy;
- floors: decompressing every chunk (bytes in memory) with 1 thread and with 1 thread per
  core, the most that more processes can gain on this machine, and the s3fs GET of every
  chunk object at once.

The results are checked equal to the in-memory reduction. Usage::

    python benchmarks/bench_cluster.py [--rounds 3] [--docs]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._common.lab import Lab, add_lab_options
from benchmarks._common.memory import WARM_GIB, warm_memory
from benchmarks._common.paths import BUCKET, DOCS, STEM
from benchmarks._common.report import command_line, log, save_results, utc_date, write_section

ARRAY = "Experiments/4D-STEM/data"
WHAT = {
    "cluster": "`LocalCluster` (2 worker processes x 1 thread): "
    '`client.compute(src.to_dask()["data"].sum(nav))`',
    "single": 'same graph, `scheduler="single-threaded"`',
    "eager": '`src.read()["data"].values.sum(axis=(0, 1))` (eager path + numpy)',
    "decode1": "floor: decompress every chunk (bytes in memory), 1 thread",
    "decode2": "floor: decompress every chunk (bytes in memory), 1 thread per core",
    "get": "floor: s3fs GET of every chunk object, all at once",
}


def chunk_bytes(url: str, options: dict[str, Any]) -> list[bytes]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **options)
    paths = [p for p in fs.find(f"{root}/{ARRAY}") if not p.rsplit("/", 1)[-1].startswith(".z")]
    return list(fs.cat(paths).values())


def decode_all(raws: list[bytes], threads: int) -> None:
    import numcodecs
    import numpy as np

    codec = numcodecs.Blosc()
    bufs: dict[int, Any] = {}

    def decode(raw: bytes) -> None:
        import threading

        me = threading.get_ident()
        if me not in bufs:
            bufs[me] = np.empty(19 * 19 * 256 * 256, "f4")
        codec.decode(raw, out=bufs[me])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(decode, raws))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", action="store_true", help="rewrite its docs section")
    add_lab_options(parser)
    args = parser.parse_args()

    import numpy as np
    from distributed import Client, LocalCluster

    from intake_zspy import ZspySource

    lab = Lab(Path(args.lab_env))
    lab.config(latency_ms=args.latency_ms)
    url = f"s3://{BUCKET}/{STEM}"
    load0 = os.getloadavg()
    source = ZspySource(url, storage_options=lab.storage_options())
    nav = list(source.partition_dims)
    graph_bytes = len(pickle.dumps(source.to_dask()["data"].sum(nav).data.__dask_graph__()))
    raws = chunk_bytes(url, lab.storage_options())
    expected = np.zeros((256, 256), "f4")
    results: dict[str, list[float]] = {k: [] for k in WHAT}
    requests: dict[str, int] = {}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):

        def run(case: str) -> Any:
            if case == "cluster":
                return client.compute(source.to_dask()["data"].sum(nav)).result().values
            if case == "single":
                lazy = source.to_dask()["data"].sum(nav)
                return lazy.compute(scheduler="single-threaded").values
            if case == "eager":
                ds = source.read()
                source.close()  # the next read opens the store anew
                return ds["data"].values.sum(axis=(0, 1))
            if case == "get":
                return chunk_bytes(url, lab.storage_options())
            return decode_all(raws, 1 if case == "decode1" else os.cpu_count() or 2)

        for r in range(args.rounds + 1):
            for case in WHAT if r % 2 else reversed(WHAT):
                warm_memory()
                client.run(warm_memory)
                lab.reset()
                t0 = time.perf_counter()
                out = run(case)
                seconds = time.perf_counter() - t0
                requests[case] = int(lab.stats()["total"])
                if case in ("cluster", "single", "eager"):
                    if case == "eager" and r == 0:
                        expected = out
                    np.testing.assert_allclose(out, expected, rtol=1e-5)
                log(f"  round {r} {case:8s} {seconds:.3f} s, {requests[case]} requests")
                if r:
                    results[case].append(seconds)
    med = {k: statistics.median(v) for k, v in results.items()}
    load1 = os.getloadavg()
    save_results("bench_cluster", {"runs": results, "requests": requests, "graph": graph_bytes})
    argv = [a for a in sys.argv[1:] if a != "--docs"]
    lines = [
        "<!-- BEGIN bench_cluster.py output: generated, do not edit by hand -->",
        "",
        (
            f"Generated by `{command_line('bench_cluster.py', [*argv, '--docs'])}` on "
            f"{utc_date()}; {os.cpu_count()} cores shared by the client, the workers, the "
            f"proxy and the S3 server (load average {load0[0]:.2f} at the start, "
            f"{load1[0]:.2f} at the end); S3 lab at +{args.latency_ms:g} ms. Median of "
            f"{args.rounds} interleaved rounds after a warm-up round; the cluster is started "
            f"before the clock. The pickled graph of the reduction is {graph_bytes / 1e3:.1f} "
            "kB (the source's URL and options, no data); every result equals the in-memory "
            f"reduction. Every run starts right after this process and each worker touched "
            f"and freed {WARM_GIB} GiB (see `warm_memory` in `benchmarks/_common/memory.py`)."
        ),
        "",
        "| what | median s | min-max s | requests | single-threaded / this |",
        "|---|---|---|---|---|",
    ]
    for case, what in WHAT.items():
        v = results[case]
        lines.append(
            f"| {what} | {med[case]:.3f} | {min(v):.3f}-{max(v):.3f} | {requests[case]} | "
            f"{med['single'] / med[case]:.2f}x |"
        )
    lines += [
        "",
        (
            f"The cluster runs the reduction {med['single'] / med['cluster']:.2f}x as fast as "
            f"one thread; decoding alone gains {med['decode1'] / med['decode2']:.2f}x from a "
            "second thread on this machine, where the S3 server and the proxy share the "
            "two cores."
        ),
        "",
        "<!-- END bench_cluster.py output -->",
    ]
    text = "\n".join(lines)
    print(text)
    if args.docs:
        write_section(DOCS, "bench_cluster.py", text, "## dask.distributed: a 2-process cluster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
