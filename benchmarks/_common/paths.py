"""Where things are: the repository's directories and the benchmark stores' names."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "benchmarks"
DATA_DIR = REPO / ".cache" / "bench-data"
DATA_DIR_SMALL = REPO / ".cache" / "bench-data-small"
RESULTS_DIR = REPO / ".cache" / "bench-results"
DOCS = REPO / "docs" / "benchmarks.md"
DEFAULT_LAB_ENV = REPO.parent / ".cache" / "s3lab-run" / "s3lab.env"
BUCKET = "zspy-bench"

EELS = "eels_si.zspy"
EELS_NOCONS = "eels_si_noconsolidated.zspy"
EELS_OLDMETA = "eels_si_zmetadata_first.zspy"  # remote copy whose .zmetadata is the oldest key
STEM = "stem_4d.zspy"


def chunk_files(array_dir: Path) -> list[Path]:
    """The chunk files of a zarr 2 array directory (no ``.z*`` documents), sorted."""
    return sorted(p for p in array_dir.rglob("*") if p.is_file() and not p.name.startswith(".z"))
