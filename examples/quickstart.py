"""intake-zspy in one run: write a sample store, catalog it, stream it, write a result back.

Run with ``bash scripts/example.sh`` (or ``python examples/quickstart.py [DIR]``). Everything
happens in a local directory (default ``.cache/example``); no cloud account is needed.
"""

from __future__ import annotations

import argparse
import copy
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


def subtract_power_law(
    ds: xr.Dataset, window: tuple[float, float], dim: str = "Energy loss"
) -> tuple[xr.Dataset, xr.DataArray, xr.DataArray]:
    """Remove an EELS power-law background ``A * E**-r`` fitted on a pre-edge window.

    ``A`` and ``r`` are fitted to every spectrum at once by linear least squares of
    ``log(counts)`` against ``log(E)`` over ``window`` (no Python loop over spectra); the
    background is extrapolated and subtracted above the window.

    Returns
    -------
    tuple
        The Dataset above the window with the background subtracted (the input's
        attrs and coordinates kept), and ``A`` and ``r`` per spectrum.
    """
    fit = ds["data"].sel({dim: slice(*window)})
    log_e = np.log(fit[dim])
    log_counts = np.log(fit.clip(min=np.finfo(np.float32).tiny))  # noise may reach 0
    centred = log_e - log_e.mean()
    slope = (centred * (log_counts - log_counts.mean(dim))).sum(dim) / (centred**2).sum()
    amplitude = np.exp(log_counts.mean(dim) - slope * log_e.mean())
    above = ds.sel({dim: slice(window[1], None)})
    background = amplitude * above[dim] ** slope
    edge = (above["data"] - background).astype(np.float32).transpose(*above["data"].dims)
    return above.assign(data=edge), amplitude, -slope


def retitled(ds: xr.Dataset, title: str) -> xr.Dataset:
    """``ds`` with a new title (HyperSpy's ``metadata.General.title`` is the one written)."""
    metadata = copy.deepcopy(ds.attrs.get("metadata", {}))
    metadata.setdefault("General", {})["title"] = title
    return ds.assign_attrs(title=title, metadata=metadata)


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

    # 4. results written back: the carbon K edge with its power-law background removed
    window = (255.0, 280.0)  # eV, below the edge onset at 284 eV
    edge, _, exponent = subtract_power_law(ds, window)
    r = exponent.values
    print(
        f"power-law background A*E^-r fitted per spectrum on {window[0]:g}-{window[1]:g} eV: "
        f"r = {r.mean():.3f} +/- {r.std():.3f} (the sample was made with r = 3)"
    )
    assert abs(r.mean() - 3.0) < 0.05
    onset = edge["data"].sel({"Energy loss": slice(284.5, 290.0)}).mean()
    gap = edge["data"].sel({"Energy loss": slice(280.5, 283.5)}).mean()
    print(f"  counts left: {float(gap):.3f} at 280-284 eV, {float(onset):.2f} at 284-290 eV")
    edge = retitled(edge, "Carbon K edge, power-law background subtracted")
    out = workdir / "carbon_k_edge.zspy"
    edge.zspy.to_zspy(out)
    # keep_attrs=True: the mean keeps the title, signal type and metadata of the input
    mean = edge.mean(("y", "x"), keep_attrs=True)
    mean_out = workdir / "carbon_k_edge_mean.zspy"
    intake_zspy.to_zspy(mean, mean_out, store_type="zip")  # one zip file, named .zspy
    for path in (out, mean_out):
        back = intake_zspy.open_dataset(path)
        print(
            f"wrote {path}: {dict(back.sizes)}, title {back.attrs['title']!r}, "
            f"signal type {back.attrs['signal_type']!r}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
