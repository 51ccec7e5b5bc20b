"""The HyperSpy reference venv: persistent worker scripts, the stores, s3fs there."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

from benchmarks._common.paths import EELS, EELS_NOCONS, HERE, STEM
from benchmarks._common.report import log


class VenvWorker:
    """Runs ``<script> --serve`` with the HyperSpy venv's python; one JSON line per job.

    Subclasses name the script (in ``benchmarks/``) in :attr:`script`; the script's
    ``main`` is :func:`serve`.
    """

    script: ClassVar[str]

    def __init__(self) -> None:
        from tests.hyperspy.env import hyperspy_python, subprocess_env

        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [str(hyperspy_python()), str(HERE / self.script), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=subprocess_env(),
        )

    def run(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """Send one job; return the worker's list of results."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            tail = "\n".join(self._stderr.read().splitlines()[-30:])
            raise RuntimeError(f"{self.script} died on {job}:\n{tail}")
        runs: list[dict[str, Any]] = json.loads(line)
        return runs

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(run_job: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> int:
    """A worker script's ``main``: ``--serve`` answers one JSON job per stdin line with
    one JSON line; otherwise the job is ``argv[1]`` and its result the last line printed."""
    if sys.argv[1:] == ["--serve"]:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(run_job(json.loads(line))), flush=True)
        return 0
    print(json.dumps(run_job(json.loads(sys.argv[1]))))
    return 0


def ensure_data(data_dir: Path, small: bool) -> dict[str, Any]:
    """The stores' manifest, after writing them with ``make_data.py`` if any is missing."""
    from tests.hyperspy.env import run_in_hyperspy

    manifest = data_dir / "manifest.json"
    if not all((data_dir / n).exists() for n in (EELS, EELS_NOCONS, STEM)) or not manifest.exists():
        log(f"writing the stores with HyperSpy into {data_dir} (benchmarks/make_data.py)")
        args = [str(data_dir)] + (["--small"] if small else [])
        proc = run_in_hyperspy(HERE / "make_data.py", *args, timeout=1800)
        log(proc.stdout.strip())
    facts: dict[str, Any] = json.loads(manifest.read_text())
    return facts


def ensure_s3fs_in_venv() -> None:
    """RosettaSciIO reads S3 through fsspec/s3fs, which the reference venv does not pin:
    install the s3fs of the venv's fsspec version when it is missing."""
    from tests.hyperspy.env import hyperspy_python, subprocess_env

    python = str(hyperspy_python())
    env = subprocess_env()
    check = subprocess.run(
        [python, "-c", "import s3fs"], capture_output=True, env=env, check=False, timeout=120
    )
    if check.returncode == 0:
        return
    fsspec_version = subprocess.run(
        [python, "-c", "import fsspec; print(fsspec.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    ).stdout.strip()
    log(f"installing s3fs=={fsspec_version} into the HyperSpy venv")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"s3fs=={fsspec_version}"], env=env, check=True, timeout=900)
