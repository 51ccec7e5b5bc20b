"""A persistent worker script in the HyperSpy venv, fed one JSON job per line."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Self

from tests.hyperspy.env import hyperspy_python, subprocess_env

HERE = Path(__file__).resolve().parent


class VenvWorker:
    """Runs ``<script> --serve`` with the HyperSpy venv's python; one JSON line per job.

    Subclasses name the script (beside this file) in :attr:`script`.
    """

    script: ClassVar[str]

    def __init__(self) -> None:
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
