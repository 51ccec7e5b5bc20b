"""Read benchmarks: intake-zspy vs raw zarr 3 vs RosettaSciIO, locally and over S3.

One run measures, side by side:

* **local full read** of the 4D-STEM store (warm page cache): intake-zspy
  (``open_dataset(...)["data"].values`` and ``chunks={}`` + ``.compute()``), raw zarr 3
  (``zarr.open_array(..., zarr_format=2)[...]``), RosettaSciIO (``rsciio.zspy.file_reader``
  in the HyperSpy venv, timed inside that process) and the physical limit (reading the
  chunk files, then reading + decompressing them with numcodecs in a thread pool);
* **remote open** of the EELS store (about 77 groups) through the s3lab latency proxy:
  time, request count and the longest chain of sequential requests, for intake-zspy with
  and without ``.zmetadata`` and for RosettaSciIO (zarr 2 ``FSStore``);
* **remote full read** of the 4D-STEM store: intake-zspy vs raw zarr 3 vs RosettaSciIO,
  plus the network floor (s3fs fetching the chunk objects without decoding them).

It prints a table, saves the raw numbers to ``.cache/bench-results/`` and rewrites the
generated section of ``docs/benchmarks.md``. Typical use (see ``benchmarks/README.md``)::

    LATENCY_MS=20 ../shared/lab/start_s3.sh
    python benchmarks/bench_read.py             # full size, writes docs/benchmarks.md
    python benchmarks/bench_read.py --small     # quick run, does not touch the docs
    ../shared/lab/stop_s3.sh

The stores are written by ``benchmarks/make_data.py`` in the HyperSpy venv; this script
runs it when they are missing. Runs in the project's environment (standard library plus the
project's dependencies and s3fs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numcodecs
import numpy as np

from benchmarks._common.context import library_state, machine, versions
from benchmarks._common.lab import Lab, add_lab_options, quiet_unclosed_sessions, request_floor
from benchmarks._common.paths import (
    BUCKET,
    DATA_DIR,
    DATA_DIR_SMALL,
    DOCS,
    EELS,
    EELS_NOCONS,
    EELS_OLDMETA,
    STEM,
    chunk_files,
)
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
from benchmarks._common.timing import Case, in_process, interleaved
from benchmarks._common.venv import VenvWorker, ensure_data, ensure_s3fs_in_venv

BEGIN, END = section_markers("bench_read.py")


# -- measuring ----------------------------------------------------------------------------


class RsciioWorker(VenvWorker):
    """``rsciio_worker.py --serve`` in the HyperSpy venv."""

    script = "rsciio_worker.py"


def in_worker(worker: RsciioWorker, job: dict[str, Any]) -> Case:
    return lambda: worker.run({**job, "repeats": 1, "warmup": None})[0]


# -- the readers, in this process ---------------------------------------------------------


def read_intake(url: str, options: dict[str, Any] | None, *, dask: bool = False) -> int:
    import intake_zspy

    ds = intake_zspy.open_dataset(url, storage_options=options, chunks={} if dask else None)
    values = ds["data"].compute().values if dask else ds["data"].values
    ds.close()
    return int(values.nbytes)


def open_intake(url: str, options: dict[str, Any] | None, consolidated: bool | None) -> int:
    import intake_zspy

    ds = intake_zspy.open_dataset(url, storage_options=options, consolidated=consolidated)
    nbytes = len(ds.attrs["metadata"])  # everything but the data is decoded by now
    ds.close()
    return nbytes


def read_zarr3(store: str, data_path: str, options: dict[str, Any] | None) -> int:
    import zarr

    array = zarr.open_array(
        store, path=data_path, zarr_format=2, mode="r", storage_options=options or None
    )
    return int(array[...].nbytes)


def read_physical(store_dir: Path, data_path: str, *, decode: str | None) -> int:
    """The floor: read the chunk files and, optionally, decompress and place them.

    ``decode=None`` only reads the bytes; ``"fresh"`` decodes every chunk into a new
    buffer (as the readers do); ``"reuse"`` decodes into one buffer per thread, reused
    from chunk to chunk (no page faults on fresh memory), then copies into the output.
    Thread pool of one thread per core, numcodecs Blosc.
    """
    meta = json.loads((store_dir / data_path / ".zarray").read_text())
    files = chunk_files(store_dir / data_path)
    threads = os.cpu_count() or 2
    if decode is None:
        with ThreadPoolExecutor(threads) as pool:
            return sum(pool.map(lambda p: len(p.read_bytes()), files))
    dtype = np.dtype(meta["dtype"])
    shape, chunks = tuple(meta["shape"]), tuple(meta["chunks"])
    sep = meta.get("dimension_separator") or "."
    codec = numcodecs.get_codec(meta["compressor"])
    out = np.empty(shape, dtype=dtype)
    base = store_dir / data_path
    buffers = threading.local()

    def place(path: Path) -> None:
        rel = path.relative_to(base).as_posix()
        idx = [int(i) for i in rel.split(sep)]
        raw = path.read_bytes()
        if decode == "reuse":
            buf = getattr(buffers, "buf", None)
            if buf is None:
                buf = buffers.buf = np.empty(chunks, dtype=dtype)
            codec.decode(raw, out=buf)
            chunk = buf
        else:
            chunk = np.frombuffer(codec.decode(raw), dtype=dtype).reshape(chunks)
        dst = tuple(
            slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(idx, chunks, shape, strict=True)
        )
        src = tuple(slice(0, s.stop - s.start) for s in dst)
        out[dst] = chunk[src]

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(place, files))
    return int(out.nbytes)


# -- data ---------------------------------------------------------------------------------


def upload(lab: Lab, local: Path, prefix: str, *, zmetadata_last: bool = True) -> None:
    """Upload a store through the direct endpoint, skipping it when already there.

    ``.zmetadata`` is uploaded after every other key and more than a second later (S3
    ``LastModified`` has a resolution of one second), as when HyperSpy writes to S3 and
    consolidates at the end; ``zmetadata_last=False`` uploads it first instead, as an
    unordered copy (``aws s3 sync``, ``fs.put``) may.
    """
    fs = lab.fs(direct=True)
    files = {p.relative_to(local).as_posix(): p for p in local.rglob("*") if p.is_file()}
    try:
        there = {k[len(prefix) + 1 :]: v["size"] for k, v in fs.find(prefix, detail=True).items()}
    except FileNotFoundError:
        there = {}
    if there == {k: p.stat().st_size for k, p in files.items()}:
        return
    if there:
        fs.rm(prefix, recursive=True)
    meta = [k for k in files if k == ".zmetadata"]
    rest = [k for k in files if k != ".zmetadata"]
    order = [rest, meta] if zmetadata_last else [meta, rest]
    t0 = time.perf_counter()
    for i, keys in enumerate(order):
        if not keys:
            continue
        if i:
            time.sleep(1.2)
        fs.put([str(files[k]) for k in keys], [f"{prefix}/{k}" for k in keys])
    log(
        f"  uploaded {local.name} -> s3://{prefix} ({len(files)} keys, {time.perf_counter() - t0:.1f} s)"
    )


# -- the benchmark ------------------------------------------------------------------------


def bench_local(
    data_dir: Path, facts: dict[str, Any], rounds: int, worker: RsciioWorker
) -> dict[str, Any]:
    stem = data_dir / STEM
    data_path = facts["stores"][STEM]["data_path"]
    log(
        f"local full read of {stem} ({facts['stores'][STEM]['nbytes'] / 1e9:.2f} GB), "
        f"{rounds} interleaved rounds after a warm-up round"
    )
    p = str(stem)
    job = {"store": {"path": p}, "lazy": False}

    def case(label: str, fn: Callable[[], int]) -> tuple[str, Case, Callable[[], object]]:
        return label, in_process(fn), fn

    return interleaved(
        {
            "physical_bytes": case(
                "chunk files read (bytes only)",
                lambda: read_physical(stem, data_path, decode=None),
            ),
            "physical_fresh": case(
                "chunk files read + decompressed into fresh buffers + placed",
                lambda: read_physical(stem, data_path, decode="fresh"),
            ),
            "physical": case(
                "chunk files read + decompressed into reused buffers + placed",
                lambda: read_physical(stem, data_path, decode="reuse"),
            ),
            "intake": case(
                'intake_zspy open_dataset(...)["data"].values', lambda: read_intake(p, None)
            ),
            "intake_dask": case(
                "intake_zspy chunks={} + .compute()", lambda: read_intake(p, None, dask=True)
            ),
            "zarr3": case("zarr 3 open_array(...)[...]", lambda: read_zarr3(p, data_path, None)),
            "rsciio": (
                "RosettaSciIO file_reader(lazy=False)",
                in_worker(worker, job),
                lambda: worker.run({**job, "repeats": 1}),
            ),
        },
        rounds,
    )


def bench_remote(
    lab: Lab,
    worker: RsciioWorker,
    data_dir: Path,
    facts: dict[str, Any],
    *,
    prefix: str,
    latency_ms: float,
    open_rounds: int,
    read_rounds: int,
    rsciio_open_repeats: int,
) -> dict[str, Any]:
    import fsspec.asyn
    import s3fs

    res: dict[str, Any] = {"server": lab.server, "latency_ms": latency_ms}
    lab.config(latency_ms=0)
    lab.ensure_bucket(BUCKET)
    log(f"uploading to s3://{BUCKET}/{prefix} through {lab.direct} (skipped when present)")
    base = f"{BUCKET}/{prefix}"
    upload(lab, data_dir / EELS, f"{base}/{EELS}")
    upload(lab, data_dir / EELS_NOCONS, f"{base}/{EELS_NOCONS}")
    upload(lab, data_dir / EELS, f"{base}/{EELS_OLDMETA}", zmetadata_last=False)
    upload(lab, data_dir / STEM, f"{base}/{STEM}")
    # Warm the server up (Ceph is slow on first touches): read everything once.
    warm = lab.fs()
    warm.cat(warm.find(base))
    res["floor_ms"] = request_floor(lab, f"{base}/{EELS}/.zgroup", latency_ms)
    log(
        "per-request floor (median ms): "
        + ", ".join(f"{k} {v:.1f}" for k, v in res["floor_ms"].items())
    )
    lab.config(latency_ms=latency_ms)

    url = f"s3://{base}"
    so = lab.storage_options()
    quiet_unclosed_sessions()
    warm_stem = {"url": f"{url}/{STEM}", "storage_options": so}
    # warm both processes up (imports, first s3fs client) without counting it
    open_intake(f"{url}/{STEM}", so, None)
    worker.run({"warmup": warm_stem, "repeats": 0})

    log(
        f"remote open of the EELS store ({facts['stores'][EELS]['groups']} groups), "
        f"latency {latency_ms:g} ms, {open_rounds} interleaved rounds"
    )
    wide = {**so, "config_kwargs": {**so["config_kwargs"], "max_pool_connections": 64}}
    eels_so = {"url": f"{url}/{EELS}", "storage_options": so}

    def op(label: str, fn: Callable[[], int]) -> tuple[str, Case, None]:
        return label, in_process(fn, lab), None

    opens = interleaved(
        {
            "intake_default": op(
                "intake_zspy open_dataset, .zmetadata (consolidated=None)",
                lambda: open_intake(f"{url}/{EELS}", so, None),
            ),
            "intake_consolidated": op(
                "intake_zspy consolidated=True", lambda: open_intake(f"{url}/{EELS}", so, True)
            ),
            "intake_oldmeta": op(
                "intake_zspy consolidated=None, .zmetadata older than the documents",
                lambda: open_intake(f"{url}/{EELS_OLDMETA}", so, None),
            ),
            "intake_nocons": op(
                "intake_zspy, no .zmetadata",
                lambda: open_intake(f"{url}/{EELS_NOCONS}", so, None),
            ),
            "intake_nocons_pool64": op(
                "intake_zspy, no .zmetadata, s3fs max_pool_connections=64",
                lambda: open_intake(f"{url}/{EELS_NOCONS}", wide, None),
            ),
            "intake_values": op(
                "intake_zspy open + .values (EELS data too)",
                lambda: read_intake(f"{url}/{EELS}", so),
            ),
            "intake_stem_default": op(
                "intake_zspy open_dataset 4D-STEM store (no metadata arrays)",
                lambda: open_intake(f"{url}/{STEM}", so, None),
            ),
            "rsciio_consolidated": (
                "RosettaSciIO file_reader(ConsolidatedMetadataStore(FSStore))",
                in_worker(
                    worker,
                    {"store": eels_so, "lazy": False, "consolidated": True, "control": lab.control},
                ),
                None,
            ),
        },
        open_rounds,
        lab,
    )
    if rsciio_open_repeats > 0:
        opens |= interleaved(
            {
                "rsciio": (
                    "RosettaSciIO file_reader(FSStore) (.zmetadata not used)",
                    in_worker(worker, {"store": eels_so, "lazy": False, "control": lab.control}),
                    None,
                )
            },
            rsciio_open_repeats,
            lab,
        )
    res["open"] = opens

    data_path = facts["stores"][STEM]["data_path"]
    log(
        f"remote full read of the 4D-STEM store, latency {latency_ms:g} ms, "
        f"{read_rounds} interleaved rounds"
    )
    chunk_keys = [
        f"{base}/{STEM}/{p.relative_to(data_dir / STEM).as_posix()}"
        for p in chunk_files(data_dir / STEM / data_path)
    ]

    def network_floor() -> int:
        # one GET per object, all at once (fs.cat would first HEAD every object)
        fs = s3fs.S3FileSystem(**so)

        async def fetch() -> list[bytes]:
            return await asyncio.gather(*(fs._cat_file(k, max_concurrency=1) for k in chunk_keys))

        return sum(len(v) for v in fsspec.asyn.sync(fs.loop, fetch))

    stem_url = f"{url}/{STEM}"
    res["read"] = interleaved(
        {
            "network": op("s3fs GET of every chunk object at once, no decoding", network_floor),
            "intake": op(
                'intake_zspy open_dataset(...)["data"].values', lambda: read_intake(stem_url, so)
            ),
            "intake_dask": op(
                "intake_zspy chunks={} + .compute()",
                lambda: read_intake(stem_url, so, dask=True),
            ),
            "zarr3": op("zarr 3 open_array(...)[...]", lambda: read_zarr3(stem_url, data_path, so)),
            "rsciio": (
                "RosettaSciIO file_reader(FSStore, lazy=False)",
                in_worker(worker, {"store": warm_stem, "lazy": False, "control": lab.control}),
                None,
            ),
        },
        read_rounds,
        lab,
    )
    return res


# -- reporting ----------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    remote = results.get("remote")
    local = results.get("local")
    if remote:
        lat = remote["latency_ms"]
        o = remote["open"]
        d = o["intake_default"]
        fast, few = d["seconds"] <= 0.3, d["requests"] <= 5
        status = (
            "met"
            if fast and few
            else "time met, **requests not met**"
            if fast
            else "requests met, **time not met**"
            if few
            else "**not met**"
        )
        rows.append(
            (
                f"open with .zmetadata: <= 5 requests and <= 0.3 s at {lat:g} ms",
                (
                    f"{d['requests']} requests, {secs(d['seconds'])} s (consolidated=True: "
                    f"{o['intake_consolidated']['requests']} requests, "
                    f"{secs(o['intake_consolidated']['seconds'])} s; 4D-STEM store: "
                    f"{o['intake_stem_default']['requests']} requests, "
                    f"{secs(o['intake_stem_default']['seconds'])} s)"
                ),
                status,
            )
        )
        n = o["intake_nocons"]
        rows.append(
            (
                "open without .zmetadata: concurrent, round trips with depth not groups, <= 1 s",
                (
                    f"{secs(n['seconds'])} s, {n['requests']} requests in a chain of "
                    f"{n['round_trips']} sequential round trips; with s3fs "
                    f"max_pool_connections=64: {secs(o['intake_nocons_pool64']['seconds'])} s, "
                    f"{o['intake_nocons_pool64']['round_trips']} round trips"
                    + (
                        f" (RosettaSciIO: {o['rsciio']['requests']} requests, "
                        f"{o['rsciio']['round_trips']} round trips)"
                        if "rsciio" in o
                        else ""
                    )
                ),
                "met" if n["seconds"] <= 1.0 else "**not met**",
            )
        )
    if local:
        a, z, r = local["intake"]["seconds"], local["zarr3"]["seconds"], local["rsciio"]["seconds"]
        rows.append(
            (
                "full read, local: no slower than zarr 3, >= 2x RosettaSciIO",
                (
                    f"{secs(a)} s vs zarr 3 {secs(z)} s ({ratio(z, a)}), "
                    f"vs RosettaSciIO {secs(r)} s ({ratio(r, a)})"
                ),
                "met" if a <= z * 1.05 and r / a >= 2 else "**not met**",
            )
        )
    if remote:
        rd = remote["read"]
        a, z, r = rd["intake"]["seconds"], rd["zarr3"]["seconds"], rd["rsciio"]["seconds"]
        rows.append(
            (
                (
                    f"full read, remote ({remote['latency_ms']:g} ms): no slower than zarr 3, "
                    ">= 3x RosettaSciIO"
                ),
                (
                    f"{secs(a)} s vs zarr 3 {secs(z)} s ({ratio(z, a)}), "
                    f"vs RosettaSciIO {secs(r)} s ({ratio(r, a)})"
                ),
                "met" if a <= z * 1.05 and r / a >= 3 else "**not met**",
            )
        )
    return rows


def render_remote(remote: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """The markdown of one remote run (one S3 server)."""
    eels, stem = facts["stores"][EELS], facts["stores"][STEM]
    lines: list[str] = []
    lat = remote["latency_ms"]
    fl = remote["floor_ms"]
    proxy_lat = fl[f"GET proxy_{lat:g}ms"]
    lines += [
        f"### Remote: S3 lab, {remote['server']} behind the latency proxy (+{lat:g} ms per request)",
        "",
        (
            "Every measurement uses a new s3fs filesystem (no listing cache, new connections); "
            "request counts and the longest chain of strictly sequential requests come from "
            "the proxy, reset before each run."
        ),
        "",
        (
            "Per-request floor, median ms of one small request on a warm connection "
            f"(GET / HEAD / LIST): direct to the server {fl['GET direct']:.1f} / "
            f"{fl['HEAD direct']:.1f} / {fl['LIST direct']:.1f}; through the proxy at 0 ms "
            f"{fl['GET proxy_0ms']:.1f} / {fl['HEAD proxy_0ms']:.1f} / "
            f"{fl['LIST proxy_0ms']:.1f}; at {lat:g} ms {proxy_lat:.1f} / "
            f"{fl[f'HEAD proxy_{lat:g}ms']:.1f} / {fl[f'LIST proxy_{lat:g}ms']:.1f}. "
            f"So one GET round trip costs about {proxy_lat:.0f} ms here: {lat:g} ms of "
            f"configured latency, {fl['GET proxy_0ms']:.0f} ms that the server itself takes "
            f"(its floor, seen directly too; a HEAD takes {fl['HEAD direct']:.0f} ms), and "
            f"{proxy_lat - lat - fl['GET proxy_0ms']:.0f} ms more that only appears when the "
            "proxy delays a GET (seen with both servers)."
        ),
        "",
        f"#### Open the EELS spectrum image ({eels['groups']} groups, {eels['arrays']} arrays)",
        "",
        (
            f"Median of {remote['open']['intake_default']['repeats']} interleaved rounds (every "
            "row once per round; RosettaSciIO without consolidation: "
            f"{remote['open'].get('rsciio', {}).get('repeats', 0)} run(s), after them). "
            "`open` = everything but the "
            f"data decoded. RosettaSciIO is timed with `lazy=False` (it also reads the "
            f"{eels['nbytes'] / 1e6:.1f} MB of data, {eels['n_chunks']} chunk GET(s)) because "
            "its `lazy=True` fails on stores with ragged markers (`ValueError: Array is "
            "already a dask array`); compare it with the `open + .values` row."
        ),
        "",
        "| what | median s | requests | by operation | sequential round trips | peak in flight |",
        "|---|---|---|---|---|---|",
    ]
    labels = {
        "intake_default": "intake_zspy `open_dataset(url)` (default `consolidated=None`)",
        "intake_consolidated": "intake_zspy `open_dataset(url, consolidated=True)`",
        "intake_oldmeta": "intake_zspy default, `.zmetadata` older than the other keys "
        "(unordered upload)",
        "intake_nocons": "intake_zspy `open_dataset(url)`, no `.zmetadata`",
        "intake_nocons_pool64": "same, s3fs `config_kwargs={'max_pool_connections': 64}`",
        "intake_values": 'intake_zspy `open_dataset(url)["data"].values` (open + data)',
        "intake_stem_default": "intake_zspy `open_dataset(url)` on the 4D-STEM store "
        "(no metadata arrays)",
        "rsciio_consolidated": "RosettaSciIO `file_reader(ConsolidatedMetadataStore(FSStore))`",
        "rsciio": "RosettaSciIO `file_reader(FSStore(url))` (ignores `.zmetadata`)",
    }
    for key, label in labels.items():
        if key not in remote["open"]:
            continue
        x = remote["open"][key]
        lines.append(
            f"| {label} | {secs(x['seconds'])} | {x['requests']} | {ops_text(x['by_op'])} | "
            f"{x['round_trips']} | {x['max_inflight']} |"
        )
    rd = remote["read"]
    z, r = rd["zarr3"]["seconds"], rd["rsciio"]["seconds"]
    lines += [
        "",
        (
            f"#### Full read of the 4D-STEM store ({stem['nbytes'] / 1e9:.2f} GB, "
            f"{stem['bytes_on_disk'] / 1e6:.0f} MB of chunk objects)"
        ),
        "",
        (
            f"Median of {rd['intake']['repeats']} interleaved rounds; both processes were warmed "
            "up (imports, a first s3fs client) before. Opening the store is included for every "
            "reader."
        ),
        "",
        (
            "| reader | median s | min-max s | requests | MB/s transferred | zarr 3 / this | "
            "RosettaSciIO / this |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("network", "floor: s3fs GET of every chunk object, all requested at once, no decoding"),
        ("intake", 'intake_zspy `open_dataset(url)["data"].values`'),
        ("intake_dask", 'intake_zspy `open_dataset(url, chunks={})["data"].compute()`'),
        ("zarr3", "zarr 3 `zarr.open_array(url, storage_options=..., zarr_format=2)[...]`"),
        ("rsciio", "RosettaSciIO `file_reader(FSStore(url), lazy=False)`"),
    ):
        x = rd[key]
        mbps = (x.get("bytes_out") or 0) / 1e6 / x["seconds"]
        lines.append(
            f"| {label} | {secs(x['seconds'])} | {secs(x['min'])}-{secs(x['max'])} | "
            f"{x['requests']} | {mbps:.{0 if mbps >= 10 else 1}f} | {ratio(z, x['seconds'])} | "
            f"{ratio(r, x['seconds'])} |"
        )
    lines.append("")
    return lines


def render(results: dict[str, Any]) -> str:
    facts = results["data"]
    eels, stem = facts["stores"][EELS], facts["stores"][STEM]
    m, v = results["machine"], results["versions"]
    lines = [
        BEGIN,
        "",
        (
            f"Generated by `benchmarks/bench_read.py` on {results['date']} "
            f"({'small' if results['small'] else 'full'} size)."
        ),
        "",
        (
            f"**Machine:** {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, "
            f"Linux {m['kernel']}; client, proxy and S3 server share the cores. Load average "
            f"(1 min) {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the "
            "end of the run (other work on the machine adds noise)."
        ),
        "",
        "**Versions:** "
        + ", ".join(f"{k} {x}" for k, x in v["main"].items())
        + ". RosettaSciIO venv: "
        + ", ".join(f"{k} {x}" for k, x in v["hyperspy_venv"].items())
        + ".",
        "",
        library_line(results.get("library")),
        "",
        (
            "**Data** (written by HyperSpy's `s.save()` with its defaults: nested directory "
            "store, Blosc zstd level 1 + byte shuffle, default chunking, `.zmetadata`):"
        ),
        "",
        "| store | data | chunks | groups | arrays | keys | on disk |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in (EELS, STEM):
        f = facts["stores"][name]
        lines.append(
            f"| `{name}` | {'x'.join(map(str, f['shape']))} {f['dtype']} "
            f"({f['nbytes'] / 1e9:.3f} GB) | {f['n_chunks']} of {'x'.join(map(str, f['chunks']))}"
            f" | {f['groups']} | {f['arrays']} | {f['keys']} | {f['bytes_on_disk'] / 1e6:.1f} MB |"
        )
    lines += [
        "",
        (
            f"`{EELS}` also exists without `.zmetadata` (`{EELS_NOCONS}`); its "
            f"{eels['arrays'] - 1} metadata arrays (DM tag tuples, marker offsets/texts/colours) are "
            "read when a signal is opened, one chunk object each."
        ),
        "",
    ]
    local = results.get("local")
    if local:
        gb = stem["nbytes"] / 1e9
        z, r = local["zarr3"]["seconds"], local["rsciio"]["seconds"]
        lines += [
            f"### Full read, local disk ({stem['nbytes'] / 1e9:.2f} GB 4D-STEM store)",
            "",
            (
                "Warm page cache (dropping the OS caches is not possible here): this measures "
                "decoding and copying, not the disk. Median of "
                f"{local['intake']['repeats']} interleaved rounds (every reader once per round) "
                "after a warm-up round; RosettaSciIO is timed inside its own process around "
                "`file_reader` only (no interpreter start or imports)."
            ),
            "",
            "| reader | median s | min-max s | GB/s | zarr 3 / this | RosettaSciIO / this |",
            "|---|---|---|---|---|---|",
        ]
        for key, label in (
            ("physical_bytes", "floor: read the chunk files (bytes only, thread pool)"),
            (
                "physical_fresh",
                "read + decompress into a new buffer per chunk + place (numcodecs, thread pool)",
            ),
            (
                "physical",
                "floor: read + decompress into a reused buffer per thread + place",
            ),
            ("intake", 'intake_zspy `open_dataset(p)["data"].values`'),
            ("intake_dask", 'intake_zspy `open_dataset(p, chunks={})["data"].compute()`'),
            ("zarr3", "zarr 3 `zarr.open_array(p, path=..., zarr_format=2)[...]`"),
            ("rsciio", "RosettaSciIO `rsciio.zspy.file_reader(p, lazy=False)`"),
        ):
            x = local[key]
            lines.append(
                f"| {label} | {secs(x['seconds'])} | {secs(x['min'])}-{secs(x['max'])} | "
                f"{gb / x['seconds']:.2f} | {ratio(z, x['seconds'])} | {ratio(r, x['seconds'])} |"
            )
        lines.append("")
    remotes = [results.get("remote")] + [x.get("remote") for x in results.get("also", [])]
    for remote in remotes:
        if remote:
            lines += render_remote(remote, facts)
    rows = targets(results)
    if rows:
        lines += ["### Targets", "", "| target | measured | |", "|---|---|---|"]
        lines += [f"| {t} | {mm} | {ok} |" for t, mm, ok in rows]
        lines.append("")
    lines += [
        "### Commands",
        "",
        "```sh",
        *results["commands"],
        *[
            line
            for extra in results.get("also", [])
            for line in (
                f"# remote part on {extra['remote']['server']} ({extra['date']}):",
                *[c for c in extra["commands"] if "start_s3" in c or "bench_read" in c],
                "../shared/lab/stop_s3.sh",
            )
        ],
        *(
            ["# the section above was rendered from the saved results with:", rc]
            if (rc := results.get("render_command"))
            else []
        ),
        "```",
        "",
        END,
    ]
    return "\n".join(lines)


def print_table(results: dict[str, Any]) -> None:
    local, remote = results.get("local"), results.get("remote")
    print()
    if local:
        print("LOCAL full read (4D-STEM)           median s   vs zarr3   vs rsciio")
        z, r = local["zarr3"]["seconds"], local["rsciio"]["seconds"]
        for key in (
            "physical_bytes",
            "physical_fresh",
            "physical",
            "intake",
            "intake_dask",
            "zarr3",
            "rsciio",
        ):
            s = local[key]["seconds"]
            print(f"  {key:32s} {s:9.3f}  {z / s:8.2f}x  {r / s:8.2f}x")
    if remote:
        print(
            f"REMOTE open EELS ({remote['server']}, +{remote['latency_ms']:g} ms)  "
            "median s  requests  round trips"
        )
        for key, x in remote["open"].items():
            print(f"  {key:32s} {x['seconds']:9.3f}  {x['requests']:8d}  {x['round_trips']:8d}")
        print("REMOTE full read (4D-STEM)          median s  requests   vs zarr3   vs rsciio")
        z, r = remote["read"]["zarr3"]["seconds"], remote["read"]["rsciio"]["seconds"]
        for key, x in remote["read"].items():
            s = x["seconds"]
            print(f"  {key:32s} {s:9.3f}  {x['requests']:8d}  {z / s:8.2f}x  {r / s:8.2f}x")
    for target, measured, ok in targets(results):
        print(f"TARGET {ok.replace('*', ''):8s} {target}: {measured}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="small stores, fewer repeats")
    parser.add_argument("--data", type=Path, help="store directory (default .cache/bench-data)")
    parser.add_argument("--local-only", action="store_true")
    parser.add_argument("--remote-only", action="store_true")
    add_lab_options(parser)
    parser.add_argument("--repeats", type=int, help="local full reads (default 3, small 2)")
    parser.add_argument("--open-repeats", type=int, default=5)
    parser.add_argument("--read-repeats", type=int, help="remote full reads (default 3, small 2)")
    parser.add_argument(
        "--rsciio-open-repeats",
        type=int,
        default=1,
        help="RosettaSciIO opens without .zmetadata (about 100 s each on Ceph at 20 ms; "
        "0 skips them)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        help="markdown file to update (default "
        "docs/benchmarks.md for full-size runs, none for --small)",
    )
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--also",
        type=Path,
        nargs="*",
        default=[],
        metavar="JSON",
        help="add the remote results of other runs (e.g. on SeaweedFS) to the docs section",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only re-render the docs section from a saved results file",
    )
    args = parser.parse_args(argv)
    command = command_line("bench_read.py", sys.argv[1:] if argv is None else argv)

    docs = None if args.no_docs else (args.docs or (None if args.small else DOCS))
    also = [json.loads(path.read_text()) for path in args.also]
    if args.render:
        results = json.loads(args.render.read_text())
        results["also"] = also
        results["render_command"] = command
        print_table(results)
        if docs:
            write_section(docs, "bench_read.py", render(results))
            log(f"updated {docs}")
        return 0

    lab = None
    if not args.local_only:
        lab = Lab.running(args.lab_env)
        if lab is None:
            log(
                f"the S3 lab is not running ({args.lab_env}): start it with "
                "`LATENCY_MS=20 ../shared/lab/start_s3.sh`, or pass --local-only"
            )
            return 2
    data_dir = args.data or (DATA_DIR_SMALL if args.small else DATA_DIR)
    repeats = args.repeats or (2 if args.small else 3)
    read_repeats = args.read_repeats or (2 if args.small else 3)
    facts = ensure_data(data_dir, args.small)
    server = lab.server if lab else "local"
    start = f"LATENCY_MS={args.latency_ms:g} ../shared/lab/start_s3.sh"
    if server not in ("ceph", "local"):
        start = f"SERVER={server} {start}"
    results: dict[str, Any] = {
        "date": utc_date(),
        "small": args.small,
        "data": facts,
        "machine": machine(),
        "versions": versions(),
        "library": library_state(),
        "commands": [
            "../shared/lab/setup.sh                # once per machine",
            f"{start}" + ("   # Ceph RGW (the default server)" if server == "ceph" else ""),
            "PY=$(python tests/hyperspy/env.py)     # the HyperSpy reference venv",
            f"$PY benchmarks/make_data.py{' --small' if args.small else ''}",
            command,
            "../shared/lab/stop_s3.sh",
        ],
        "also": also,
    }
    results["machine"]["loadavg_start"] = os.getloadavg()
    if lab is not None:
        ensure_s3fs_in_venv()
    with RsciioWorker() as worker:
        if not args.remote_only:
            results["local"] = bench_local(data_dir, facts, repeats, worker)
        if lab is not None:
            results["remote"] = bench_remote(
                lab,
                worker,
                data_dir,
                facts,
                prefix="small" if args.small else "full",
                latency_ms=args.latency_ms,
                open_rounds=args.open_repeats if not args.small else min(args.open_repeats, 3),
                read_rounds=read_repeats,
                rsciio_open_repeats=args.rsciio_open_repeats,
            )
    results["machine"]["loadavg_end"] = os.getloadavg()
    save_results(
        f"bench_read-{'small' if args.small else 'full'}-{server}",
        {k: v for k, v in results.items() if k != "also"},
    )
    print_table(results)
    if docs:
        write_section(docs, "bench_read.py", render(results))
        log(f"updated {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
