"""Pytest fixtures giving tests the HyperSpy reference stores and dumps.

Load from ``tests/conftest.py`` with::

    pytest_plugins = ["tests.hyperspy.plugin"]

Fixtures (all session-scoped):

``hyperspy_python``
    Path of the HyperSpy venv's python (see ``env.py``), created on first
    use. Tests using it are skipped only when ``INTAKE_ZSPY_NO_HYPERSPY=1``;
    otherwise a venv that cannot be built is an error, not a skip.
``hyperspy_fixtures``
    :class:`HyperspyFixtures` ``(outdir, manifest)``: every store written by
    ``make_fixtures.py`` into a session temporary directory, and the parsed
    ``manifest.json``.
``hyperspy_reference``
    A :class:`ReferenceCache`: call it as ``(store_path, via="rsciio") ->
    decoded object`` to get what the reference reader gives for a store
    (``dump_reference.py`` + ``reference.load_reference``), cached per
    session; each call returns a deep copy, so tests may modify the result.
    ``hyperspy_reference.prefetch(paths, via)`` dumps many stores in one
    HyperSpy process (about 0.3 s per store instead of 1 s).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.hyperspy import env
from tests.hyperspy.reference import load_reference

HERE = Path(__file__).resolve().parent
MAKE_FIXTURES = HERE / "make_fixtures.py"
DUMP_REFERENCE = HERE / "dump_reference.py"
NO_HYPERSPY_VAR = "INTAKE_ZSPY_NO_HYPERSPY"


class HyperspyFixtures(NamedTuple):
    """The generated stores: unpack as ``outdir, manifest = hyperspy_fixtures``.

    Attributes
    ----------
    outdir : pathlib.Path
        Directory holding the stores and ``manifest.json``.
    manifest : dict
        Parsed ``manifest.json``: ``{"generator": {...}, "hspy": [names], "stores":
        [{"file", "kind", "description", "edited", "bytes"}, ...]}``; ``hspy`` lists
        the ``.hspy`` twins written under ``outdir/hspy`` from the same signals.
    """

    outdir: Path
    manifest: dict[str, Any]

    def path(self, name: str) -> Path:
        """Return the path of the store called ``name`` (checked to be listed)."""
        if name not in self.names():
            raise KeyError(f"{name!r} is not in manifest.json")
        return self.outdir / name

    def names(self) -> list[str]:
        """Return the file names of all stores, in manifest order."""
        return [entry["file"] for entry in self.manifest["stores"]]

    def hspy_names(self) -> list[str]:
        """Return the file names of the ``.hspy`` twins (under ``outdir/hspy``)."""
        return list(self.manifest.get("hspy", []))

    def hspy_path(self, name: str) -> Path:
        """Return the path of the ``.hspy`` twin called ``name`` (checked to be listed)."""
        if name not in self.hspy_names():
            raise KeyError(f"{name!r} is not among the .hspy twins of manifest.json")
        return self.outdir / "hspy" / name

    def entry(self, name: str) -> dict[str, Any]:
        """Return the manifest entry of the store called ``name``."""
        for item in self.manifest["stores"]:
            if item["file"] == name:
                return dict(item)
        raise KeyError(f"{name!r} is not in manifest.json")


@pytest.fixture(scope="session")
def hyperspy_python() -> Path:
    """Return the HyperSpy venv's python, building the venv on first use."""
    if os.environ.get(NO_HYPERSPY_VAR) == "1":
        pytest.skip(f"{NO_HYPERSPY_VAR}=1: HyperSpy reference environment disabled")
    return env.hyperspy_python()


@pytest.fixture(scope="session")
def hyperspy_fixtures(
    hyperspy_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> HyperspyFixtures:
    """Generate all reference stores once per session and return them."""
    outdir = tmp_path_factory.mktemp("zspy-reference-stores")
    env.run_in_hyperspy(MAKE_FIXTURES, outdir, timeout=600)
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    return HyperspyFixtures(outdir, manifest)


class ReferenceCache:
    """Session cache of decoded reference dumps; the ``hyperspy_reference`` fixture.

    Call it as ``hyperspy_reference(store, via="rsciio")``. Each store is
    dumped once per ``via`` and session; :meth:`prefetch` dumps many stores
    in a single HyperSpy process, which is much faster than one by one.

    Parameters
    ----------
    dump_dir : pathlib.Path
        Directory for the JSON dumps.
    """

    def __init__(self, dump_dir: Path) -> None:
        self.dump_dir = dump_dir
        self._cache: dict[tuple[Path, str], Any] = {}
        self._runs = 0

    @staticmethod
    def _key(store: str | Path, via: str) -> tuple[Path, str]:
        if via not in ("rsciio", "hyperspy"):
            raise ValueError(f"via must be 'rsciio' or 'hyperspy', not {via!r}")
        return Path(store).resolve(), via

    def _next_dir(self) -> Path:
        self._runs += 1
        out = self.dump_dir / f"run{self._runs:04d}"
        out.mkdir()
        return out

    def prefetch(self, stores: Iterable[str | Path], via: str = "rsciio") -> None:
        """Dump every not yet cached store of ``stores`` in one process.

        Parameters
        ----------
        stores : iterable of str or pathlib.Path
            Stores to dump (names must be unique within one call).
        via : {"rsciio", "hyperspy"}
            Reference reader.
        """
        todo = [k for k in dict.fromkeys(self._key(s, via) for s in stores) if k not in self._cache]
        if not todo:
            return
        if len({k[0].name for k in todo}) != len(todo):
            raise ValueError("prefetch needs stores with distinct file names")
        out_dir = self._next_dir()
        env.run_in_hyperspy(
            DUMP_REFERENCE,
            "--via",
            via,
            "--out-dir",
            out_dir,
            *(k[0] for k in todo),
            timeout=1200,
        )
        for key in todo:
            self._cache[key] = load_reference(out_dir / f"{key[0].name}.{via}.json")

    def __call__(self, store: str | Path, via: str = "rsciio") -> Any:
        """Return the decoded reference dump of ``store`` (a deep copy)."""
        key = self._key(store, via)
        if key not in self._cache:
            self.prefetch([key[0]], via)
        return copy.deepcopy(self._cache[key])


ReferenceLoader = ReferenceCache
"""Type of the ``hyperspy_reference`` fixture."""


@pytest.fixture(scope="session")
def hyperspy_reference(
    hyperspy_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> ReferenceCache:
    """Return the session's :class:`ReferenceCache`: ``(store, via="rsciio") -> Any``."""
    return ReferenceCache(tmp_path_factory.mktemp("zspy-reference-dumps"))
