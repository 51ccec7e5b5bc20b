"""intake-zspy in one run: write a sample store, catalog it, stream it, write a result back.

Run with ``bash scripts/example.sh`` (or ``python examples/quickstart.py [DIR]``). Everything
happens in a local directory (default ``.cache/example``); no cloud account is needed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import intake
import numpy as np
import xarray as xr

import intake_zspy
from intake_zspy.catalog import ZspyStoresCatalog


def sample_eels(shape: tuple[int, int, int] = (32, 24, 512)) -> xr.Dataset:
    """A synthetic EELS spectrum image: a power-law background plus a carbon K edge."""
    ny, nx, ne = shape
    energy = 250.0 + 0.5 * np.arange(ne)
    rng = np.random.default_rng(0)
    thickness = 1.0 + 0.5 * np.sin(np.linspace(0, np.pi, ny))[:, None] * np.ones((1, nx))
    background = 1e9 * energy**-3.0
    edge = np.where(energy > 284.0, 40.0 * np.exp(-(energy - 284.0) / 60.0), 0.0)
    counts = thickness[..., None] * (background + edge) + rng.normal(0, 0.5, (ny, nx, ne))
    return xr.Dataset(
        {"data": (("y", "x", "Energy loss"), counts.astype("float32"))},
        coords={
            "y": ("y", 0.8 * np.arange(ny), {"units": "nm"}),
            "x": ("x", 0.8 * np.arange(nx), {"units": "nm"}),
            "Energy loss": ("Energy loss", energy, {"units": "eV", "navigate": False}),
        },
        attrs={
            "title": "Carbon film / EELS SI",
            "signal_type": "EELS",
            "metadata": {"Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}},
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workdir", nargs="?", default=".cache/example", type=Path)
    args = parser.parse_args(argv)
    workdir: Path = args.workdir
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)

    # 1. a realistic store, written the way HyperSpy writes it (nested directory)
    store = workdir / "carbon_si.zspy"
    intake_zspy.to_zspy(sample_eels(), store, chunks={"y": 8})
    print(f"wrote {store}")

    # 2. a catalog over the folder, saved as YAML and opened with intake
    catalog = ZspyStoresCatalog(str(workdir))
    yaml_path = workdir / "catalog.yml"
    catalog.save(str(yaml_path))
    cat = intake.open_catalog(str(yaml_path))
    print(f"catalog {yaml_path}: entries {list(cat)}")
    source = cat[next(iter(cat))]
    info = source.discover()
    print({key: info[key] for key in ("dims", "shape", "dtype", "npartitions")})

    # 3. lazy dataset, then stream it partition by partition
    ds = source.to_dask()
    print(ds)
    total = 0.0
    for i, part in enumerate(source.read_chunked()):
        total += float(part["data"].sum())
        print(f"  partition {i}: y={part['y'].values[[0, -1]]} sum={float(part['data'].sum()):.4g}")
    assert np.isclose(total, float(ds["data"].sum()), rtol=1e-4)

    # 4. a result written back: the background-subtracted signal above the edge
    edge = ds["data"].sel({"Energy loss": slice(284.0, None)})
    result = (edge - edge.isel({"Energy loss": 0})).to_dataset(name="data")
    result.attrs.update(title="Carbon K edge, background removed", signal_type="EELS")
    out = workdir / "carbon_k_edge.zspy"
    result.zspy.to_zspy(out)
    back = intake_zspy.open_dataset(out)
    print(f"wrote {out}: {dict(back.sizes)}, title {back.attrs['title']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
