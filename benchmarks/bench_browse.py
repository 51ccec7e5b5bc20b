"""``intake-zspy browse`` of 1,000 stores on the S3 lab: first run and incremental re-run.

1. ``make``: writes 1,000 small stores (an 8 x 8 x 64 float32 spectrum image each, with
   title, signal type, date and beam energy in their metadata) with ``to_zspy`` into
   ``.cache/browse-1000/`` and uploads them (direct endpoint, no added latency) to
   ``s3://zspy-bench/browse-1000/``; skips what exists.
2. ``run``: writes the site to ``s3://zspy-bench/browse-1000-site/`` through the latency
   proxy, three times, each in a fresh process (time, peak RSS): a first run (site
   emptied first), a re-run after rewriting 10 stores (only those are redrawn), and a
   re-run with nothing changed. Requests come from the proxy's log (those under the two
   prefixes, and the listings in the run's time window); the proxy's counters are not
   reset, so other benchmarks running at the same time are not disturbed.

Usage::

    python benchmarks/bench_browse.py make
    python benchmarks/bench_browse.py run [--docs]
    python benchmarks/bench_browse.py run --render .cache/bench-results/browse-<stamp>.json --docs
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._common.lab import Lab, add_lab_options
from benchmarks._common.paths import BUCKET, DOCS
from benchmarks._common.report import (
    command_line,
    log,
    save_results,
    section_markers,
    utc_date,
    write_section,
)

N_STORES = 1000
N_CHANGED = 10
LOCAL = REPO / ".cache" / "browse-1000"
PREFIX = "browse-1000"
SITE = "browse-1000-site"
TYPES = ("EELS", "EDS_TEM", "EELS", "")
HEADING = "## Browsing an archive: `intake-zspy browse`"

#: Runs in a fresh interpreter: one browse, then its wall time and peak RSS as JSON.
WORKER = """
import json, resource, sys, time
from intake_zspy.archive import browse_report
opts = json.loads(sys.argv[3])
t = time.perf_counter()
r = browse_report(sys.argv[1], sys.argv[2], storage_options=opts, target_storage_options=opts)
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                  * 1024, "drawn": r.drawn, "reused": r.reused, "stores": r.stores,
                  "without": r.without}))
