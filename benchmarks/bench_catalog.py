"""``ZspyStoresCatalog`` over thousands of stores: S3 lab and local disk.

Generates small zspy stores written by ``to_zspy`` (half nested directories, half zip
files; every 10th one an "EELS" signal, the others "Diffraction"), once, then in a fresh
process per measurement (so that peak memory is its own):

- list and describe: ``cat = ZspyStoresCatalog(url)``, then ``cat[name].describe()`` for
  every entry, timed together; requests counted by the S3 lab's proxy;
- ``cat.search("EELS")`` on the built catalog, its requests counted separately;
- the peak resident memory above the one after imports.

With ``--before TREE`` (a ``git worktree`` of an older commit) every row is also measured
with that tree's ``intake_zspy``, in its own fresh process. Usage::

    git worktree add /tmp/before-catalog <commit>
    python benchmarks/bench_catalog.py [--stores 1000] [--local-stores 10000]
        [--before /tmp/before-catalog] [--docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # after PYTHONPATH: a --before tree's intake_zspy wins

from benchmarks._common.lab import Lab, add_lab_options
from benchmarks._common.memory import PeakRSS, run_script
from benchmarks._common.paths import BUCKET, DOCS
from benchmarks._common.paths import REPO as ROOT
from benchmarks._common.report import (
    command_line,
    log,
    ops_text,
    revision,
    save_results,
    utc_date,
    write_section,
)

CACHE = ROOT / ".cache" / "bench-catalog"


def templates() -> dict[str, Path]:
    """One directory store and one zip store per signal kind."""
    import numpy as np
    import xarray as xr

    import intake_zspy

    out: dict[str, Path] = {}
    CACHE.mkdir(parents=True, exist_ok=True)
    for kind in ("EELS", "Diffraction"):
        data = xr.DataArray(
            np.random.default_rng(0).random((8, 8, 64), dtype="f4"),
            dims=("y", "x", "E"),
            name=f"{kind} map",
            attrs={"signal_type": kind},
        )
        for store_type in ("directory", "zip"):
            path = CACHE / f"template-{kind}-{store_type}.zspy"
            if not path.exists():
                intake_zspy.to_zspy(data, path, store_type=store_type)
            out[f"{kind}-{store_type}"] = path
    return out


def store_names(n: int) -> list[tuple[str, str]]:
    """(relative path, template key) of store ``i``: runs of 100 per folder."""
    out = []
    for i in range(n):
        kind = "EELS" if i % 10 == 0 else "Diffraction"
        store_type = "zip" if i % 2 else "directory"
        out.append((f"run{i // 100:03d}/scan{i:05d}.zspy", f"{kind}-{store_type}"))
    return out


def make_local(n: int) -> Path:
    root = CACHE / f"local-{n}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    tpl = templates()
    for rel, key in store_names(n):
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if tpl[key].is_dir():
            shutil.copytree(tpl[key], dest)
        else:
            shutil.copyfile(tpl[key], dest)
    done.touch()
    return root


def make_remote(lab: Lab, n: int) -> str:
    """The stores under ``s3://zspy-bench/catalog-<n>/``, uploaded unless all there."""
    prefix = f"{BUCKET}/catalog-{n}"
    lab.ensure_bucket()
    fs = lab.fs(direct=True)
    marker = f"{prefix}-complete"
    if fs.exists(marker):
        return f"s3://{prefix}"
    local = make_local(n)
    files = [p for p in local.rglob("*") if p.is_file() and p.name != ".complete"]
    t0 = time.perf_counter()
    for i in range(0, len(files), 2000):
        part = files[i : i + 2000]
        fs.put(
            [str(p) for p in part], [f"{prefix}/{p.relative_to(local).as_posix()}" for p in part]
        )
    fs.pipe(marker, b"")
    log(f"uploaded {n} stores ({len(files)} objects) in {time.perf_counter() - t0:.0f} s")
    return f"s3://{prefix}"


