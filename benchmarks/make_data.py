"""Write the benchmark stores with real HyperSpy (runs INSIDE the HyperSpy venv).

The HyperSpy reference venv (HyperSpy 2.5, RosettaSciIO 0.15, exspy, zarr 2) is made by
``tests/hyperspy/env.py``; this script never runs in the project's own environment::

    PY=$(python tests/hyperspy/env.py)
    $PY benchmarks/make_data.py [OUTDIR] [--small]

It writes, with ``BaseSignal.save`` and HyperSpy's default zspy settings (nested directory
store, Blosc zstd level 1 with byte shuffle, default chunking, consolidated metadata):

``eels_si.zspy``
    An EELS spectrum image (``exspy`` ``EELSSpectrum``; 64 x 64 x 2048 float32 by default)
    with rich metadata: ``Acquisition_instrument.TEM`` with ``Detector.EELS``, ``Stage``
    and more, a deep DigitalMicrograph-like ``original_metadata`` tree and three permanent
    markers (two of them ragged), about 76 zarr groups in all.
``eels_si_noconsolidated.zspy``
    A copy of the same store without ``.zmetadata``.
``stem_4d.zspy``
    A 4D-STEM ``Signal2D`` (64 x 64 x 256 x 256 float32, 1.07 GB by default): diffraction
    patterns (a bright-field disk and Bragg disks whose intensities vary across the scan)
    with Poisson counting noise, stored as float32 like most 4D-STEM exports.

Stores that already exist are skipped (delete them to rebuild). ``OUTDIR/manifest.json``
describes what was written (shapes, chunks, group and key counts, sizes on disk).
``--small`` writes 32 x 32 x 512 EELS and 16 x 16 x 128 x 128 4D-STEM data for a quick run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", message=".*Numba is not installed.*")
warnings.filterwarnings("ignore", message="The NestedDirectoryStore is deprecated")
warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in the HyperSpy 3.0")

import hyperspy
import hyperspy.api as hs
import rsciio
import zarr

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._common.paths import DATA_DIR, DATA_DIR_SMALL, EELS, EELS_NOCONS, STEM

logging.getLogger("hyperspy").setLevel(logging.ERROR)
logging.getLogger("rsciio").setLevel(logging.ERROR)
logging.getLogger("exspy").setLevel(logging.ERROR)

SIZES = {
    "full": {"eels": (64, 64, 2048), "stem": (64, 64, 256, 256)},
    "small": {"eels": (32, 32, 512), "stem": (16, 16, 128, 128)},
}

# -- EELS spectrum image ----------------------------------------------------------------


def _eels_data(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Power-law background, C K and O K edges whose strength varies across the map, noise."""
    ny, nx, ne = shape
    energy = 100.0 + 0.25 * np.arange(ne) * (2048 / ne)
    yy, xx = np.mgrid[0:ny, 0:nx] / max(ny, nx)
    carbon = 0.5 + 0.5 * np.sin(6 * xx) * np.cos(4 * yy)
    oxygen = 1.0 - carbon
    background = 2e8 * energy[None, None, :] ** -3.0 * (1 + 0.2 * yy)[..., None]

    def edge(onset: float) -> np.ndarray:
        e = np.clip(energy - onset, 0, None)
        return np.where(energy > onset, (onset / np.maximum(energy, 1)) ** 2.5, 0) * (
            1 - np.exp(-e / 5)
        )

    signal = (
        background + 400 * carbon[..., None] * edge(284.0) + 250 * oxygen[..., None] * edge(532.0)
    )
    counts = rng.poisson(np.clip(signal, 0, None)).astype(np.float32)
    return counts