"""


def store_name(i: int) -> str:
    return f"run-{i:04d}.zspy"


def write_store(i: int, path: Path, version: int = 0) -> None:
    """Store ``i`` (``version`` > 0: the same store with different data)."""
    import numpy as np
    import xarray as xr

    import intake_zspy

    rng = np.random.default_rng(i * 7 + version)
    energy = 100.0 + np.arange(64)
    data = (rng.random((8, 8, 1)) + 1) * np.exp(-((energy - 100 - i % 40) ** 2) / 50)
    ds = xr.Dataset(
        {"data": (("y", "x", "E"), data.astype("f4"))},
        coords={
            "y": ("y", np.arange(8.0), {"units": "nm"}),
            "x": ("x", np.arange(8.0), {"units": "nm"}),
            "E": ("E", energy, {"units": "eV", "navigate": False}),
        },
        attrs={
            "title": f"run {i} v{version}",
            "signal_type": TYPES[i % len(TYPES)],
            "metadata": {
                "General": {"date": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}", "time": "10:00:00"},
                "Acquisition_instrument": {"TEM": {"beam_energy": 200.0 + i % 3 * 100}},
            },
        },
    )
    intake_zspy.to_zspy(ds, path, overwrite=True)


def make(lab: Lab) -> None:
    """Write the stores locally and upload the missing ones."""
    LOCAL.mkdir(parents=True, exist_ok=True)
    for i in range(N_STORES):
        if not (LOCAL / store_name(i) / ".zmetadata").exists():
            write_store(i, LOCAL / store_name(i))
    fs = lab.fs(direct=True)
    lab.ensure_bucket()
    have = {p.split("/")[2] for p in fs.find(f"{BUCKET}/{PREFIX}/") if p.endswith("/.zmetadata")}
    missing = [store_name(i) for i in range(N_STORES) if store_name(i) not in have]
    log(f"uploading {len(missing)} stores to s3://{BUCKET}/{PREFIX}/")
    for k in range(0, len(missing), 50):
        put_stores(fs, [(LOCAL / n, n) for n in missing[k : k + 50]])


def put_stores(fs: Any, stores: list[tuple[Path, str]]) -> None:
    """Upload directory stores (local path, name under the prefix), all files in one batch."""
    lpaths: list[str] = []
    rpaths: list[str] = []
    for local, name in stores:
        for f in sorted(local.rglob("*")):
            if f.is_file():
                lpaths.append(str(f))
                rpaths.append(f"{BUCKET}/{PREFIX}/{name}/{f.relative_to(local).as_posix()}")
    fs.put(lpaths, rpaths)


def change(lab: Lab, version: int) -> None:
    """Rewrite the first :data:`N_CHANGED` stores with other data and upload them."""
    fs = lab.fs(direct=True)
    for i in range(N_CHANGED):
        path = LOCAL / f"changed-{store_name(i)}"
        shutil.rmtree(path, ignore_errors=True)
        write_store(i, path, version)
        fs.rm(f"{BUCKET}/{PREFIX}/{store_name(i)}", recursive=True)
        put_stores(fs, [(path, store_name(i))])
        shutil.rmtree(path)


def measured(lab: Lab, label: str) -> dict[str, Any]:
    """One browse in a fresh process, with the requests it made."""
    # a fresh process has cold caches; one filesystem instance for the whole run, as users get
    options = {k: v for k, v in lab.storage_options().items() if k != "skip_instance_cache"}
    t0 = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WORKER,
            f"s3://{BUCKET}/{PREFIX}/",
            f"s3://{BUCKET}/{SITE}/",
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    t1 = time.time()
    time.sleep(1.0)  # let the proxy flush its log
    rec: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    ops: dict[str, int] = {}
    for r in lab.requests_between(t0, t1):
        key = str(r.get("key") or "")
        if key.startswith((PREFIX, SITE)) or (r.get("op") == "ListObjectsV2" and not key):
            ops[r["op"]] = ops.get(r["op"], 0) + 1
    rec.update(label=label, requests=sum(ops.values()), by_op=ops)
    log(f"{label}: {rec['seconds']:.1f} s, {rec['requests']} requests, drawn {rec['drawn']}")
    return rec


def render(results: dict[str, Any]) -> str:
    begin, end = section_markers("bench_browse.py")
    lines = [
        begin,
        "",
        (
            f"`{results['command']}` on {results['date']}; S3 lab ({results['server']}) through "
            f"the latency proxy as it runs (+20 ms per request); {N_STORES} stores of 8x8x64 "
            "float32 (26 objects each); the site written to the same bucket."
        ),
        "",
        "| run | time | requests | peak RSS | thumbnails drawn | reused |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["runs"]:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(r["by_op"].items()))
        lines.append(
            f"| {r['label']} | {r['seconds']:.1f} s | {r['requests']} ({ops}) | "
            f"{r['peak_rss'] / 1e6:.0f} MB | {r['drawn']} | {r['reused']} |"
        )
    lines += [
        "",
        (
            "Each run is one fresh process (imports included). A first run reads, per store, "
            "its `.zmetadata` twice (the summary, then the thumbnail's open) and its one "
            "chunk, lists it once and PUTs its thumbnail. A re-run lists the prefix and "
            "reads the metadata documents again (that is the summary every row shows) but "
            "reads no array data and draws nothing for unchanged stores. Requests are those "
            "under the two prefixes in the proxy's log, plus every listing in the run's "
            "time window (other work sharing the lab may add a few listings)."
        ),
        "",
        end,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["make", "run"])
    parser.add_argument("--docs", action="store_true", help="rewrite the docs section")
    parser.add_argument("--render", type=Path, help="re-render a saved results JSON only")
    add_lab_options(parser)
    args = parser.parse_args()
    if args.render is not None:
        text = render(json.loads(args.render.read_text()))
        if args.docs:
            write_section(DOCS, "bench_browse.py", text, HEADING)
        print(text)
        return 0
    lab = Lab.running(args.lab_env)
    if lab is None:
        log(f"the S3 lab is not running ({args.lab_env})")
        return 2
    make(lab)
    if args.step == "make":
        return 0
    fs = lab.fs(direct=True)
    if fs.exists(f"{BUCKET}/{SITE}"):
        fs.rm(f"{BUCKET}/{SITE}", recursive=True)
    runs = [measured(lab, "first run")]
    change(lab, version=int(time.time()))
    runs.append(measured(lab, f"re-run, {N_CHANGED} stores changed"))
    runs.append(measured(lab, "re-run, nothing changed"))
    results = {
        "command": command_line("bench_browse.py", sys.argv[1:]),
        "date": utc_date(),
        "server": lab.server,
        "runs": runs,
    }
    save_results("browse", results)
    text = render(results)
    print(text)
    if args.docs:
        write_section(DOCS, "bench_browse.py", text, HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
