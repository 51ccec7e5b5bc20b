"""The S3 lab: its env file, the latency proxy's control API and request log, the chains of
sequential round trips, the per-request floors."""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._common.paths import BUCKET, DEFAULT_LAB_ENV

if TYPE_CHECKING:
    import argparse


def proxy_call(control: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The latency proxy's control API: GET ``path``, or POST ``payload`` as JSON."""
    data = None if payload is None else json.dumps(payload).encode()
    method = "GET" if data is None else "POST"
    req = urllib.request.Request(control + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
    return json.loads(body) if body.strip() else {}


def add_lab_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--lab-env`` (default ``$S3LAB_ENV``, else ``DEFAULT_LAB_ENV``) and ``--latency-ms``."""
    parser.add_argument(
        "--lab-env", type=Path, default=Path(os.environ.get("S3LAB_ENV", DEFAULT_LAB_ENV))
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)


class Lab:
    """The s3lab: endpoints from its env file, counters and request log of its proxy."""

    def __init__(self, env_file: Path) -> None:
        env: dict[str, str] = {}
        for line in env_file.read_text().splitlines():
            line = line.strip()
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                env[name] = value.strip().strip("'\"")
        self.env = env
        self.endpoint = env["S3LAB_ENDPOINT"]
        self.direct = env["S3LAB_DIRECT_ENDPOINT"]
        self.control = env["S3LAB_CONTROL"]
        self.server = env.get("S3LAB_SERVER", "?")
        self.log_path = Path(env["S3LAB_REQUEST_LOG"])
        self.key = env.get("AWS_ACCESS_KEY_ID", "labkey")
        self.secret = env.get("AWS_SECRET_ACCESS_KEY", "labsecret")
        # The env file sets AWS_* and FSSPEC_S3_* for botocore; the HyperSpy venv
        # subprocesses inherit them.
        os.environ.update(env)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log: list[dict[str, Any]] = []

    @classmethod
    def running(cls, env_file: Path) -> Lab | None:
        """The lab of ``env_file`` if that file exists and the proxy answers, else None."""
        lab = cls(env_file) if env_file.exists() else None
        return lab if lab is not None and lab.alive() else None

    def alive(self) -> bool:
        try:
            self.stats()
        except OSError:
            return False
        return True

    def config(self, **settings: Any) -> dict[str, Any]:
        return proxy_call(self.control, "/config", settings)

    def reset(self) -> None:
        proxy_call(self.control, "/reset", {})

    def stats(self) -> dict[str, Any]:
        return proxy_call(self.control, "/stats")

    def storage_options(self, *, direct: bool = False) -> dict[str, Any]:
        """s3fs options; a fresh filesystem (cold caches, new connections) every time."""
        return {
            "key": self.key,
            "secret": self.secret,
            "endpoint_url": self.direct if direct else self.endpoint,
            "config_kwargs": {"s3": {"addressing_style": "path"}},
            "skip_instance_cache": True,
        }

    def fs(self, *, direct: bool = False, **extra: Any) -> Any:
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options(direct=direct), **extra)

    def ensure_bucket(self, bucket: str = BUCKET) -> None:
        """Create ``bucket`` (through the direct endpoint) unless it exists."""
        fs = self.fs(direct=True)
        if not fs.exists(bucket):
            fs.mkdir(bucket)

    def requests_between(self, t0: float, t1: float) -> list[dict[str, Any]]:
        """The proxy's log records of the requests that started in ``[t0, t1]``."""
        if self.log_path.exists():
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._log_offset += len(complete)
            for line in complete.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if "method" in rec and "t" in rec:
                    self._log.append(rec)
        return [r for r in self._log if t0 <= r["t"] <= t1]


def request_shape(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Longest chain of strictly sequential requests, and the peak number in flight."""
    spans = sorted((r["t"], r["t"] + r.get("ms", 0.0) / 1000.0) for r in records)
    chain: list[int] = []
    for i, (start, _end) in enumerate(spans):
        before = [chain[j] for j in range(i) if spans[j][1] <= start]
        chain.append(1 + max(before, default=0))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    inflight = peak = 0
    for _, step in events:
        inflight += step
        peak = max(peak, inflight)
    return {"round_trips": max(chain, default=0), "max_inflight": peak}


def request_floor(lab: Lab, path: str, latency_ms: float, n: int = 15) -> dict[str, float]:
    """Median milliseconds of one small GET / HEAD / LIST on a warm connection, direct and
    through the proxy at 0 and ``latency_ms``; leaves the proxy at ``latency_ms``."""
    out: dict[str, float] = {}
    prefix = path.rsplit("/", 1)[0]
    for where, direct, latency in (
        ("direct", True, 0.0),
        ("proxy_0ms", False, 0.0),
        (f"proxy_{latency_ms:g}ms", False, latency_ms),
    ):
        lab.config(latency_ms=latency)
        fs = lab.fs(direct=direct)
        fs.cat_file(path)
        for op, call in (
            ("GET", lambda fs=fs: fs.cat_file(path)),
            ("HEAD", lambda fs=fs: fs.info(path, refresh=True)),
            ("LIST", lambda fs=fs: fs.ls(prefix, refresh=True)),
        ):
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                call()
                samples.append((time.perf_counter() - start) * 1000)
            out[f"{op} {where}"] = statistics.median(samples)
    lab.config(latency_ms=latency_ms)
    return out


def quiet_unclosed_sessions() -> None:
    """Every measurement makes a new s3fs filesystem; aiohttp complains when one is
    garbage-collected with its session open. Silence that (only that) on the event loops
    of fsspec and zarr."""
    import fsspec.asyn
    from zarr.core.sync import _get_loop

    def handler(loop: Any, context: dict[str, Any]) -> None:
        if "Unclosed" not in str(context.get("message", "")):
            loop.default_exception_handler(context)

    for loop in (fsspec.asyn.get_loop(), _get_loop()):
        loop.set_exception_handler(handler)