def _dm_tree(rng: np.random.Generator, shape: tuple[int, int, int]) -> dict[str, Any]:
    """A DigitalMicrograph-like original_metadata tree (nested dicts and lists of dicts)."""
    ny, nx, ne = shape
    calibrations = [
        {"Origin": 0.0, "Scale": 2.5, "Units": "nm"},
        {"Origin": 0.0, "Scale": 2.5, "Units": "nm"},
        {"Origin": -400.0, "Scale": 0.25, "Units": "eV"},
    ]
    return {
        "ApplicationBounds": (0, 0, 1040, 1920),
        "DocumentObjectList": {
            "TagGroup0": {
                "AnnotationGroupList": [],
                "ImageDisplayInfo": {
                    "BrightColor": {"B": 65535, "G": 65535, "R": 65535},
                    "CaptionOn": 0,
                    "Contrast": 0.5,
                    "HighLimit": float(rng.random() * 1e4),
                    "LowLimit": 0.0,
                },
                "ImageSource": 0,
                "ObjectTags": {"Notes": "acquired with the benchmark generator"},
            }
        },
        "ImageList": {
            "TagGroup0": {
                "ImageData": {
                    "Calibrations": {
                        "Brightness": {"Origin": 0.0, "Scale": 1.0, "Units": "counts"},
                        "Dimension": {f"TagGroup{i}": c for i, c in enumerate(calibrations)},
                        "DisplayCalibratedUnits": 1,
                    },
                    "DataType": 2,
                    "Dimensions": {"Data0": nx, "Data1": ny, "Data2": ne},
                    "PixelDepth": 4,
                },
                "ImageTags": {
                    "Acquisition": {
                        "Device": {
                            "Active Size (pixels)": (2048, 2048),
                            "Camera Number": 0,
                            "CCD": {"Pixel Size (um)": (14.0, 14.0)},
                            "Name": "GIF Quantum ER",
                        },
                        "Frame": {
                            "CCD": {"Pixel Size (um)": (14.0, 14.0)},
                            "Intensity": {"Range": {"Bias (counts)": 100, "Saturation": 65535}},
                        },
                        "Parameters": {
                            "Acquisition Write Flags": 4294967295,
                            "Base Detector": {"Class Name": "CM_DigiScanDetector"},
                            "High Level": {
                                "Binning": (1, 130),
                                "Exposure (s)": 0.01,
                                "Processing": "Gain Normalized",
                            },
                        },
                    },
                    "EELS": {
                        "Acquisition": {
                            "Continuous mode": 0,
                            "Exposure (s)": 0.01,
                            "Integration time (s)": 0.01,
                            "Number of frames": 1,
                            "Saturation fraction": float(rng.random() * 0.01),
                        },
                        "Experimental Conditions": {
                            "Collection semi-angle (mrad)": 24.5,
                            "Convergence semi-angle (mrad)": 21.4,
                        },
                    },
                    "Microscope Info": {
                        "Emission Current (uA)": 15.0,
                        "Formatted Indicated Mag": "10.0kx",
                        "Illumination Mode": "STEM",
                        "Microscope": "Benchmark TEM",
                        "Operation Mode": "SCANNING",
                        "Probe Current (nA)": 0.1,
                        "Stage Position": {
                            "Stage Alpha": 0.0,
                            "Stage Beta": 0.0,
                            "Stage X": 12.5,
                            "Stage Y": -3.25,
                            "Stage Z": 0.0,
                        },
                        "Voltage": 200000.0,
                    },
                    "Session Info": {"Items": [{"Label": "Specimen", "Value": "SrTiO3"}]},
                    "Spectrum Image": {
                        "Acquisition": {
                            "Pixel time (s)": 0.01,
                            "Spatial Sampling": {"Height (pixels)": ny, "Width (pixels)": nx},
                        },
                        "Meta Data": {"Format": "Spectrum image", "Signal": "EELS"},
                    },
                },
                "Name": "EELS Spectrum Image",
                "UniqueID": {"Data0": 1, "Data1": 2, "Data2": 3, "Data3": 4},
            }
        },
        "Image_Behavior": {
            "ViewDisplayID": 8,
            "UnscaledTransform": {"Offset": (0.0, 0.0), "Scale": (1.0, 1.0)},
            "ZoomAndMoveTransform": {"Offset": (0.0, 0.0), "Scale": (1.0, 1.0)},
        },
        "InImageMode": 1,
        "Page Behavior": {"DrawMargins": 1, "DrawPaper": 1, "IsFixedInPageMode": 0},
    }


