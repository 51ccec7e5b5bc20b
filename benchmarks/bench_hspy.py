"""HyperSpy ``.hspy`` (HDF5) files: convert to zspy, and read from object storage.

- **convert**: ``intake-zspy convert X.hspy DEST`` against HyperSpy's
  ``hs.load(X.hspy, lazy=True).save(DEST.zspy)`` in its own venv, to the local disk and to
  the S3 lab (through the latency proxy), for the 4D-STEM data saved by HyperSpy with its
  defaults (``stem_4d.hspy``: gzip, 19x19x256x256 chunks, 161 MB for 1.07 GB of float32)
  and without compression (``stem_4d_raw.hspy``, 1.07 GB on disk). Wall clock of the whole
  command, peak resident memory of the process (``wait4``), and the proxy's request
  counts for S3 targets.
- **read from S3**: ``open_dataset("s3://.../X.hspy", chunks={})`` then a full
  ``.sum().compute()``, through ``simplecache::`` (the file is downloaded once, then read
  locally) and with direct range reads (h5py through an s3fs file object), in a fresh
  process each; time to open, time to read, requests.

Needs ``benchmarks/make_data.py`` and ``benchmarks/make_hspy.py`` (HyperSpy venv) first,
and the S3 lab for the remote part. Usage::

    python benchmarks/bench_hspy.py [--local-only] [--docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._common.lab import Lab, add_lab_options
from benchmarks._common.paths import BUCKET, DATA_DIR, DOCS
from benchmarks._common.report import (
    log,
    ops_text,
    save_results,
    section_markers,
    utc_date,
    write_section,
)
from benchmarks._common.venv import ensure_s3fs_in_venv
from tests.hyperspy.env import hyperspy_python, subprocess_env

FILES = ("stem_4d.hspy", "stem_4d_raw.hspy")

HYPERSPY_CONVERT = """
import json, sys, logging, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import hyperspy.api as hs
s = hs.load(sys.argv[1], lazy=True)
dest = sys.argv[2]
if dest.startswith("s3://"):
    import zarr
    dest = zarr.storage.FSStore(dest, mode="w", **json.loads(sys.argv[3]))
s.save(dest, overwrite=True, show_progressbar=False)
"""

READ = """
import json, sys, time
import intake_zspy
url, options = sys.argv[1], json.loads(sys.argv[2])
t0 = time.perf_counter()
ds = intake_zspy.open_dataset(url, storage_options=options, chunks={})
t1 = time.perf_counter()
total = float(ds["data"].sum().compute())
t2 = time.perf_counter()
print(json.dumps({"open": t1 - t0, "read": t2 - t1, "sum": total}))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall clock and peak RSS of one command (a fresh process), and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{err[-3000:]}")
    return {"seconds": seconds, "peak_rss": usage.ru_maxrss * 1024, "stdout": out}


def with_requests(lab: Lab | None, run: Any) -> dict[str, Any]:
    if lab is not None:
        lab.reset()
    result: dict[str, Any] = run()
    if lab is not None:
        stats = lab.stats()
        result["requests"] = stats.get("total", 0)
        result["by_op"] = stats.get("by_op", {})
    return result


def convert_runs(
    tmp: Path, lab: Lab | None, latency_ms: float, local: bool
) -> dict[str, dict[str, Any]]:
    cli = [sys.executable, "-m", "intake_zspy", "convert", "--overwrite", "--no-progress"]
    hs_python = str(hyperspy_python())
    script = tmp / "hs_convert.py"
    script.write_text(HYPERSPY_CONVERT)
    results: dict[str, dict[str, Any]] = {}
    targets: list[tuple[str, Lab | None]] = [("local", None)] if local else []
    if lab is not None:
        targets.append(("S3", lab))
    for name in FILES:
        src = str(DATA_DIR / name)
        for where, lab_ in targets:
            if lab_ is not None:
                lab_.config(latency_ms=latency_ms)
                opts = lab_.storage_options()
                opts.pop("skip_instance_cache")
                ours_dst = f"s3://{BUCKET}/hspy-bench/ours-{name[:-5]}.zspy"
                hs_dst = f"s3://{BUCKET}/hspy-bench/hs-{name[:-5]}.zspy"
                extra = ["--storage-options", json.dumps(opts)]
            else:
                opts = {}
                ours_dst, hs_dst, extra = str(tmp / "ours.zspy"), str(tmp / "hs.zspy"), []
            log(f"convert {name} -> {where}: intake-zspy")
            results[f"{name} -> {where}: intake-zspy convert"] = with_requests(
                lab_, lambda s=src, d=ours_dst, e=extra: measure([*cli, s, d, *e])
            )
            log(f"convert {name} -> {where}: HyperSpy")
            results[f"{name} -> {where}: HyperSpy load(lazy) + save"] = with_requests(
                lab_,
                lambda s=src, d=hs_dst, o=opts: measure(
                    [hs_python, str(script), s, d, json.dumps(o)], env=subprocess_env()
                ),
            )
            if lab_ is not None:
                fs = lab_.fs(direct=True)
                fs.rm(f"{BUCKET}/hspy-bench", recursive=True)
            else:
                for p in (ours_dst, hs_dst):
                    shutil.rmtree(p, ignore_errors=True)
    return results