def child(url: str, options_json: str) -> None:
    """One measurement in this fresh process; prints JSON."""
    import intake_zspy
    from intake_zspy.catalog import ZspyStoresCatalog

    options = json.loads(options_json)
    lab = Lab(Path(options.pop("lab_env"))) if "lab_env" in options else None
    opts = lab.storage_options() if lab else None
    if lab:
        lab.reset()
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        cat = ZspyStoresCatalog(url, storage_options=opts)
        names = list(cat)
        described = [cat[name].describe() for name in names]
        seconds = time.perf_counter() - t0
    stats = lab.stats() if lab else {}
    if lab:
        lab.reset()
    t1 = time.perf_counter()
    found = list(cat.search("EELS"))
    search_s = time.perf_counter() - t1
    search_requests = lab.stats()["total"] if lab else 0
    eels = sum(1 for d in described if "EELS" in json.dumps(d.get("metadata", {})))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "stores": len(names),
                "eels": eels,
                "found": len(found),
                "requests": stats.get("total", 0),
                "by_op": stats.get("by_op") or stats.get("ops") or {},
                "search_seconds": search_s,
                "search_requests": search_requests,
                "peak": rss.peak - rss.base,
                "library": str(Path(intake_zspy.__file__).parents[1]),
            }
        )
    )


def floor_child(url: str, lab_env: str) -> None:
    """The S3 requests the catalog cannot avoid, timed alone in this fresh process: the
    listing (s3fs ``find``), then one concurrent ``cat_ranges`` of what the catalog
    fetches (each directory store's ``.zmetadata``, each zip store's end); prints JSON."""
    import s3fs

    from intake_zspy.catalog._zip_tail import tail_start
    from intake_zspy.storage._resolve import S3_MAX_POOL_CONNECTIONS

    lab = Lab(Path(lab_env))
    options = lab.storage_options()  # with the connection pool the library's reads use
    config = {**options["config_kwargs"], "max_pool_connections": S3_MAX_POOL_CONNECTIONS}
    fs = s3fs.S3FileSystem(**{**options, "config_kwargs": config})
    prefix = url.removeprefix("s3://")
    lab.reset()
    t0 = time.perf_counter()
    found = fs.find(prefix, detail=True)
    t1 = time.perf_counter()
    listed = lab.stats()["total"]
    docs = [p for p in found if p.endswith(".zspy/.zmetadata")]
    zips = [p for p in found if p.endswith(".zspy")]
    sizes = [int(found[p]["size"]) for p in zips]
    lab.reset()
    t2 = time.perf_counter()
    values = fs.cat_ranges(
        docs + zips,
        [None] * len(docs) + [tail_start(n) for n in sizes],
        [None] * len(docs) + sizes,
    )
    t3 = time.perf_counter()
    assert all(isinstance(v, bytes) for v in values)
    print(
        json.dumps(
            {
                "list": t1 - t0,
                "list_requests": listed,
                "objects": len(found),
                "get": t3 - t2,
                "get_requests": lab.stats()["total"],
            }
        )
    )