def make_eels(path: Path, shape: tuple[int, int, int], rng: np.random.Generator) -> None:
    try:
        import exspy

        cls = exspy.signals.EELSSpectrum
    except ImportError:  # pragma: no cover - exspy is pinned in the reference venv
        cls = hs.signals.Signal1D
    s = cls(_eels_data(shape, rng))
    s.metadata.General.title = "EELS spectrum image"
    s.metadata.General.original_filename = "EELS Spectrum Image.dm4"
    s.metadata.General.date = "2025-05-14"
    s.metadata.General.time = "10:21:07"
    s.metadata.Signal.quantity = "Intensity (counts)"
    ax = s.axes_manager
    for i, name in ((0, "x"), (1, "y")):
        ax[i].name, ax[i].units, ax[i].scale = name, "nm", 2.5
    ax[-1].name, ax[-1].units = "Energy loss", "eV"
    ax[-1].scale, ax[-1].offset = 0.25 * 2048 / shape[-1], 100.0
    if hasattr(s, "set_microscope_parameters"):  # exspy: fills TEM and Detector.EELS
        s.set_microscope_parameters(
            beam_energy=200.0, convergence_angle=21.4, collection_angle=24.5
        )
    s.metadata.set_item("Acquisition_instrument.TEM.acquisition_mode", "STEM")
    s.metadata.set_item("Acquisition_instrument.TEM.magnification", 10000.0)
    s.metadata.set_item("Acquisition_instrument.TEM.microscope", "Benchmark TEM")
    s.metadata.set_item("Acquisition_instrument.TEM.probe_area", 0.01)
    s.metadata.set_item("Acquisition_instrument.TEM.dwell_time", 0.01)
    s.metadata.set_item("Acquisition_instrument.TEM.camera_length", 30.0)
    for key, value in {
        "x": 12.5,
        "y": -3.25,
        "z": 0.0,
        "tilt_alpha": 0.0,
        "tilt_beta": 0.0,
        "rotation": 0.0,
    }.items():
        s.metadata.set_item(f"Acquisition_instrument.TEM.Stage.{key}", value)
    eels = "Acquisition_instrument.TEM.Detector.EELS"
    for key, value in {
        "aperture_size": 5.0,
        "binning": 1,
        "dispersion": 0.25,
        "exposure": 0.01,
        "frame_number": 1,
        "spectrometer": "GIF Quantum ER",
        "collection_angle": 24.5,
    }.items():
        s.metadata.set_item(f"{eels}.{key}", value)
    s.metadata.set_item(f"{eels}.Drift_correction.enabled", True)
    s.metadata.set_item(f"{eels}.Drift_correction.interval", 10)
    s.metadata.set_item("Acquisition_instrument.TEM.Detector.Camera.name", "K3")
    s.metadata.set_item("Acquisition_instrument.TEM.Biprism.voltage", 0.0)
    s.metadata.set_item("Sample.elements", ["C", "O", "Sr", "Ti"])
    s.metadata.set_item("Sample.formula", "SrTiO3")
    s.metadata.set_item("Sample.thickness", 45.0)
    s.metadata.set_item("Sample.description", "benchmark specimen")
    s.metadata.set_item("Signal.Noise_properties.Variance_linear_model.gain_factor", 1.0)
    s.metadata.set_item("Signal.Noise_properties.Variance_linear_model.gain_offset", 0.0)
    s.metadata.set_item("Signal.Noise_properties.Variance_linear_model.correlation_factor", 1.0)
    s.original_metadata.add_dictionary(_dm_tree(rng, shape))

    nav_shape = s.axes_manager.navigation_shape  # (x, y): reversed array order
    offsets = np.empty(nav_shape, dtype=object)
    for idx in np.ndindex(nav_shape):
        n = int(rng.integers(1, 4))
        offsets[idx] = np.round(300 + rng.random((n, 2)) * 200, 2)
    s.add_marker(
        hs.plot.markers.Points(offsets=offsets, sizes=4, color="red", name="edge_onsets"),
        permanent=True,
        plot_marker=False,
    )
    s.add_marker(
        hs.plot.markers.Texts(
            offsets=[[284.0, 10.0], [532.0, 10.0]], texts=["C K", "O K"], name="edge_labels"
        ),
        permanent=True,
        plot_marker=False,
    )
    s.add_marker(
        hs.plot.markers.VerticalLines(offsets=[284.0, 532.0], color="k", name="onsets"),
        permanent=True,
        plot_marker=False,
    )
    s.save(path, overwrite=True)


# -- 4D-STEM ----------------------------------------------------------------------------


