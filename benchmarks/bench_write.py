"""Write benchmarks: intake-zspy vs HyperSpy's ``s.save()`` vs raw zarr 3, locally and over S3.

One run measures, side by side, on the 1.07 GB 4D-STEM array of ``make_data.py``:

* **local eager** (numpy data in memory): intake-zspy ``to_zspy(ds, dir)`` with HyperSpy's
  chunks and with its own default chunks, HyperSpy ``s.save(dir)`` in its venv (timed
  inside that process, around ``save`` only), zarr 3 (``zarr.create_array(...,
  zarr_format=2, compressors=Blosc)`` + ``[...] = data``), the compression floor (Blosc in
  a thread pool, no I/O) and the disk floor (the pre-encoded chunks written as files);
* **local lazy** (dask data read from the store while writing): intake-zspy
  ``to_zspy(open_dataset(src, chunks={}), dir)``, zarr 3 ``da.store`` and HyperSpy
  ``hs.load(src, lazy=True).save(dir)``;
* **S3** (the s3lab, +20 ms per request): intake-zspy eager and lazy, zarr 3 eager,
  HyperSpy eager and lazy (``s.save(zarr.storage.FSStore(url))``) and the network floor
  (s3fs PUTs of the pre-encoded chunks), with the proxy's request counts;
* **peak memory** of a lazy intake-zspy write of a generated >= 4 GB float32 dask array to
  local disk, in a subprocess (its ``ru_maxrss`` before and after the write).

It prints a table, saves the raw numbers to ``.cache/bench-results/`` and rewrites the
write section of ``docs/benchmarks.md``. Typical use (see ``benchmarks/README.md``)::

    LATENCY_MS=20 ../shared/lab/start_s3.sh
    python benchmarks/bench_write.py            # writes docs/benchmarks.md
    python benchmarks/bench_write.py --local-only --no-docs
    ../shared/lab/stop_s3.sh
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numcodecs
import numpy as np

from benchmarks._common.context import library_state, machine, versions
from benchmarks._common.lab import Lab, add_lab_options, quiet_unclosed_sessions
from benchmarks._common.memory import peak_rss, reset_peak_rss, run_script, status_bytes
from benchmarks._common.paths import BUCKET, DATA_DIR, DOCS, STEM
from benchmarks._common.report import (
    command_line,
    library_line,
    log,
    ops_text,
    ratio,
    save_results,
    secs,
    section_markers,
    utc_date,
    write_section,
)
from benchmarks._common.timing import Case, Cases, in_process, interleaved, prepared, timed
from benchmarks._common.venv import VenvWorker, ensure_data, ensure_s3fs_in_venv

BEGIN, END = section_markers("bench_write.py")
WRITE_HEADING = "## Write benchmark"  # above the section when the docs do not have it yet
CODEC = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
THREADS = max(2, os.cpu_count() or 2)


class HyperspyWorker(VenvWorker):
    """``hyperspy_write_worker.py --serve`` in the HyperSpy venv."""

    script = "hyperspy_write_worker.py"


# -- helpers ------------------------------------------------------------------------------


def grid(
    shape: tuple[int, ...], chunks: tuple[int, ...]
) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    counts = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
    for index in itertools.product(*(range(n) for n in counts)):
        region = tuple(
            slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, chunks, shape, strict=True)
        )
        yield index, region


def encode_region(data: np.ndarray, region: tuple[slice, ...], chunks: tuple[int, ...]) -> bytes:
    """One chunk as zarr 2 stores it: edge chunks padded with zeros to the full shape."""
    block = data[region]
    if block.shape != chunks:
        padded = np.zeros(chunks, dtype=data.dtype)
        padded[tuple(slice(0, n) for n in block.shape)] = block
        block = padded
    return bytes(CODEC.encode(np.ascontiguousarray(block)))


def floor_compress(data: np.ndarray, chunks: tuple[int, ...]) -> int:
    with ThreadPoolExecutor(THREADS) as pool:
        return sum(
            pool.map(lambda ir: len(encode_region(data, ir[1], chunks)), grid(data.shape, chunks))
        )


def pre_encode(data: np.ndarray, chunks: tuple[int, ...]) -> dict[str, bytes]:
    with ThreadPoolExecutor(THREADS) as pool:
        return dict(
            pool.map(
                lambda ir: ("/".join(map(str, ir[0])), encode_region(data, ir[1], chunks)),
                grid(data.shape, chunks),
            )
        )


def floor_disk(encoded: dict[str, bytes], dest: Path, *, fsync: bool) -> int:
    """Write the pre-encoded chunk files (nested directories), thread pool."""

    def put(kv: tuple[str, bytes]) -> int:
        path = dest / kv[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(kv[1])
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        return len(kv[1])

    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(put, encoded.items()))


def rm_local(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def zarr3_create(
    store: Any, shape: tuple[int, ...], chunks: tuple[int, ...], so: Any = None
) -> Any:
    import zarr

    return zarr.create_array(
        store=store,
        shape=shape,
        chunks=chunks,
        dtype="float32",
        zarr_format=2,
        compressors=CODEC,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        overwrite=True,
        storage_options=so,
    )


def written_chunks(path: Path, data_path: str) -> list[int]:
    return list(json.loads((path / data_path / ".zarray").read_text())["chunks"])


# -- the benchmark ------------------------------------------------------------------------


def bench_local(
    data_dir: Path, facts: dict[str, Any], rounds: int, worker: HyperspyWorker, out: Path
) -> dict[str, Any]:
    import dask.array as da

    import intake_zspy

    src = data_dir / STEM
    info = facts["stores"][STEM]
    data_path = info["data_path"]
    hs_chunks = tuple(info["chunks"])
    ds = intake_zspy.open_dataset(src).load()
    data = ds["data"].values
    shape = data.shape
    encoded = pre_encode(data, hs_chunks)
    res: dict[str, Any] = {
        "hyperspy_chunks": list(hs_chunks),
        "encoded_bytes": sum(map(len, encoded.values())),
        "n_chunks": len(encoded),
    }
    d = {
        k: out / f"{k}.zspy"
        for k in ("disk", "disk_fsync", "intake", "intake_default", "zarr3", "hs")
    }

    def intake_eager(dest: Path, chunks: tuple[int, ...] | None) -> int:
        intake_zspy.to_zspy(ds, dest, chunks=chunks)
        return int(data.nbytes)

    def zarr3_eager(dest: Path) -> int:
        zarr3_create(str(dest), shape, hs_chunks)[...] = data
        return int(data.nbytes)

    hs_job = {"src": str(src), "dest": {"path": str(d["hs"])}}
    log(f"local eager write of {info['nbytes'] / 1e9:.2f} GB, {rounds} interleaved rounds")
    eager = {
        "compress": ("Blosc encode, thread pool, no I/O", lambda: floor_compress(data, hs_chunks)),
        "disk": ("pre-encoded chunk files written, no fsync", None),
        "disk_fsync": ("pre-encoded chunk files written + fsync each", None),
        "intake": ("intake_zspy to_zspy(ds, chunks=HyperSpy's)", None),
        "intake_default": ("intake_zspy to_zspy(ds) default chunks", None),
        "zarr3": ("zarr 3 create_array + [...] = data", None),
    }
    cases: Cases = {}
    for key, (label, fn) in eager.items():
        if fn is not None:
            cases[key] = (label, in_process(fn), fn)
    for key, fsync in (("disk", False), ("disk_fsync", True)):
        run = prepared(
            lambda key=key: rm_local(d[key]),
            lambda _, key=key, fsync=fsync: floor_disk(encoded, d[key], fsync=fsync),
        )
        cases[key] = (eager[key][0], run, run)
    for key, chunks in (("intake", hs_chunks), ("intake_default", None)):
        run = prepared(
            lambda key=key: rm_local(d[key]), lambda _, key=key, c=chunks: intake_eager(d[key], c)
        )
        cases[key] = (eager[key][0], run, run)
    run = prepared(lambda: rm_local(d["zarr3"]), lambda _: zarr3_eager(d["zarr3"]))
    cases["zarr3"] = (eager["zarr3"][0], run, run)
    hs_run = lambda: worker.run({**hs_job, "lazy": False})[0]
    cases["hyperspy"] = ("HyperSpy s.save(dir) (eager signal)", hs_run, hs_run)
    res["eager"] = interleaved(cases, rounds)
    res["eager"]["hyperspy"]["chunks"] = res["eager"]["hyperspy"]["runs"][0].get("chunks")
    res["eager"]["intake"]["chunks"] = written_chunks(d["intake"], data_path)
    res["eager"]["intake_default"]["chunks"] = written_chunks(d["intake_default"], data_path)
    res["eager"]["zarr3"]["chunks"] = list(hs_chunks)
    res["intake_bytes"] = sum(
        p.stat().st_size
        for p in (d["intake"] / data_path).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )

    log(f"local lazy write (source read while writing), {rounds} interleaved rounds")

    def lazy_src() -> Any:
        return intake_zspy.open_dataset(src, chunks={})

    def intake_lazy(lds: Any) -> int:
        intake_zspy.to_zspy(lds, d["intake"])
        lds.close()
        return int(data.nbytes)

    def zarr3_lazy(lds: Any) -> int:
        arr = zarr3_create(str(d["zarr3"]), shape, hs_chunks)
        da.store(lds["data"].data, arr, lock=False)
        lds.close()
        return int(data.nbytes)

    lazy_cases: Cases = {}
    for key, label, fn, dest in (
        ("intake", "intake_zspy to_zspy(open_dataset(src, chunks={}))", intake_lazy, d["intake"]),
        ("zarr3", "zarr 3 da.store(dask array, create_array(...))", zarr3_lazy, d["zarr3"]),
    ):
        run = prepared(lambda dest=dest: (rm_local(dest), lazy_src())[1], fn)
        lazy_cases[key] = (label, run, run)
    hs_lazy = lambda: worker.run({**hs_job, "lazy": True})[0]
    lazy_cases["hyperspy"] = ("HyperSpy hs.load(src, lazy=True).save(dir)", hs_lazy, hs_lazy)
    res["lazy"] = interleaved(lazy_cases, rounds)
    res["lazy"]["hyperspy"]["chunks"] = res["lazy"]["hyperspy"]["runs"][0].get("chunks")
    res["lazy"]["intake"]["chunks"] = written_chunks(d["intake"], data_path)
    for path in d.values():
        rm_local(path)
    return res


def bench_remote(
    lab: Lab,
    data_dir: Path,
    facts: dict[str, Any],
    rounds: int,
    worker: HyperspyWorker,
    latency_ms: float,
) -> dict[str, Any]:
    import intake_zspy

    src = data_dir / STEM
    info = facts["stores"][STEM]
    hs_chunks = tuple(info["chunks"])
    ds = intake_zspy.open_dataset(src).load()
    data = ds["data"].values
    encoded = pre_encode(data, hs_chunks)
    lab.config(latency_ms=0)
    lab.ensure_bucket(BUCKET)
    lab.config(latency_ms=latency_ms)
    so = lab.storage_options()
    quiet_unclosed_sessions()
    base = f"{BUCKET}/write"

    def fresh(name: str) -> str:
        return f"{base}/{name}-{uuid.uuid4().hex[:8]}.zspy"

    def cleanup(path: str) -> None:
        fs = lab.fs(direct=True)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def case(label: str, name: str, fn: Callable[[str], int]) -> tuple[str, Case, Case]:
        def run() -> dict[str, Any]:
            path = fresh(name)
            rec = timed(lambda: fn(path), lab)
            cleanup(path)
            return rec

        return label, run, run

    def network(path: str) -> int:
        fs = lab.fs()
        fs.pipe({f"{path}/{k}": v for k, v in encoded.items()})
        return sum(map(len, encoded.values()))

    def intake_eager(path: str) -> int:
        intake_zspy.to_zspy(ds, f"s3://{path}", storage_options=so, chunks=hs_chunks)
        return int(data.nbytes)

    def intake_lazy(path: str) -> int:
        lds = intake_zspy.open_dataset(src, chunks={})
        intake_zspy.to_zspy(lds, f"s3://{path}", storage_options=so)
        lds.close()
        return int(data.nbytes)

    def zarr3_eager(path: str) -> int:
        zarr3_create(f"s3://{path}", data.shape, hs_chunks, so)[...] = data
        return int(data.nbytes)

    def hs(lazy: bool) -> Case:
        job = {
            "src": str(src),
            "lazy": lazy,
            "dest": {"url": f"s3://{base}/hs", "storage_options": so},
            "control": lab.control,
        }
        return lambda: worker.run(job)[0]

    log(f"S3 writes (+{latency_ms:g} ms), {rounds} interleaved rounds after a warm-up round")
    cases: Cases = {
        "network": case("s3fs pipe of the pre-encoded chunks", "net", network),
        "intake": case("intake_zspy to_zspy(ds, s3://) eager", "intake", intake_eager),
        "intake_lazy": case("intake_zspy to_zspy(lazy ds, s3://)", "intake-lazy", intake_lazy),
        "zarr3": case("zarr 3 create_array(s3://) + [...] = data", "zarr3", zarr3_eager),
        # no warm-up of their own: about 45 s each (one sequential request per key), and
        # the server is warm from the other cases' warm-ups
        "hyperspy": ("HyperSpy s.save(FSStore) eager", hs(False), None),
        "hyperspy_lazy": ("HyperSpy lazy s.save(FSStore)", hs(True), None),
    }
    res = interleaved(cases, rounds, lab)
    res_all = {"server": lab.server, "latency_ms": latency_ms, "write": res}
    return res_all


# -- peak memory --------------------------------------------------------------------------


def peak_child(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: write a generated dask array lazily and report ru_maxrss."""
    import dask.array as da
    import xarray as xr

    import intake_zspy

    shape, chunks = tuple(spec["shape"]), tuple(spec["chunks"])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[2], : shape[3]]
    r2 = (yy - shape[2] / 2) ** 2 + (xx - shape[3] / 2) ** 2
    disc = np.where(r2 < (shape[2] / 6) ** 2, 40.0, 1.0) + 200.0 * np.exp(-r2 / 50.0)
    bank = rng.poisson(disc, size=(64, *shape[2:])).astype(np.float32)

    def block(block_info: dict[Any, Any] | None = None) -> np.ndarray:
        assert block_info is not None
        loc, shp = block_info[None]["chunk-location"], block_info[None]["chunk-shape"]
        n = shp[0] * shp[1]
        idx = (loc[0] * 7 + loc[1] * 13 + np.arange(n)) % len(bank)
        return bank[idx].reshape(shp)

    norm = tuple(
        tuple(min(c, n - i) for i in range(0, n, c)) for n, c in zip(shape, chunks, strict=True)
    )
    arr = da.map_blocks(block, dtype=np.float32, chunks=norm)
    obj = xr.DataArray(arr, dims=("y", "x", "ky", "kx"), name="data")
    dest = Path(spec["dest"])
    shutil.rmtree(dest, ignore_errors=True)
    # ru_maxrss survives exec on Linux (a child started by a big parent reports the
    # parent's peak), so the peak is VmHWM, reset to the current RSS just before the write
    reset = reset_peak_rss()
    before = peak_rss(reset)
    current = status_bytes("VmRSS")
    start = time.perf_counter()
    intake_zspy.to_zspy(obj, dest, signal_dims=2)
    seconds = time.perf_counter() - start
    after = peak_rss(reset)
    on_disk = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    shutil.rmtree(dest, ignore_errors=True)
    return {
        "seconds": seconds,
        "nbytes": int(arr.nbytes),
        "chunk_bytes": int(np.prod(chunks)) * 4,
        "n_chunks": int(np.prod(arr.numblocks)),
        "rss_before": current,
        "maxrss_before": before,
        "maxrss_after": after,
        "peak_source": "VmHWM after clear_refs" if reset else "ru_maxrss",
        "bytes_on_disk": on_disk,
        "threads": THREADS,
    }


