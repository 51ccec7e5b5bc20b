"""What a run records about itself: the machine, the versions, the library's git state."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchmarks._common.paths import REPO


def versions() -> dict[str, Any]:
    """Versions of the main environment's stack and of the HyperSpy venv's."""
    from importlib.metadata import PackageNotFoundError, version

    from tests.hyperspy.env import hyperspy_python, subprocess_env

    main = {"python": platform.python_version()}
    for name in (
        "intake-zspy",
        "zarr",
        "numcodecs",
        "numpy",
        "xarray",
        "dask",
        "fsspec",
        "s3fs",
        "aiobotocore",
    ):
        try:
            main[name] = version(name)
        except PackageNotFoundError:
            main[name] = "?"
    probe = (
        "import json, importlib.metadata as m, platform; print(json.dumps({'python': "
        "platform.python_version(), **{n: m.version(n) for n in ('hyperspy', 'rosettasciio', "
        "'exspy', 'zarr', 'numcodecs', 'numpy', 'dask', 'fsspec', 's3fs')}}))"
    )
    proc = subprocess.run(
        [str(hyperspy_python()), "-c", probe],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
        timeout=120,
    )
    return {"main": main, "hyperspy_venv": json.loads(proc.stdout)}


def library_state() -> dict[str, Any]:
    """The commit of the working tree and the library files that differ from it."""

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return proc.stdout.rstrip("\n")

    dirty = git("status", "--porcelain", "--", "intake_zspy").splitlines()
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "uncommitted": [line[3:] for line in dirty],
    }


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, kernel (the load average is added by the scripts)."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem, 1),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
    }