def _stem_data(shape: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Diffraction patterns: a bright-field disk and Bragg disks, Poisson noise (float32)."""
    ny, nx, ky, kx = shape
    qy, qx = np.mgrid[0:ky, 0:kx].astype(np.float32)
    cy, cx = (ky - 1) / 2, (kx - 1) / 2
    radius = ky / 12

    def disk(y0: float, x0: float) -> np.ndarray:
        r = np.hypot(qy - y0, qx - x0)
        return np.clip(radius + 0.5 - r, 0, 1).astype(np.float32)  # anti-aliased edge

    spacing = ky / 5
    bragg = [
        disk(cy + i * spacing, cx + j * spacing)
        for i in range(-2, 3)
        for j in range(-2, 3)
        if (i, j) != (0, 0) and abs(cy + i * spacing - cy) < ky / 2 - radius
    ]
    # Diffuse background (thermal diffuse scattering), bright-field disk.
    diffuse = (3.0 / (1 + (np.hypot(qy - cy, qx - cx) / (ky / 8)) ** 2)).astype(np.float32)
    out = np.empty(shape, dtype=np.float32)
    yy, xx = np.mgrid[0:ny, 0:nx] / max(ny, nx)
    grain = (np.sin(9 * xx + 3 * yy) > 0).astype(np.float32)  # two grain orientations
    for iy in range(ny):
        # a slow descan drift of the central beam along the scan row
        bf = disk(cy + 2 * np.sin(iy / ny * np.pi), cx)
        for ix in range(nx):
            weights = rng.random(len(bragg)).astype(np.float32) * (0.5 + grain[iy, ix])
            pattern = 40.0 * bf + diffuse
            for w, b in zip(weights, bragg, strict=True):
                pattern += 8.0 * w * b
            out[iy, ix] = pattern
        out[iy] = rng.poisson(out[iy]).astype(np.float32)
    return out


def make_stem(path: Path, shape: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    s = hs.signals.Signal2D(_stem_data(shape, rng))
    s.metadata.General.title = "4D-STEM"
    s.metadata.Signal.quantity = "Intensity (counts)"
    ax = s.axes_manager
    for i, (name, units, scale) in enumerate(
        (("x", "nm", 0.5), ("y", "nm", 0.5), ("kx", "1/nm", 0.02), ("ky", "1/nm", 0.02))
    ):
        ax[i].name, ax[i].units, ax[i].scale = name, units, scale
    ax[2].offset = ax[3].offset = -0.02 * shape[-1] / 2
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
    s.metadata.set_item("Acquisition_instrument.TEM.camera_length", 120.0)
    s.metadata.set_item("Acquisition_instrument.TEM.convergence_angle", 1.5)
    s.metadata.set_item("Acquisition_instrument.TEM.Detector.Diffraction.detector", "Merlin")
    s.metadata.set_item("Acquisition_instrument.TEM.Detector.Diffraction.exposure_time", 0.001)
    s.save(path, overwrite=True)


# -- main -------------------------------------------------------------------------------


def _store_facts(path: Path) -> dict[str, Any]:
    groups = arrays = files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            size += (Path(root) / name).stat().st_size
            groups += name == ".zgroup"
            arrays += name == ".zarray"
    facts: dict[str, Any] = {
        "groups": groups,
        "arrays": arrays,
        "keys": files,
        "bytes_on_disk": size,
        "consolidated": (path / ".zmetadata").exists(),
    }
    root = zarr.open_group(str(path), mode="r")
    (name,) = list(root["Experiments"].group_keys())
    data = root["Experiments"][name]["data"]
    facts.update(
        signal=name,
        data_path=f"Experiments/{name}/data",
        shape=list(data.shape),
        chunks=list(data.chunks),
        dtype=str(data.dtype),
        nbytes=int(data.nbytes),
        n_chunks=int(data.nchunks),
        compressor=data.compressor.get_config() if data.compressor else None,
    )
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", nargs="?", type=Path, help=f"default: {DATA_DIR}")
    parser.add_argument("--small", action="store_true", help="small sizes for a quick run")
    args = parser.parse_args(argv)
    size = "small" if args.small else "full"
    out: Path = args.outdir or (DATA_DIR_SMALL if args.small else DATA_DIR)
    out.mkdir(parents=True, exist_ok=True)
    sizes = SIZES[size]
    for name, make, shape, seed in (
        (EELS, make_eels, sizes["eels"], 1),
        (STEM, make_stem, sizes["stem"], 2),
    ):
        path = out / name
        if path.exists():
            print(f"{path}: exists, skipped")
            continue
        t0 = time.perf_counter()
        tmp = path.with_name("tmp-" + path.name)
        shutil.rmtree(tmp, ignore_errors=True)
        make(tmp, shape, np.random.default_rng(seed))
        tmp.rename(path)
        print(f"{path}: written in {time.perf_counter() - t0:.1f} s")
    nocons = out / EELS_NOCONS
    if not nocons.exists():
        tmp = nocons.with_name("tmp-" + nocons.name)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(out / EELS, tmp)
        (tmp / ".zmetadata").unlink()
        tmp.rename(nocons)
        print(f"{nocons}: copied without .zmetadata")
    manifest = {
        "size": size,
        "versions": {
            "python": sys.version.split()[0],
            "hyperspy": hyperspy.__version__,
            "rosettasciio": rsciio.__version__,
            "zarr": zarr.__version__,
            "numpy": np.__version__,
        },
        "stores": {n: _store_facts(out / n) for n in (EELS, EELS_NOCONS, STEM)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, facts in manifest["stores"].items():
        print(
            f"{name}: {facts['groups']} groups, {facts['arrays']} arrays, {facts['keys']} keys, "
            f"{facts['bytes_on_disk'] / 1e6:.1f} MB on disk; data {facts['shape']} "
            f"{facts['dtype']} in {facts['n_chunks']} chunks of {facts['chunks']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