def bench_peak(out: Path, shape: tuple[int, ...], chunks: tuple[int, ...]) -> dict[str, Any]:
    spec = {"shape": list(shape), "chunks": list(chunks), "dest": str(out / "peak.zspy")}
    log(
        f"peak memory: lazy write of a {np.prod(shape) * 4 / 1e9:.2f} GB dask array, chunks {chunks}"
    )
    res = run_script(__file__, "--peak-child", json.dumps(spec), timeout=1800)
    res["shape"], res["chunks"] = list(shape), list(chunks)
    # conservative: the high-water mark after the write minus the RSS just before it
    res["growth"] = res["maxrss_after"] - res["rss_before"]
    log(
        f"  {res['seconds']:.1f} s ({res['nbytes'] / 1e9 / res['seconds']:.2f} GB/s), peak RSS "
        f"{res['maxrss_after'] / 2**20:.0f} MiB, growth {res['growth'] / 2**20:.0f} MiB, "
        f"threads x chunk = {res['threads'] * res['chunk_bytes'] / 2**20:.0f} MiB"
    )
    return res


# -- reporting ----------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    local = results.get("local")
    if local:
        e, lz = local["eager"], local["lazy"]
        for what, tbl, key in (("eager", e, "intake"), ("lazy", lz, "intake")):
            a, h = tbl[key]["seconds"], tbl["hyperspy"]["seconds"]
            rows.append(
                (
                    f"local {what} write >= 1.3x HyperSpy (same compressor and chunks)",
                    f"{secs(a)} s vs {secs(h)} s: {ratio(h, a)}",
                    "met" if h / a >= 1.3 else "**not met**",
                )
            )
    remote = results.get("remote")
    if remote:
        w = remote["write"]
        for what, key, hkey in (
            ("eager", "intake", "hyperspy"),
            ("lazy", "intake_lazy", "hyperspy_lazy"),
        ):
            a, h = w[key]["seconds"], w[hkey]["seconds"]
            rows.append(
                (
                    f"S3 {what} write >= 1.3x HyperSpy",
                    f"{secs(a)} s vs {secs(h)} s: {ratio(h, a)}",
                    "met" if h / a >= 1.3 else "**not met**",
                )
            )
    peak = results.get("peak")
    if peak:
        budget = peak["threads"] * peak["chunk_bytes"]
        rows.append(
            (
                "lazy write of >= 4 GB: peak memory near threads x chunk size (growth <= 3x)",
                (
                    f"{peak['nbytes'] / 1e9:.2f} GB: RSS grew by {peak['growth'] / 2**20:.0f} MiB "
                    f"during the write (peak {peak['maxrss_after'] / 2**20:.0f} MiB) vs threads x "
                    f"chunk = {budget / 2**20:.0f} MiB"
                ),
                "met" if peak["growth"] <= 3 * budget else "**not met**",
            )
        )
    return rows


