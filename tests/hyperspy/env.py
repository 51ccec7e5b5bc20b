"""Create and use the HyperSpy reference virtual environment.

HyperSpy and RosettaSciIO need zarr 2, while this project uses zarr 3, so the
reference implementation lives in a virtual environment of its own, created
on first use at ``<repo>/.cache/hyperspy-venv`` (or at the path in the
environment variable ``INTAKE_ZSPY_HYPERSPY_VENV``) with ``python -m venv``
and a pip install of :data:`REQUIREMENTS`.

This module runs in the main environment and uses the standard library only.
From the command line it prints the path of the venv's python, creating the
venv if needed (CI and benchmarks use this)::

    python tests/hyperspy/env.py

Behaviour
---------
* An existing venv is accepted when its python can import ``hyperspy``,
  ``rsciio``, ``zarr`` and ``numcodecs`` and the installed versions satisfy
  every pin (checked inside the venv with ``importlib.metadata`` and
  ``packaging``), whether or not this module created it. Otherwise the pins
  are (re)installed with pip, so changing :data:`REQUIREMENTS` upgrades or
  downgrades an old venv.
* After a successful check, ``intake-zspy-requirements.txt`` in the venv
  records the requirement list that was satisfied.
* Two processes calling :func:`hyperspy_python` at once are serialised by an
  exclusive ``fcntl`` lock on ``<venv>.lock``; the second one finds the venv
  ready.
* Failures raise :class:`RuntimeError` with the tail of pip's (or the
  check's) output.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "REQUIREMENTS",
    "default_venv_dir",
    "ensure_venv",
    "hyperspy_python",
    "run_in_hyperspy",
    "subprocess_env",
]

REQUIREMENTS: tuple[str, ...] = (
    "hyperspy==2.5.0",
    "rosettasciio[zspy]==0.15.0",
    "exspy==0.3.2",
    "zarr>=2.18,<3",
    "numcodecs<0.16",
)
"""Pinned requirements of the HyperSpy reference environment."""

ENV_VAR = "INTAKE_ZSPY_HYPERSPY_VENV"
"""Environment variable overriding the location of the venv."""

MARKER_NAME = "intake-zspy-requirements.txt"
"""File written in the venv after a successful install or check."""

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Root of the repository (``tests/hyperspy/env.py`` -> repo)."""

PIP_TIMEOUT = 1800.0
"""Seconds allowed for ``pip install`` (a first install downloads ~150 MB)."""

_TAIL_LINES = 60

_CHECK_SCRIPT = r"""
import importlib, importlib.metadata as md, json, sys
try:
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover - pip always vendors it
    from pip._vendor.packaging.requirements import Requirement
problems, versions = [], {}
for text in json.loads(sys.argv[1]):
    req = Requirement(text)
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        problems.append(f"{req.name} is not installed")
        continue
    versions[req.name] = version
    if not req.specifier.contains(version, prereleases=True):
        problems.append(f"{req.name} {version} does not satisfy {text!r}")
for module in ("hyperspy", "rsciio", "zarr", "numcodecs"):
    try:
        importlib.import_module(module)
    except Exception as exc:
        problems.append(f"import {module} failed: {exc!r}")
print(json.dumps({"problems": problems, "versions": versions}))
"""

_READY: dict[Path, Path] = {}
"""Venvs already checked by this process: venv dir -> python."""


def default_venv_dir() -> Path:
    """Return the venv directory: ``$INTAKE_ZSPY_HYPERSPY_VENV`` or the repo cache.

    Returns
    -------
    pathlib.Path
        Absolute path of the venv directory (it may not exist yet).
    """
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / ".cache" / "hyperspy-venv"