def read_runs(lab: Lab, latency_ms: float) -> dict[str, dict[str, Any]]:
    lab.ensure_bucket()
    fs = lab.fs(direct=True)
    lab.config(latency_ms=0.0)
    for name in FILES:
        key = f"{BUCKET}/hspy-files/{name}"
        if not fs.exists(key) or fs.size(key) != (DATA_DIR / name).stat().st_size:
            log(f"uploading {name} to the lab")
            fs.put_file(str(DATA_DIR / name), key)
    lab.config(latency_ms=latency_ms)
    opts = lab.storage_options()
    results: dict[str, dict[str, Any]] = {}
    for name in FILES:
        url = f"s3://{BUCKET}/hspy-files/{name}"
        for how, target, options in (
            ("range reads", url, opts),
            ("simplecache::", f"simplecache::{url}", {"s3": opts}),
        ):
            log(f"read {name} from S3 with {how}")
            cmd = [sys.executable, "-c", READ, target, json.dumps(options)]
            run = with_requests(lab, lambda c=cmd: measure(c))
            run.update(json.loads(run.pop("stdout").strip().splitlines()[-1]))
            results[f"{name}: {how}"] = run
    return results


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    sizes = {n: (DATA_DIR / n).stat().st_size for n in FILES}
    begin, end = section_markers("bench_hspy.py")
    lines = [
        begin,
        "",
        (
            f"Generated by `python benchmarks/bench_hspy.py{' --local-only' if args.local_only else ''}"
            f" --docs` on {utc_date()}, {os.cpu_count()} cores (shared), one run each. Source "
            "files written by HyperSpy 2.5 (`benchmarks/make_hspy.py`) from the 64x64x256x256 "
            f"float32 4D-STEM data (1.07 GB): `stem_4d.hspy` with HyperSpy's defaults (gzip, "
            f"chunks 19x19x256x256, {sizes[FILES[0]] / 1e6:.0f} MB) and `stem_4d_raw.hspy` "
            f"(`compression=None`, {sizes[FILES[1]] / 1e9:.2f} GB on disk). Wall clock of the whole "
            "command (interpreter start and imports included), peak RSS of its process; S3 is "
            f"the lab through its proxy at +{args.latency_ms:g} ms per request, requests counted "
            "by the proxy. intake-zspy splits each HDF5 chunk along navigation into chunks of at most 32 MiB "
            "with Blosc zstd; HyperSpy keeps the HDF5 chunks (94 MB) with its zspy default."
        ),
        "",
        "| convert | seconds | peak RSS | requests |",
        "|---|---|---|---|",
    ]
    for name, r in results["convert"].items():
        req = f"{r['requests']} ({ops_text(r['by_op'])})" if "requests" in r else ""
        lines.append(f"| {name} | {r['seconds']:.1f} | {r['peak_rss'] / 2**20:.0f} MiB | {req} |")
    if results.get("read"):
        lines += [
            "",
            (
                "Reading a `.hspy` from the S3 lab: `open_dataset(url, chunks={})`, then "
                "`ds.data.sum().compute()`, in a fresh process."
            ),
            "",
            "| read | open s | full read s | total s | peak RSS | requests |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in results["read"].items():
            lines.append(
                f"| {name} | {r['open']:.2f} | {r['read']:.1f} | {r['seconds']:.1f} | "
                f"{r['peak_rss'] / 2**20:.0f} MiB | {r['requests']} ({ops_text(r['by_op'])}) |"
            )
    lines += ["", end]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lab_options(parser)
    parser.add_argument("--local-only", action="store_true")
    parser.add_argument("--remote-only", action="store_true")
    parser.add_argument("--docs", action="store_true")
    args = parser.parse_args()
    missing = [n for n in FILES if not (DATA_DIR / n).exists()]
    if missing:
        sys.exit(f"{missing} missing: run benchmarks/make_hspy.py in the HyperSpy venv first")
    lab = None if args.local_only else Lab.running(args.lab_env)
    if lab is None and not args.local_only:
        sys.exit(f"the S3 lab of {args.lab_env} is not running (or pass --local-only)")
    if lab is not None:
        ensure_s3fs_in_venv()
        lab.ensure_bucket()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=REPO / ".cache") as tmp:
        results["convert"] = convert_runs(Path(tmp), lab, args.latency_ms, not args.remote_only)
    results["read"] = read_runs(lab, args.latency_ms) if lab is not None else {}
    save_results("hspy", results)
    text = render(results, args)
    print(text)
    if args.docs:
        write_section(DOCS, "bench_hspy.py", text, "## HyperSpy `.hspy` files: convert and read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