def render(results: dict[str, Any]) -> str:
    m, v = results["machine"], results["versions"]
    stem = results["data"]["stores"][STEM]
    gb = stem["nbytes"] / 1e9
    lines = [
        BEGIN,
        "",
        f"Generated by `benchmarks/bench_write.py` on {results['date']}.",
        "",
        (
            f"**Machine:** {m['cores']} cores, {m['memory_gib']} GiB RAM; load average (1 min) "
            f"{m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end. "
            "**Versions:** "
            + ", ".join(f"{k} {x}" for k, x in v["main"].items())
            + "; HyperSpy venv: "
            + ", ".join(f"{k} {x}" for k, x in v["hyperspy_venv"].items())
            + "."
        ),
        "",
        library_line(results.get("library")),
        "",
    ]
    reused = results.get("reused")
    if reused:
        lines += [
            (
                f"The {' and '.join(reused.get('parts', []))} results come from an earlier run, "
                f"of {reused['date']} "
                f"(load average {reused['machine']['loadavg_start'][0]:.2f} at its start, "
                f"{reused['machine']['loadavg_end'][0]:.2f} at its end); "
                + library_line(reused.get("library")).replace("**Library:** ", "library: ")
            ),
            "",
        ]
    local = results.get("local")
    if local:
        e, lz = local["eager"], local["lazy"]
        h, hl = e["hyperspy"]["seconds"], lz["hyperspy"]["seconds"]
        disk = e["disk"]["seconds"]
        chunks = "x".join(map(str, local["hyperspy_chunks"]))
        lines += [
            f"### Local write of the {gb:.2f} GB 4D-STEM array (float32 64x64x256x256)",
            "",
            (
                f"Blosc zstd level 1 + byte shuffle everywhere. HyperSpy's default chunks are "
                f"{chunks} ({local['n_chunks']} chunks, {local['encoded_bytes'] / 1e6:.0f} MB "
                "encoded); the rows marked 'HyperSpy's chunks' use them too. Median of "
                f"{e['intake']['repeats']} interleaved rounds after a warm-up round; HyperSpy is "
                "timed inside its own process around `s.save()` only. The destination is removed "
                "before each run (untimed). Files go to the page cache: nothing here calls fsync "
                "except the `+ fsync` floor row."
            ),
            "",
            "| eager (numpy data in memory) | chunks | median s | min-max s | GB/s | HyperSpy / this | this / disk floor |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, label in (
            ("compress", "floor: Blosc encode of every chunk, thread pool, no I/O"),
            ("disk", "floor: write the pre-encoded chunk files (no fsync)"),
            ("disk_fsync", "write the pre-encoded chunk files + fsync each"),
            ("intake", "intake_zspy `to_zspy(ds, p, chunks=HyperSpy's)`"),
            ("intake_default", "intake_zspy `to_zspy(ds, p)` (its default chunks)"),
            ("zarr3", "zarr 3 `create_array(p, zarr_format=2, compressors=Blosc)[...] = data`"),
            ("hyperspy", "HyperSpy `s.save(p)`"),
        ):
            x = e[key]
            c = "x".join(map(str, x.get("chunks") or local["hyperspy_chunks"]))
            lines.append(
                f"| {label} | {c} | {secs(x['seconds'])} | {secs(x['min'])}-{secs(x['max'])} | "
                f"{gb / x['seconds']:.2f} | {ratio(h, x['seconds'])} | {ratio(x['seconds'], disk)} |"
            )
        lines += [
            "",
            "| lazy (dask data, source store read while writing) | chunks | median s | min-max s | GB/s | HyperSpy lazy / this |",
            "|---|---|---|---|---|---|",
        ]
        for key, label in (
            ("intake", "intake_zspy `to_zspy(open_dataset(src, chunks={}), p)`"),
            ("zarr3", "zarr 3 `da.store(open_dataset(src, chunks={}).data, create_array(...))`"),
            ("hyperspy", "HyperSpy `hs.load(src, lazy=True).save(p)`"),
        ):
            x = lz[key]
            c = "x".join(map(str, x.get("chunks") or local["hyperspy_chunks"]))
            lines.append(
                f"| {label} | {c} | {secs(x['seconds'])} | {secs(x['min'])}-{secs(x['max'])} | "
                f"{gb / x['seconds']:.2f} | {ratio(hl, x['seconds'])} |"
            )
        lines.append("")
    remote = results.get("remote")
    if remote:
        w = remote["write"]
        lines += [
            (
                f"### Write to S3 (s3lab, {remote['server']} behind the proxy, "
                f"+{remote['latency_ms']:g} ms per request)"
            ),
            "",
            (
                f"Each run writes to a new key prefix (removed afterwards, untimed) with a new "
                "s3fs filesystem; request counts from the proxy. HyperSpy saves into "
                "`zarr.storage.FSStore(url, **storage_options)`. Lazy rows read the local "
                f"store while writing. Median of {w['intake']['repeats']} interleaved rounds after "
                "a warm-up round (Ceph's first writes are slow; HyperSpy's S3 saves are not warmed up "
                "separately, the server is warm by then)."
            ),
            "",
            "| writer | median s | min-max s | requests | by op | HyperSpy (same mode) / this |",
            "|---|---|---|---|---|---|",
        ]
        for key, label, ref in (
            ("network", "floor: s3fs `pipe` of the pre-encoded chunks (all at once)", "hyperspy"),
            ("intake", "intake_zspy `to_zspy(ds, 's3://...', chunks=HyperSpy's)`", "hyperspy"),
            ("zarr3", "zarr 3 `create_array('s3://...')[...] = data`", "hyperspy"),
            ("hyperspy", "HyperSpy `s.save(FSStore(url))`", "hyperspy"),
            (
                "intake_lazy",
                "intake_zspy lazy `to_zspy(open_dataset(src, chunks={}), 's3://...')`",
                "hyperspy_lazy",
            ),
            (
                "hyperspy_lazy",
                "HyperSpy `hs.load(src, lazy=True).save(FSStore(url))`",
                "hyperspy_lazy",
            ),
        ):
            x = w[key]
            lines.append(
                f"| {label} | {secs(x['seconds'])} | {secs(x['min'])}-{secs(x['max'])} | "
                f"{x.get('requests', '?')} | {ops_text(x.get('by_op'))} | "
                f"{ratio(w[ref]['seconds'], x['seconds'])} |"
            )
        lines.append("")
    peak = results.get("peak")
    if peak:
        budget = peak["threads"] * peak["chunk_bytes"]
        lines += [
            "### Peak memory of a lazy write (generated dask array, local disk)",
            "",
            (
                f"A float32 array of shape {'x'.join(map(str, peak['shape']))} "
                f"({peak['nbytes'] / 1e9:.2f} GB) in {peak['n_chunks']} chunks of "
                f"{'x'.join(map(str, peak['chunks']))} ({peak['chunk_bytes'] / 2**20:.0f} MiB), "
                "each block generated by its dask task from a bank of 64 Poisson-noise patterns, "
                "written by `to_zspy(DataArray, p, signal_dims=2)` in a fresh process. The peak is "
                "the process's `VmHWM`, reset to the current RSS (`/proc/self/clear_refs`) just "
                "before `to_zspy` (not `ru_maxrss`, which on Linux keeps the peak of the parent "
                "process across `exec`)."
            ),
            "",
            "| | value |",
            "|---|---|",
            f"| time | {peak['seconds']:.1f} s ({peak['nbytes'] / 1e9 / peak['seconds']:.2f} GB/s) |",
            f"| on disk | {peak['bytes_on_disk'] / 1e6:.0f} MB |",
            f"| RSS just before the write (imports, pattern bank) | {peak['rss_before'] / 2**20:.0f} MiB |",
            f"| peak RSS after the write | {peak['maxrss_after'] / 2**20:.0f} MiB |",
            f"| growth: peak RSS after minus RSS before | {peak['growth'] / 2**20:.0f} MiB |",
            f"| threads x chunk size | {peak['threads']} x {peak['chunk_bytes'] / 2**20:.0f} MiB = {budget / 2**20:.0f} MiB |",
            "",
        ]
    rows = targets(results)
    if rows:
        lines += ["### Write targets", "", "| target | measured | |", "|---|---|---|"]
        lines += [f"| {t} | {mm} | {ok} |" for t, mm, ok in rows]
        if local:
            e = local["eager"]
            lines += [
                "",
                (
                    f"Ratio to the raw disk write speed (pre-encoded chunk files, no fsync, "
                    f"{secs(e['disk']['seconds'])} s): intake-zspy eager takes "
                    f"{ratio(e['intake']['seconds'], e['disk']['seconds'])} as long "
                    f"({ratio(e['intake']['seconds'], e['compress']['seconds'])} of the compression "
                    f"floor, {secs(e['compress']['seconds'])} s; HyperSpy "
                    f"{ratio(e['hyperspy']['seconds'], e['disk']['seconds'])} of the disk floor)."
                ),
            ]
        lines.append("")
    lines += ["### Commands", "", "```sh", *results["commands"], "```", "", END]
    return "\n".join(lines)