def subprocess_env() -> dict[str, str]:
    """Return the environment for processes run with the venv's python.

    The main environment's ``PYTHONPATH``/``PYTHONHOME`` and virtualenv
    variables are removed (they could put zarr 3 on the path), user site
    packages are disabled, matplotlib gets a non-interactive backend, and string
    hashing is fixed: exspy keeps ``Sample.elements`` in a ``set``, so without
    ``PYTHONHASHSEED`` two HyperSpy processes may list the same elements in different
    orders.

    Returns
    -------
    dict
        A copy of ``os.environ`` with those changes.
    """
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "__PYVENV_LAUNCHER__"):
        env.pop(name, None)
    env["PYTHONNOUSERSITE"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PYTHONIOENCODING", "utf-8")
    env["PYTHONHASHSEED"] = "0"
    return env


def _python_in(venv: Path) -> Path:
    """Return the path of the python executable of ``venv``."""
    return venv / "bin" / "python"


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``text``."""
    return "\n".join(text.strip().splitlines()[-lines:])


@contextmanager
def _locked(venv: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<venv>.lock`` for the duration of the block."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.with_name(venv.name + ".lock")
    with lock_path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _check(python: Path, requirements: Sequence[str]) -> list[str]:
    """Return what keeps ``python``'s environment from satisfying ``requirements``.

    Parameters
    ----------
    python : pathlib.Path
        The venv's python.
    requirements : sequence of str
        pip requirement strings.

    Returns
    -------
    list of str
        Human-readable problems; empty when the environment is ready.
    """
    try:
        proc = subprocess.run(
            [str(python), "-c", _CHECK_SCRIPT, json.dumps(list(requirements))],
            capture_output=True,
            text=True,
            timeout=300,
            env=subprocess_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"cannot run {python}: {exc}"]
    if proc.returncode != 0:
        return [f"version check failed (exit {proc.returncode}):\n{_tail(proc.stderr)}"]
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return [f"unreadable version check output:\n{_tail(proc.stdout + proc.stderr)}"]
    return [str(p) for p in report["problems"]]


def _run_setup_step(cmd: Sequence[str], what: str, timeout: float) -> None:
    """Run a venv-creation or pip command, raising RuntimeError with its output tail."""
    try:
        proc = subprocess.run(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            env=subprocess_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (
            exc.output
            if isinstance(exc.output, str)
            else (exc.output or b"").decode(errors="replace")
        )
        raise RuntimeError(f"{what} timed out after {timeout:.0f} s:\n{_tail(out)}") from exc
    except OSError as exc:
        raise RuntimeError(f"{what} could not start: {exc}") from exc
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{_tail(proc.stdout)}"
        )


def ensure_venv(
    venv: Path,
    requirements: Sequence[str] = REQUIREMENTS,
    *,
    base_python: str | None = None,
    pip_args: Sequence[str] = (),
) -> Path:
    """Make sure ``venv`` exists and satisfies ``requirements``; return its python.

    Parameters
    ----------
    venv : pathlib.Path
        Directory of the virtual environment (created if missing).
    requirements : sequence of str
        pip requirement strings to satisfy.
    base_python : str, optional
        Interpreter used for ``-m venv``; defaults to the running one.
    pip_args : sequence of str, optional
        Extra arguments for ``pip install`` (e.g. ``--no-index``).

    Returns
    -------
    pathlib.Path
        The python executable of the venv.

    Raises
    ------
    RuntimeError
        When the venv cannot be created, pip fails, or the installed
        environment still does not satisfy ``requirements``.
    """
    venv = Path(venv).absolute()
    python = _python_in(venv)
    marker = venv / MARKER_NAME
    wanted = "\n".join(requirements) + "\n"
    with _locked(venv):
        problems = _check(python, requirements) if python.exists() else ["no venv yet"]
        if problems:
            if not python.exists():
                _run_setup_step(
                    [base_python or sys.executable, "-m", "venv", str(venv)],
                    f"creating the venv {venv}",
                    timeout=600,
                )
            _run_setup_step(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    *pip_args,
                    *requirements,
                ],
                f"pip install into {venv}",
                timeout=PIP_TIMEOUT,
            )
            problems = _check(python, requirements)
            if problems:
                raise RuntimeError(
                    f"the venv {venv} does not satisfy {list(requirements)} after pip install:\n"
                    + "\n".join(problems)
                )
        if not marker.exists() or marker.read_text() != wanted:
            marker.write_text(wanted)
    return python


def hyperspy_python() -> Path:
    """Return the python of the HyperSpy reference venv, creating it on first use.

    The venv is :func:`default_venv_dir`; it is checked once per process.

    Returns
    -------
    pathlib.Path
        Path of the venv's python executable.

    Raises
    ------
    RuntimeError
        When the venv cannot be created or does not satisfy the pins.
    """
    venv = default_venv_dir()
    if venv not in _READY:
        _READY[venv] = ensure_venv(venv, REQUIREMENTS)
    return _READY[venv]


def run_in_hyperspy(
    script: str | Path,
    *args: str | Path,
    timeout: float = 600.0,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the HyperSpy venv's python and capture its output.

    Parameters
    ----------
    script : str or pathlib.Path
        Python script to run.
    *args : str or pathlib.Path
        Command-line arguments for the script.
    timeout : float, optional
        Seconds before the process is killed.
    cwd : str or pathlib.Path, optional
        Working directory.

    Returns
    -------
    subprocess.CompletedProcess
        The finished process (text ``stdout`` and ``stderr``).

    Raises
    ------
    RuntimeError
        When the script exits non-zero or times out; the message holds the
        command and the tails of stdout and stderr.
    """
    cmd = [str(hyperspy_python()), str(script), *(str(a) for a in args)]
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=subprocess_env(),
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"{' '.join(cmd)} failed (exit {exc.returncode})\n"
            f"--- stdout ---\n{_tail(exc.stdout or '')}\n--- stderr ---\n{_tail(exc.stderr or '')}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(cmd)} timed out after {timeout:.0f} s") from exc


def main() -> int:
    """Print the venv's python path (creating the venv if needed)."""
    try:
        print(hyperspy_python())
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
