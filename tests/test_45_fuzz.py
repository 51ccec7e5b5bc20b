"""Bounded, seeded fuzz campaigns against the reader (see ``tests/fuzzing.py``).

Each campaign runs in a child process under an address-space limit and a per-read
watchdog; any FAIL (an exception that is not a ZspyError, a message without the store
path, MemoryError/RecursionError, a hang or crash, a semantics-preserving mutation that
changes the result, a read that is not repeatable) fails the test with the whole report,
which names the seed and index that rebuild the mutant::

    python -m tests.fuzzing --seed SEED --only INDEX --keep /tmp/mutant
"""

from __future__ import annotations

import pytest

from tests.fuzzing import BREAKING, PRESERVING, Report, run_campaign_subprocess
from tests.hyperspy.plugin import HyperspyFixtures

pytestmark = pytest.mark.slow

#: Stores written by HyperSpy that the second campaign mutates: structured dtype, a
#: functional axis over a non-uniform one, missing chunks with a NaN fill value, ragged
#: data, markers, and a zarr 2 zip file (with rewritten, duplicate members).
HYPERSPY_SOURCES = (
    "dtypes_rgb16.zspy",
    "axes_functional_nonuniform_x.zspy",
    "missing_chunks_nan.zspy",
    "ragged_2d.zspy",
    "markers.zspy",
    "eels_si_zip.zspy",
)


def check_plausible(report: Report, mutants: int) -> None:
    """The campaign ran every mutant and exercised both outcomes and most mutation kinds."""
    assert len(report.results) == mutants, report.format()
    counts = report.outcome_counts()
    reads = sum(counts.values())
    ok = counts["ok"]
    errors = reads - ok - counts["unwritable"]
    assert ok >= 0.2 * reads, report.format()
    assert errors >= 0.1 * reads, report.format()
    assert len(set(counts) - {"ok", "unwritable"}) >= 3, report.format()  # several error types
    kinds = report.kind_counts()
    assert len(set(kinds) & set(BREAKING)) >= len(BREAKING) - 3, sorted(kinds)
    assert len(set(kinds) & set(PRESERVING)) >= len(PRESERVING) - 1, sorted(kinds)
    preserved = sum(kinds[k]["ok"] for k in PRESERVING if k in kinds)
    assert preserved >= 10, report.format()
    bad_sources = [
        r.source for r in report.references if any(o != "ok" for o in r.outcomes.values())
    ]
    assert not bad_sources, report.format()


def test_fuzz_builtin_and_corpus_stores() -> None:
    mutants = 250
    report = run_campaign_subprocess(seed=20260511, mutants=mutants)
    assert not report.fails, report.format()
    check_plausible(report, mutants)


@pytest.mark.hyperspy
def test_fuzz_hyperspy_written_stores(hyperspy_fixtures: HyperspyFixtures) -> None:
    sources = [hyperspy_fixtures.path(name) for name in HYPERSPY_SOURCES]
    mutants = 150
    report = run_campaign_subprocess(
        seed=7, mutants=mutants, sources=sources, builtin=False, corpus=False
    )
    assert not report.fails, report.format()
    check_plausible(report, mutants)