def print_table(results: dict[str, Any]) -> None:
    local, remote, peak = results.get("local"), results.get("remote"), results.get("peak")
    gb = results["data"]["stores"][STEM]["nbytes"] / 1e9
    print()
    if local:
        for mode in ("eager", "lazy"):
            tbl = local[mode]
            h = tbl["hyperspy"]["seconds"]
            print(f"LOCAL {mode} write                  median s   GB/s  HyperSpy/this")
            for key, x in tbl.items():
                s = x["seconds"]
                print(f"  {key:32s} {s:8.3f} {gb / s:6.2f}  {h / s:6.2f}x")
    if remote:
        w = remote["write"]
        print(f"S3 write ({remote['server']}, +{remote['latency_ms']:g} ms)   median s  requests")
        for key, x in w.items():
            print(f"  {key:32s} {x['seconds']:8.3f} {x.get('requests', 0):8d}")
    if peak:
        print(
            f"PEAK lazy write {peak['nbytes'] / 1e9:.2f} GB: {peak['seconds']:.1f} s, RSS growth "
            f"{peak['growth'] / 2**20:.0f} MiB (peak {peak['maxrss_after'] / 2**20:.0f} MiB), "
            f"threads x chunk {peak['threads'] * peak['chunk_bytes'] / 2**20:.0f} MiB"
        )
    for target, measured, ok in targets(results):
        print(f"TARGET {ok.replace('*', ''):8s} {target}: {measured}")


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["--peak-child"]:
        print(json.dumps(peak_child(json.loads(args_list[1]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="store directory (default .cache/bench-data)")
    parser.add_argument("--local-only", action="store_true")
    parser.add_argument("--remote-only", action="store_true")
    parser.add_argument("--no-peak", action="store_true")
    parser.add_argument("--peak-only", action="store_true")
    add_lab_options(parser)
    parser.add_argument("--repeats", type=int, default=3, help="local rounds")
    parser.add_argument("--remote-repeats", type=int, default=3)
    parser.add_argument(
        "--peak-shape", default="128x128x256x256", help="shape of the peak-memory array"
    )
    parser.add_argument("--peak-chunks", default="8x16x256x256")
    parser.add_argument("--out", type=Path, default=REPO / ".cache" / "bench-write")
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="JSON",
        help="take the parts not measured in this run (local, remote, peak) from a saved run",
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only re-render the docs from a saved run"
    )
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(args_list)

    if args.render:
        saved = json.loads(args.render.read_text())
        saved["commands"] = [
            *saved["commands"][:-1],
            "# the section above was rendered from the saved results with:",
            command_line("bench_write.py", args_list),
            saved["commands"][-1],
        ]
        print_table(saved)
        if not args.no_docs:
            write_section(args.docs, "bench_write.py", render(saved), WRITE_HEADING)
            log(f"updated {args.docs}")
        return 0
    lab = None
    want_remote = not args.local_only and not args.peak_only
    if want_remote:
        lab = Lab.running(args.lab_env)
        if lab is None:
            log("the S3 lab is not running: start it or pass --local-only")
            return 2
    data_dir = args.data or DATA_DIR
    facts = ensure_data(data_dir, small=False)
    args.out.mkdir(parents=True, exist_ok=True)
    start = f"LATENCY_MS={args.latency_ms:g} ../shared/lab/start_s3.sh"
    results: dict[str, Any] = {
        "date": utc_date(),
        "data": facts,
        "machine": machine(),
        "versions": versions(),
        "library": library_state(),
        "commands": [
            start,
            "PY=$(python tests/hyperspy/env.py)     # the HyperSpy reference venv",
            "$PY benchmarks/make_data.py",
            command_line("bench_write.py", args_list),
            "../shared/lab/stop_s3.sh",
        ],
    }
    results["machine"]["loadavg_start"] = os.getloadavg()
    if lab is not None:
        ensure_s3fs_in_venv()
    if not args.peak_only:
        with HyperspyWorker() as worker:
            if not args.remote_only:
                results["local"] = bench_local(data_dir, facts, args.repeats, worker, args.out)
            if lab is not None:
                results["remote"] = bench_remote(
                    lab, data_dir, facts, args.remote_repeats, worker, args.latency_ms
                )
    if not args.no_peak and not args.remote_only:
        shape = tuple(int(n) for n in args.peak_shape.split("x"))
        chunks = tuple(int(n) for n in args.peak_chunks.split("x"))
        results["peak"] = bench_peak(args.out, shape, chunks)
    results["machine"]["loadavg_end"] = os.getloadavg()
    if args.reuse:
        old = json.loads(args.reuse.read_text())
        taken = [p for p in ("local", "remote", "peak") if p not in results and p in old]
        for part in taken:
            results[part] = old[part]
        results["commands"][3:3] = [c for c in old["commands"] if "bench_write" in c]
        results["reused"] = {
            "file": str(args.reuse),
            "date": old["date"],
            "machine": old["machine"],
        }
    save_results("bench_write", results)
    print_table(results)
    if not args.no_docs and "local" in results:
        write_section(args.docs, "bench_write.py", render(results), WRITE_HEADING)
        log(f"updated {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