def row(what: str, r: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    change = f"{r['seconds'] / before['seconds']:.3f}" if before else ""
    return (
        f"| {what} | {r['stores']} | {r['seconds']:.2f} | {change} | "
        f"{r['seconds'] / r['stores'] * 1e3:.2f} | "
        f"{r['requests']} {ops_text(r['by_op'])} | {r['found']} of {r['eels']} in "
        f"{r['search_seconds'] * 1e3:.1f} ms, {r['search_requests']} requests | "
        f"{r['peak'] / 2**20:.0f} MiB |"
    )


def measure(
    where: str, url: str, options: dict[str, Any], before: Path | None
) -> tuple[dict[str, Any], list[str]]:
    """The rows of one location: the ``before`` tree (if any), then this checkout."""
    results: dict[str, Any] = {}
    trees = {"before": before} if before else {}
    for side, tree in {**trees, "after": None}.items():
        log(f"{where}: {side}")
        results[side] = run_script(__file__, "--child", url, json.dumps(options), tree=tree)
        if tree is not None and Path(results[side]["library"]) != tree.resolve():
            raise RuntimeError(f"the child imported {results[side]['library']}, not {tree}")
    lines = [row(f"{where}, before", results["before"])] if before else []
    lines.append(
        row(where + (", after" if before else ""), results["after"], results.get("before"))
    )
    return results, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=1000, help="stores on the S3 lab")
    parser.add_argument("--local-stores", type=int, default=10000)
    parser.add_argument("--docs", action="store_true")
    parser.add_argument("--before", type=Path, help="source tree of the 'before' rows")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--floor-child", nargs=2, help=argparse.SUPPRESS)
    add_lab_options(parser)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.floor_child:
        floor_child(*args.floor_child)
        return 0
    load0 = os.getloadavg()
    results: dict[str, Any] = {}
    lines = []
    notes: list[str] = []
    if args.stores:
        lab = Lab(Path(args.lab_env))
        lab.config(latency_ms=args.latency_ms)
        url = make_remote(lab, args.stores)
        where = f"S3 lab, +{args.latency_ms:g} ms: `{url}`"
        results["remote"], rows = measure(where, url, {"lab_env": str(args.lab_env)}, args.before)
        log(f"{where}: floor")
        floor = run_script(__file__, "--floor-child", url, str(args.lab_env))
        results["remote"]["floor"] = floor
        total = floor["list"] + floor["get"]
        lines += rows
        lines.append(
            f"| floor: s3fs `find` of the prefix ({floor['objects']} objects, "
            f"{floor['list']:.2f} s), then one concurrent `cat_ranges` of the "
            f"{floor['get_requests']} objects and ranges the catalog reads "
            f"({floor['get']:.2f} s); nothing decoded | {args.stores} | {total:.2f} | | "
            f"{total / args.stores * 1e3:.2f} | "
            f"{floor['list_requests'] + floor['get_requests']} | | |"
        )
        ratio = results["remote"]["after"]["seconds"] / total
        notes.append(
            f"On the S3 lab the catalog takes {ratio:.2f}x its floor ({total:.2f} s: the "
            "requests alone, measured in the same run). That floor is CPU time more than "
            "latency: the client (botocore parses the date of every listed object with "
            "dateutil), the proxy and the S3 server share the 2 cores, and more concurrency "
            "does not make the same requests faster."
        )
    if args.local_stores:
        root = make_local(args.local_stores)
        results["local"], rows = measure("local disk (warm page cache)", str(root), {}, args.before)
        lines += rows
    save_results("bench_catalog", results)
    argv = [a for a in sys.argv[1:] if a != "--docs"]
    text = "\n".join(
        [
            "<!-- BEGIN bench_catalog.py output: generated, do not edit by hand -->",
            "",
            (
                f"Generated by `{command_line('bench_catalog.py', [*argv, '--docs'])}` on "
                f"{utc_date()}; {os.cpu_count()} cores (load average {load0[0]:.2f} at the "
                f"start, {os.getloadavg()[0]:.2f} at the end). Stores written by `to_zspy` "
                "(8x8x64 float32, half nested directories, half zip files, 100 per folder); "
                "a fresh process per row. Listing and describing: `ZspyStoresCatalog(url)`, "
                "then `cat[name].describe()` for every entry. Requests as the proxy counted "
                "them (the lab may serve other work at the same time)."
                + (
                    f" Before: `{args.before}` at `{revision(args.before)}`; after: this "
                    f"checkout at `{revision(ROOT)}`."
                    if args.before
                    else ""
                )
            ),
            "",
            (
                "| where | stores | list + describe s | after / before | ms per store | "
                'requests | `search("EELS")` afterwards | peak memory |'
            ),
            "|---|---|---|---|---|---|---|---|",
            *lines,
            "",
            *notes,
            "",
            "<!-- END bench_catalog.py output -->",
        ]
    )
    print(text)
    if args.docs:
        write_section(DOCS, "bench_catalog.py", text, "## Catalogs of thousands of stores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
