"""Write a set of small reference ``.zspy`` stores with real HyperSpy.

This script runs **inside the HyperSpy virtual environment** (HyperSpy 2.5,
RosettaSciIO 0.15, zarr 2; see ``env.py``), never in the main environment of
the project, which has zarr 3::

    python tests/hyperspy/make_fixtures.py OUTDIR

It writes one store per feature of the zspy layout described in the team's
``FORMAT.md`` (nested / flat / zip stores, every data type, uniform,
non-uniform and functional axes, missing chunks, ragged data, markers,
models, learning results, nested signals, several experiments, lazy saving,
unnamed and unicode titles, missing and stale consolidated metadata, and a
few legacy layouts) plus ``OUTDIR/manifest.json``, which lists every store
with its file name, its store kind (``"nested"``, ``"flat"`` or ``"zip"``),
whether it was edited after HyperSpy wrote it, and a one-line description.

Every store is written by ``BaseSignal.save`` with fixed random seeds; a few
are then edited with zarr 2 to produce layouts that HyperSpy itself no longer
writes (each such store says so in the manifest, ``"edited": true``). The only
content that changes from one run to the next is what HyperSpy itself stamps
(``metadata.General.FileIO`` timestamps). Each store is re-loaded with
``hs.load`` as a sanity check, and the script fails if a store is larger than
200 kB.

The data are made with this script only; no code of RosettaSciIO is copied
here (RosettaSciIO is GPL, this project is BSD-3).
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
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

warnings.filterwarnings("ignore", message=".*Numba is not installed.*")
warnings.filterwarnings("ignore", message="The NestedDirectoryStore is deprecated")
warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in the HyperSpy 3.0")
# zarr 2's ZipStore rewrites .zattrs members: duplicate names are expected.
warnings.filterwarnings("ignore", message="Duplicate name:", category=UserWarning)

import hyperspy
import hyperspy.api as hs
import numcodecs
import rsciio
import zarr

MAX_STORE_BYTES = 200_000
"""Upper bound on the size of any store written here (bytes)."""

EELS_TITLE = "EELS SI / core-loss"
"""Title of the EELS-like signal; the ``/`` becomes ``-`` in the group name."""

EELS_GROUP = EELS_TITLE.replace("/", "-")
"""Name of the group of the EELS-like signal under ``Experiments/``."""

SAVE_KW: dict[str, Any] = {"overwrite": True, "show_progressbar": False}
"""Keyword arguments used by every ``save`` call."""


@dataclass(frozen=True)
class Fixture:
    """Description of one store, as written into ``manifest.json``.

    Parameters
    ----------
    file : str
        File name of the store inside the output directory.
    kind : str
        ``"nested"`` (directory store, ``/`` separator), ``"flat"`` (directory
        store, ``.`` separator) or ``"zip"`` (single zip file).
    description : str
        One line saying what the store covers.
    edited : bool
        True when the store was modified with zarr 2 after HyperSpy saved it.
    """

    file: str
    kind: str
    description: str
    edited: bool = False


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _remove(path: Path) -> None:
    """Delete a file or a directory tree if it exists."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _store_size(path: Path) -> int:
    """Return the total size in bytes of a store (file or directory)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _reconsolidate(path: Path) -> None:
    """Rewrite ``.zmetadata`` of a nested directory store with zarr 2."""
    zarr.consolidate_metadata(zarr.storage.NestedDirectoryStore(str(path)))


def _open_nested(path: Path) -> zarr.Group:
    """Open a nested directory store for editing with zarr 2 (not consolidated)."""
    return zarr.open_group(zarr.storage.NestedDirectoryStore(str(path)), mode="r+")


def _load_one(path: Path | zarr.storage.BaseStore) -> Any:
    """Load a store with HyperSpy and check that it holds exactly one signal."""
    s = hs.load(path)
    if not isinstance(s, hs.signals.BaseSignal):
        raise TypeError(f"{path}: expected one signal, got {s!r}")
    return s


def _check_data(path: Path, expected: np.ndarray) -> None:
    """Load ``path`` with HyperSpy and compare its data with ``expected``."""
    s = _load_one(path)
    got = np.asarray(s.data)
    if got.dtype != expected.dtype or got.shape != expected.shape:
        raise AssertionError(
            f"{path}: got {got.dtype}{got.shape}, expected {expected.dtype}{expected.shape}"
        )
    if expected.dtype.names is None:
        np.testing.assert_array_equal(got, expected)
    elif got.tobytes() != expected.tobytes():
        raise AssertionError(f"{path}: structured data differ")


# ---------------------------------------------------------------------------
# the EELS-like spectrum image and its original_metadata
# ---------------------------------------------------------------------------

LONG_MIXED_LIST: list[Any] = [
    0,
    "one",
    2.0,
    None,
    [4, 4],
    {"five": 5},
    6,
    "seven",
    8.5,
    True,
    (10, "ten"),
    11,
    "twelve",
]
"""A 13-item list numpy cannot make an array of: stored as ``_list_13_<key>``.

Children ``10``, ``11``, ``12`` sort before ``2`` as strings, so this checks
that a reader restores the numerical order.
"""


def original_metadata_dict() -> dict[str, Any]:
    """Return an ``original_metadata`` dict exercising every encoding rule.

    Returns
    -------
    dict
        Nested dictionary with one entry per dictionary-encoding rule of
        FORMAT.md (``None``, strings, numbers, non-finite floats, a big
        integer, bytes, empty and non-empty lists and tuples, arrays, deep
        nesting, keys with spaces).
    """
    return {
        "none_value": None,
        "text": "plain ascii text",
        "unicode_text": "Spectre énergie µm \u2013 日本語 ✓",
        "none_string": "_None_",
        "int_value": 42,
        "negative_int": -7,
        "big_int": 2**70 + 1,
        "negative_big_int": -(2**65) - 3,
        "uint64_max": 2**64 - 1,
        "float_value": 0.1,
        "tiny_float": 5e-324,
        "nan_value": float("nan"),
        "inf_value": float("inf"),
        "neg_inf_value": float("-inf"),
        "bool_true": True,
        "bool_false": False,
        "bytes_value": b"raw bytes without NUL",
        "empty_list": [],
        "empty_tuple": (),
        "int_list": [1, 2, 3],
        "float_list": [0.5, 1.5, float("nan"), float("inf")],
        "bool_list": [True, False, True],
        "str_list": ["alpha", "beta", "γάμμα"],
        "number_tuple": (1, 2.5, 3),
        "str_tuple": ("a", "bc"),
        "mixed_list": [1, "two", 3.0],
        "mixed_object_list": [1, None, "x"],
        "mixed_tuple": (1, None, "z"),
        "nested_list": [{"a": 1, "b": [1, 2]}, [1, 2, 3], "s", [[1, 2], [3, 4]]],
        "long_mixed_list": LONG_MIXED_LIST,
        "long_int_list": list(range(12)),
        "int_array": np.arange(6, dtype=np.int32),
        "float_array": np.linspace(0.0, 1.0, 5),
        "array_2d": np.arange(12, dtype=np.float64).reshape(3, 4),
        # HyperSpy stores "U" arrays as "|S": only ASCII content can be saved.
        "unicode_array": np.array(["ab", "c", "xyz"]),
        "bool_array": np.array([True, False]),
        "key with spaces": "value",
        "Level1": {
            "name": "level 1",
            "Level2": {
                "value": 2.5,
                "Level3": {
                    "items": ["x", "y"],
                    "Level4": {
                        "leaf": 1,
                        "leaf_str": "deep",
                        "leaf_array": np.arange(3, dtype=np.uint16),
                        "leaf_none": None,
                    },
                },
            },
        },
    }


def eels_signal() -> Any:
    """Return the EELS-like 3-D spectrum image used by the ``eels_si*`` stores.

    Returns
    -------
    hyperspy.signals.Signal1D
        A 6 x 5 x 64 float32 ``exspy`` ``EELSSpectrum``
        with named, unit-bearing uniform axes, a binned signal axis, rich
        ``metadata`` and the ``original_metadata`` of
        :func:`original_metadata_dict`.
    """
    rng = np.random.default_rng(1)
    energy = np.arange(64, dtype=np.float32)
    edge = np.where(energy > 30, 50.0 * np.exp(-(energy - 30) / 20.0), 0.0)
    data = 100.0 * np.exp(-energy / 15.0) + edge
    data = data[None, None, :] * (1.0 + 0.1 * rng.random((6, 5, 1)))
    s = hs.signals.Signal1D(data.astype(np.float32))
    s.set_signal_type("EELS")  # exspy (pinned in env.py) makes it an EELSSpectrum
    # Integer indexing is in "natural" order: navigation axes first, fastest
    # first, so [0] is x (array axis 1) and [1] is y (array axis 0).
    x, y, e = s.axes_manager[0], s.axes_manager[1], s.axes_manager[2]
    x.name, x.units, x.scale, x.offset = "x", "nm", 0.5, -1.0
    y.name, y.units, y.scale, y.offset = "y", "nm", 0.25, 2.0
    e.name, e.units, e.scale, e.offset = "Energy loss", "eV", 0.5, 280.0
    e.is_binned = True
    md = s.metadata
    md.General.title = EELS_TITLE
    md.set_item("General.authors", "intake-zspy test suite")
    md.set_item("General.date", "2024-01-02")
    md.set_item("General.time", "12:34:56")
    md.set_item("General.notes", "Synthetic core-loss spectrum image.")
    md.set_item("Signal.quantity", "Intensity (counts)")
    md.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    md.set_item("Acquisition_instrument.TEM.convergence_angle", 21.5)
    md.set_item("Acquisition_instrument.TEM.microscope", "Synthetic TEM")
    md.set_item("Acquisition_instrument.TEM.Detector.EELS.collection_angle", 36.0)
    md.set_item("Acquisition_instrument.TEM.Detector.EELS.dwell_time", 0.01)
    md.set_item("Acquisition_instrument.TEM.Detector.EELS.aperture_size", 5.0)
    md.set_item("Sample.elements", ["C", "O"])
    md.set_item("Sample.thickness", 30.5)
    s.original_metadata.add_dictionary(original_metadata_dict())
    return s


# ---------------------------------------------------------------------------
# builders: each writes one store and returns its manifest entry
# ---------------------------------------------------------------------------


def make_eels_si(out: Path) -> list[Fixture]:
    """Write ``eels_si.zspy`` (nested), ``_zip``, ``_flat`` and ``_flat_nosep``."""
    s = eels_signal()
    chunks = (3, 2, 64)
    s.save(out / "eels_si.zspy", chunks=chunks, **SAVE_KW)
    s.save(out / "eels_si_zip.zspy", chunks=chunks, store_type="zip", **SAVE_KW)
    nested_zip = zarr.storage.ZipStore(
        str(out / "eels_si_zip_nested.zspy"), mode="w", dimension_separator="/"
    )
    s.save(nested_zip, chunks=chunks, **SAVE_KW)  # HyperSpy closes the ZipStore
    flat = zarr.storage.DirectoryStore(str(out / "eels_si_flat.zspy"), dimension_separator=".")
    s.save(flat, chunks=chunks, **SAVE_KW)
    nosep = zarr.storage.DirectoryStore(str(out / "eels_si_flat_nosep.zspy"))
    s.save(nosep, chunks=chunks, **SAVE_KW)
    for name in (
        "eels_si.zspy",
        "eels_si_zip.zspy",
        "eels_si_zip_nested.zspy",
        "eels_si_flat.zspy",
        "eels_si_flat_nosep.zspy",
    ):
        _check_data(out / name, s.data)
    _check_zip(out / "eels_si_zip.zspy", "0.0.0")
    _check_zip(out / "eels_si_zip_nested.zspy", "0/0/0")
    flat_zarray = json.loads(
        (out / "eels_si_flat.zspy" / "Experiments" / EELS_GROUP / "data" / ".zarray").read_text()
    )
    if flat_zarray.get("dimension_separator") != ".":
        raise AssertionError("eels_si_flat.zspy: dimension_separator is not '.'")
    if not (out / "eels_si_flat.zspy" / "Experiments" / EELS_GROUP / "data" / "0.0.0").is_file():
        raise AssertionError("eels_si_flat.zspy: no flat chunk key data/0.0.0")
    common = (
        "6x5x64 float32 EELS spectrum image, title with '/', named axes with units, binned "
        "signal axis, rich metadata, original_metadata covering every dict-encoding rule, "
        "chunks (3, 2, 64)"
    )
    return [
        Fixture("eels_si.zspy", "nested", common),
        Fixture(
            "eels_si_zip.zspy",
            "zip",
            common + "; zip store (store_type='zip'): FLAT chunk keys data/0.0.0, no "
            "dimension_separator, duplicated .zattrs members (last one wins)",
        ),
        Fixture(
            "eels_si_zip_nested.zspy",
            "zip",
            common + "; zarr.ZipStore(dimension_separator='/') passed to save: nested chunk "
            "keys data/0/0/0 inside the zip, duplicated .zattrs members",
        ),
        Fixture(
            "eels_si_flat.zspy",
            "flat",
            common + "; flat DirectoryStore, chunk keys data/0.0.0, dimension_separator '.'",
        ),
        Fixture(
            "eels_si_flat_nosep.zspy",
            "flat",
            common + "; flat DirectoryStore without a dimension_separator key in .zarray",
        ),
    ]


def _dtype_data(name: str, rng: np.random.Generator) -> np.ndarray:
    """Return deterministic 4x6x5 data of the dtype called ``name``."""
    shape = (4, 6, 5)
    dt = np.dtype(name)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        native = dt.newbyteorder("=")
        data = rng.integers(info.min, info.max, size=shape, dtype=native, endpoint=True)
        data.flat[0], data.flat[1] = info.min, info.max
        return data.astype(dt)
    if dt.kind == "f":
        data = rng.normal(size=shape).astype(dt)
        data.flat[0], data.flat[1], data.flat[2] = np.nan, np.inf, -np.inf
        data.flat[3] = np.finfo(dt).max
        return data
    if dt.kind == "c":
        data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dt)
        data.flat[0] = complex(np.nan, 1.0)
        data.flat[1] = complex(1.0, np.inf)
        return data
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    raise ValueError(name)


DTYPES: dict[str, str] = {
    "int8": "i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "uint8": "u1",
    "uint16": "<u2",
    "uint32": "<u4",
    "uint64": "<u8",
    "float16": "<f2",
    "float32": "<f4",
    "float64": "<f8",
    "complex64": "<c8",
    "complex128": "<c16",
    "bool": "?",
    "be_float32": ">f4",
    "be_int16": ">i2",
    "be_float64": ">f8",
}
"""File-name suffix -> numpy dtype string of the ``dtypes_*`` stores."""


def make_dtypes(out: Path) -> list[Fixture]:
    """Write one ``dtypes_<name>.zspy`` Signal2D per dtype, with several chunks."""
    fixtures = []
    rng = np.random.default_rng(2)
    for name, code in DTYPES.items():
        data = _dtype_data(code, rng)
        s = hs.signals.Signal2D(data)
        if data.dtype.kind == "c":
            s = hs.signals.ComplexSignal2D(data)
        s.metadata.General.title = f"dtype {name}"
        path = out / f"dtypes_{name}.zspy"
        s.save(path, chunks=(2, 4, 5), **SAVE_KW)
        _check_data(path, data)
        fixtures.append(
            Fixture(
                path.name,
                "nested",
                f"4x6x5 Signal2D of dtype {np.dtype(code).str} ({name}), extreme/non-finite "
                "values, chunks (2, 4, 5) with partial edge chunks",
            )
        )
    for name, base, size in (("rgb8", "u1", 255), ("rgb16", "<u2", 65535)):
        raw = rng.integers(0, size, size=(3, 4, 5, 3), dtype=base, endpoint=True)
        s = hs.signals.Signal1D(raw)
        s.change_dtype(name)
        s.metadata.General.title = f"dtype {name}"
        path = out / f"dtypes_{name}.zspy"
        s.save(path, chunks=(2, 2, 5), **SAVE_KW)
        _check_data(path, s.data)
        fixtures.append(
            Fixture(
                path.name,
                "nested",
                f"3x4x5 Signal2D of HyperSpy structured dtype {name} "
                f"({s.data.dtype.descr}), chunks (2, 2, 5)",
            )
        )
    return fixtures


def make_axes(out: Path) -> list[Fixture]:
    """Write the non-uniform and functional axis stores."""
    rng = np.random.default_rng(3)
    # Non-uniform axes, both in navigation and in signal space.
    nav_values = np.array([0.0, 0.5, 1.5, 3.5])
    sig_values = np.cumsum(rng.uniform(0.1, 1.0, 30)) + 100.0
    s = hs.signals.Signal1D(
        rng.random((4, 30)).astype(np.float32),
        axes=[
            {"axis": nav_values, "name": "time", "units": "s", "navigate": True},
            {"axis": sig_values, "name": "Energy", "units": "eV", "navigate": False},
        ],
    )
    s.axes_manager[-1].is_binned = True
    s.metadata.General.title = "non-uniform axes"
    s.save(out / "axes_nonuniform.zspy", **SAVE_KW)
    _check_data(out / "axes_nonuniform.zspy", s.data)

    # Functional axis whose x is uniform.
    s = hs.signals.Signal1D(rng.random((3, 20)).astype(np.float32))
    ax = s.axes_manager[-1]
    ax.scale, ax.offset, ax.name, ax.units = 0.5, 1.0, "x_index", "eV"
    ax.convert_to_functional_data_axis(
        expression="a / (x + b)", units="nm", name="Wavelength", a=1239.84, b=0.1
    )
    s.axes_manager[0].name = "scan"
    s.metadata.General.title = "functional axis (uniform x)"
    s.save(out / "axes_functional.zspy", **SAVE_KW)
    _check_data(out / "axes_functional.zspy", s.data)

    # Functional axis whose x is non-uniform.
    x_values = np.sort(rng.uniform(1.0, 11.0, 20))
    s = hs.signals.Signal1D(
        rng.random((3, 20)).astype(np.float32),
        axes=[
            {"size": 3, "name": "scan", "units": "µm", "scale": 2.0, "offset": -1.0},
            {
                "expression": "a*x**2 + b",
                "x": {"axis": x_values, "name": "q", "units": "1/nm"},
                "a": 2.0,
                "b": -1.0,
                "name": "E",
                "units": "eV",
            },
        ],
    )
    s.metadata.General.title = "functional axis (non-uniform x)"
    s.save(out / "axes_functional_nonuniform_x.zspy", **SAVE_KW)
    _check_data(out / "axes_functional_nonuniform_x.zspy", s.data)
    return [
        Fixture(
            "axes_nonuniform.zspy",
            "nested",
            "4x30 Signal1D with a non-uniform DataAxis in navigation (time/s) and in "
            "signal space (Energy/eV, binned): values in axis-i/axis arrays",
        ),
        Fixture(
            "axes_functional.zspy",
            "nested",
            "3x20 Signal1D whose signal axis is FunctionalDataAxis 'a / (x + b)' "
            "(a=1239.84, b=0.1) over a uniform x (scale 0.5, offset 1)",
        ),
        Fixture(
            "axes_functional_nonuniform_x.zspy",
            "nested",
            "3x20 Signal1D whose signal axis is FunctionalDataAxis 'a*x**2 + b' (a=2, b=-1) "
            "over a non-uniform x (axis-1/x/axis array)",
        ),
    ]


def make_missing_chunks(out: Path) -> list[Fixture]:
    """Write stores whose all-fill-value chunks were not written by zarr 2."""
    fixtures = []
    for name, fill in (("missing_chunks.zspy", 0.0), ("missing_chunks_nan.zspy", np.nan)):
        rng = np.random.default_rng(4)
        data = rng.random((6, 8, 16)).astype(np.float32) + 1.0
        # chunks (2, 2, 16): 3 x 4 chunks; blank out three of them.
        for i, j in ((0, 0), (1, 2), (2, 3)):
            data[2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :] = fill
        s = hs.signals.Signal1D(data)
        s.metadata.General.title = "missing chunks"
        path = out / name
        s.save(path, chunks=(2, 2, 16), write_empty_chunks=False, fill_value=fill, **SAVE_KW)
        chunk_dir = path / "Experiments" / "missing chunks" / "data"
        for i, j in ((0, 0), (1, 2), (2, 3)):
            key = chunk_dir / str(i) / str(j) / "0"
            if key.exists():  # older zarr 2 always writes: remove by hand
                key.unlink()
        present = sorted(
            str(p.relative_to(chunk_dir))
            for p in chunk_dir.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        if len(present) != 9:
            raise AssertionError(f"{name}: expected 9 chunks, found {present}")
        _check_data(path, data)
        fixtures.append(
            Fixture(
                name,
                "nested",
                f"6x8x16 float32 Signal1D, chunks (2, 2, 16), fill_value {fill!r}: chunk keys "
                "data/0/0/0, data/1/2/0, data/2/3/0 are absent (read as fill_value)",
            )
        )
    return fixtures


def _ragged_1d(rng: np.random.Generator) -> np.ndarray:
    """Return a 3x4 object array of float64 1-D arrays of varying length."""
    data = np.empty((3, 4), dtype=object)
    for idx in np.ndindex(data.shape):
        data[idx] = rng.random(int(rng.integers(1, 7)))
    return data


def _ragged_2d(rng: np.random.Generator) -> np.ndarray:
    """Return a 2x3 object array of int32 (n, 2) arrays with varying n."""
    data = np.empty((2, 3), dtype=object)
    for idx in np.ndindex(data.shape):
        data[idx] = rng.integers(0, 100, size=(int(rng.integers(1, 5)), 2)).astype(np.int32)
    return data


def _check_ragged(path: Path, expected: np.ndarray) -> None:
    """Load a ragged store with HyperSpy and compare it element-wise."""
    s = _load_one(path)
    if not s.ragged or s.data.shape != expected.shape:
        raise AssertionError(f"{path}: not the expected ragged signal")
    for idx in np.ndindex(expected.shape):
        np.testing.assert_array_equal(s.data[idx], expected[idx])
        if s.data[idx].dtype != expected[idx].dtype:
            raise AssertionError(f"{path}: element dtype {s.data[idx].dtype}")


def make_ragged(out: Path) -> list[Fixture]:
    """Write ``ragged.zspy`` (1-D elements) and ``ragged_2d.zspy`` (2-D elements)."""
    rng = np.random.default_rng(5)
    data = _ragged_1d(rng)
    s = hs.signals.BaseSignal(data, ragged=True)
    s.metadata.General.title = "ragged"
    s.axes_manager[0].name, s.axes_manager[1].name = "x", "y"
    s.save(out / "ragged.zspy", **SAVE_KW)
    _check_ragged(out / "ragged.zspy", data)

    data2 = _ragged_2d(rng)
    s = hs.signals.BaseSignal(data2, ragged=True)
    s.metadata.General.title = "ragged 2d"
    s.save(out / "ragged_2d.zspy", **SAVE_KW)
    _check_ragged(out / "ragged_2d.zspy", data2)
    return [
        Fixture(
            "ragged.zspy",
            "nested",
            "ragged BaseSignal: 3x4 object array of float64 1-D arrays (lengths 1-6); "
            "vlen-array data + _ragged_shapes_data",
        ),
        Fixture(
            "ragged_2d.zspy",
            "nested",
            "ragged BaseSignal: 2x3 object array of int32 (n, 2) arrays, flattened on disk, "
            "shapes in _ragged_shapes_data",
        ),
    ]


def make_markers(out: Path) -> list[Fixture]:
    """Write ``markers.zspy``: a Signal2D with ragged and non-ragged markers."""
    rng = np.random.default_rng(6)
    s = hs.signals.Signal2D(rng.random((2, 3, 8, 8)).astype(np.float32))
    s.metadata.General.title = "markers"
    nav_shape = s.axes_manager.navigation_shape  # (x, y) = (3, 2): reversed array order!
    offsets = np.empty(nav_shape, dtype=object)
    text_offsets = np.empty(nav_shape, dtype=object)
    texts = np.empty(nav_shape, dtype=object)
    for idx in np.ndindex(nav_shape):
        n = int(rng.integers(1, 5))
        offsets[idx] = np.round(rng.random((n, 2)) * 8, 3)
        text_offsets[idx] = np.array([[1.0 + idx[0], 2.0 + idx[1]]] * (1 + idx[1]))
        texts[idx] = np.array([f"p{idx[0]}{idx[1]}-{k}" for k in range(1 + idx[1])])
    s.add_marker(
        hs.plot.markers.Points(offsets=offsets, sizes=3, color="red", name="peaks"),
        permanent=True,
        plot_marker=False,
    )
    s.add_marker(
        hs.plot.markers.Texts(offsets=text_offsets, texts=texts, name="labels"),
        permanent=True,
        plot_marker=False,
    )
    s.add_marker(
        hs.plot.markers.Circles(offsets=[[4.0, 4.0]], sizes=2.5, name="centre"),
        permanent=True,
        plot_marker=False,
    )
    path = out / "markers.zspy"
    s.save(path, **SAVE_KW)
    loaded = _load_one(path)
    if sorted(loaded.metadata.Markers.keys()) != ["centre", "labels", "peaks"]:
        raise AssertionError(f"markers.zspy: markers {loaded.metadata.Markers.keys()}")
    return [
        Fixture(
            "markers.zspy",
            "nested",
            "2x3x8x8 Signal2D with permanent markers: 'peaks' Points with ragged offsets "
            "(vlen-array, (x, y) navigation order), 'labels' Texts with ragged texts "
            "(msgpack2), 'centre' Circles (not ragged)",
        )
    ]


def make_model(out: Path) -> list[Fixture]:
    """Write ``model.zspy``: a Signal1D with a stored, fitted model ``a``."""
    rng = np.random.default_rng(7)
    x = np.arange(50, dtype=np.float64)
    centres = np.array([20.0, 25.0, 30.0])
    data = 5.0 + 100.0 * np.exp(-0.5 * ((x[None, :] - centres[:, None]) / 3.0) ** 2)
    data += rng.normal(scale=0.5, size=data.shape)
    s = hs.signals.Signal1D(data)
    s.metadata.General.title = "model"
    m = s.create_model()
    g = hs.model.components1D.Gaussian(A=700.0, sigma=4.0, centre=24.0)
    m.extend([g, hs.model.components1D.Offset()])
    m.multifit(show_progressbar=False)
    m.store("a")
    path = out / "model.zspy"
    s.save(path, **SAVE_KW)
    loaded = _load_one(path)
    if loaded.models.a is None:
        raise AssertionError("model.zspy: model not restored")
    return [
        Fixture(
            "model.zspy",
            "nested",
            "3x50 Signal1D with a stored model 'a' (Gaussian + Offset, multifit) under "
            "Analysis/models/a with _signal attr; parameter maps are structured arrays",
        )
    ]


def make_learning(out: Path) -> list[Fixture]:
    """Write ``learning.zspy``: a signal after ``decomposition()``."""
    rng = np.random.default_rng(8)
    factors = rng.random((2, 32))
    loadings = rng.random((4, 5, 2))
    s = hs.signals.Signal1D(loadings @ factors + 0.01 * rng.random((4, 5, 32)))
    s.metadata.General.title = "learning"
    s.decomposition(print_info=False)
    path = out / "learning.zspy"
    s.save(path, **SAVE_KW)
    loaded = _load_one(path)
    if loaded.learning_results.factors is None:
        raise AssertionError("learning.zspy: no factors")
    return [
        Fixture(
            "learning.zspy",
            "nested",
            "4x5x32 float64 Signal1D after SVD decomposition(): learning_results group with "
            "factors, loadings, explained_variance and attrs",
        )
    ]


def make_nested_signal(out: Path) -> list[Fixture]:
    """Write ``nested_signal.zspy``: metadata holding a variance signal."""
    rng = np.random.default_rng(9)
    data = rng.poisson(20.0, size=(3, 4, 10)).astype(np.float32)
    s = hs.signals.Signal1D(data)
    s.metadata.General.title = "nested signal"
    s.axes_manager[-1].name, s.axes_manager[-1].units = "Energy", "keV"
    s.axes_manager[-1].scale = 0.01
    variance = hs.signals.Signal1D(data * 1.5)
    variance.metadata.General.title = "variance of nested signal"
    variance.axes_manager[-1].name, variance.axes_manager[-1].units = "Energy", "keV"
    variance.axes_manager[-1].scale = 0.01
    s.metadata.set_item("Signal.Noise_properties.variance", variance)
    path = out / "nested_signal.zspy"
    s.save(path, **SAVE_KW)
    loaded = _load_one(path)
    var = loaded.metadata.Signal.Noise_properties.variance
    np.testing.assert_array_equal(var.data, variance.data)
    return [
        Fixture(
            "nested_signal.zspy",
            "nested",
            "3x4x10 Signal1D whose metadata.Signal.Noise_properties.variance is a signal: "
            "group _sig_variance with data, _list_3_axes, metadata, ...",
        )
    ]


def make_multi(out: Path, tmp: Path) -> list[Fixture]:
    """Write ``multi.zspy``: two experiments in one store (second one copied in)."""
    rng = np.random.default_rng(10)
    first = hs.signals.Signal1D(rng.random((2, 3, 8)).astype(np.float32))
    first.metadata.General.title = "first"
    second = hs.signals.Signal2D(rng.integers(0, 100, size=(2, 4, 4), dtype=np.int16))
    second.metadata.General.title = "second"
    path = out / "multi.zspy"
    other = tmp / "multi_second.zspy"
    first.save(path, **SAVE_KW)
    second.save(other, **SAVE_KW)
    src = zarr.open_group(zarr.storage.NestedDirectoryStore(str(other)), mode="r")
    dest = _open_nested(path)
    zarr.copy(src["Experiments/second"], dest["Experiments"], name="second")
    _reconsolidate(path)
    loaded = hs.load(path)
    if not isinstance(loaded, list) or len(loaded) != 2:
        raise AssertionError("multi.zspy: HyperSpy did not load two signals")
    return [
        Fixture(
            "multi.zspy",
            "nested",
            "two experiments: 'first' (2x3x8 float32 Signal1D) saved by HyperSpy and "
            "'second' (2x4x4 int16 Signal2D) copied in with zarr.copy, re-consolidated",
            edited=True,
        )
    ]


def make_lazy(out: Path) -> list[Fixture]:
    """Write ``lazy_4dstem.zspy`` from a lazy signal with dask chunks."""
    rng = np.random.default_rng(11)
    data = rng.integers(0, 1000, size=(4, 3, 16, 16), dtype=np.uint16)
    s = hs.signals.Signal2D(da.from_array(data, chunks=(2, 2, 16, 16))).as_lazy()
    s.metadata.General.title = "4D STEM"
    names = ("scan_x", "scan_y", "kx", "ky")
    for ax, name in zip(s.axes_manager._axes[::-1], names[::-1], strict=True):
        ax.name = name
    for name in ("kx", "ky"):
        s.axes_manager[name].units = "1/nm"
        s.axes_manager[name].scale = 0.1
        s.axes_manager[name].offset = -0.8
    s.save(out / "lazy_4dstem.zspy", **SAVE_KW)
    zarray = json.loads(
        (out / "lazy_4dstem.zspy" / "Experiments" / "4D STEM" / "data" / ".zarray").read_text()
    )
    if zarray["chunks"] != [2, 2, 16, 16]:
        raise AssertionError(f"lazy_4dstem.zspy: chunks {zarray['chunks']}")
    _check_data(out / "lazy_4dstem.zspy", data)
    return [
        Fixture(
            "lazy_4dstem.zspy",
            "nested",
            "lazy 4x3x16x16 uint16 Signal2D saved from dask chunks ((2, 2), (2, 1), 16, 16): "
            "zarr chunks (2, 2, 16, 16), partial chunk on axis 1",
        )
    ]


def make_titles(out: Path) -> list[Fixture]:
    """Write ``unnamed.zspy`` (empty title) and ``unicode_title.zspy``."""
    rng = np.random.default_rng(12)
    s = hs.signals.Signal1D(rng.random((2, 5)).astype(np.float64))
    s.save(out / "unnamed.zspy", **SAVE_KW)
    if not (out / "unnamed.zspy" / "Experiments" / "__unnamed__").is_dir():
        raise AssertionError("unnamed.zspy: no __unnamed__ group")
    _check_data(out / "unnamed.zspy", s.data)
    s = hs.signals.Signal1D(rng.random((2, 5)).astype(np.float64))
    s.metadata.General.title = "Spectre énergie µm"
    s.axes_manager[-1].units = "µm"
    s.axes_manager[-1].name = "Énergie"
    s.save(out / "unicode_title.zspy", **SAVE_KW)
    _check_data(out / "unicode_title.zspy", s.data)
    return [
        Fixture(
            "unnamed.zspy",
            "nested",
            "2x5 Signal1D with an empty title: group Experiments/__unnamed__, title ''",
        ),
        Fixture(
            "unicode_title.zspy",
            "nested",
            "2x5 Signal1D titled 'Spectre énergie µm' (non-ASCII group name), axis units 'µm'",
        ),
    ]


def make_consolidation_variants(out: Path) -> list[Fixture]:
    """Write ``no_zmetadata.zspy`` and ``stale_zmetadata.zspy`` from ``eels_si.zspy``."""
    src = out / "eels_si.zspy"
    no_zm = out / "no_zmetadata.zspy"
    shutil.copytree(src, no_zm)
    (no_zm / ".zmetadata").unlink()
    _load_one(no_zm)

    stale = out / "stale_zmetadata.zspy"
    shutil.copytree(src, stale)
    root = _open_nested(stale)
    exp = root["Experiments"][EELS_GROUP]
    exp["metadata/General"].attrs["title"] = "EELS SI / core-loss (edited)"
    exp["axis-2"].attrs["scale"] = 0.25
    zmeta_mtime = (stale / ".zmetadata").stat().st_mtime
    later = zmeta_mtime + 2.0
    for rel in (
        f"Experiments/{EELS_GROUP}/metadata/General/.zattrs",
        f"Experiments/{EELS_GROUP}/axis-2/.zattrs",
    ):
        os.utime(stale / rel, (later, later))
    loaded = _load_one(stale)  # rsciio ignores .zmetadata: sees the edits
    if loaded.axes_manager[-1].scale != 0.25:
        raise AssertionError("stale_zmetadata.zspy: edit not visible")
    return [
        Fixture(
            "no_zmetadata.zspy",
            "nested",
            "copy of eels_si.zspy with .zmetadata deleted (pre-0.15 writers)",
            edited=True,
        ),
        Fixture(
            "stale_zmetadata.zspy",
            "nested",
            "copy of eels_si.zspy edited after consolidation: metadata/General title "
            "'EELS SI / core-loss (edited)' and axis-2 scale 0.25 (was 0.5); the edited "
            ".zattrs are 2 s newer than .zmetadata, which still has the old values",
            edited=True,
        ),
    ]


def make_legacy(out: Path) -> list[Fixture]:
    """Write stores edited into layouts of older or newer writers."""
    fixtures = []
    # file_format_version written as a float, as very old writers did.
    path = out / "version_float.zspy"
    shutil.copytree(out / "unnamed.zspy", path)
    _open_nested(path).attrs["file_format_version"] = 3.1
    _reconsolidate(path)
    _load_one(path)
    fixtures.append(
        Fixture(
            path.name,
            "nested",
            "copy of unnamed.zspy with root attr file_format_version = 3.1 (a float)",
            edited=True,
        )
    )
    # A newer format version than any reader knows: warn, do not refuse.
    path = out / "version_future.zspy"
    shutil.copytree(out / "unnamed.zspy", path)
    _open_nested(path).attrs["file_format_version"] = "9.0"
    _reconsolidate(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _load_one(path)
    if not any("newer version" in str(w.message) for w in caught):
        raise AssertionError("version_future.zspy: no warning from HyperSpy")
    fixtures.append(
        Fixture(
            path.name,
            "nested",
            "copy of unnamed.zspy with file_format_version '9.0' (rsciio warns, still loads)",
            edited=True,
        )
    )
    # Ragged shapes array named as by RosettaSciIO <= 0.1.
    path = out / "legacy_ragged_shapes.zspy"
    shutil.copytree(out / "ragged.zspy", path)
    exp = _open_nested(path)["Experiments/ragged"]
    exp.store.rename(f"{exp.path}/_ragged_shapes_data", f"{exp.path}/ragged_shapes")
    _reconsolidate(path)
    loaded = _load_one(path)
    if not loaded.ragged:
        raise AssertionError("legacy_ragged_shapes.zspy: not ragged")
    fixtures.append(
        Fixture(
            path.name,
            "nested",
            "copy of ragged.zspy with _ragged_shapes_data renamed to ragged_shapes "
            "(RosettaSciIO <= 0.1 layout)",
            edited=True,
        )
    )
    # Axes in a _list_<ndim>_axes group instead of axis-<i> groups.
    path = out / "legacy_axes_list.zspy"
    shutil.copytree(out / "axes_nonuniform.zspy", path)
    exp = _open_nested(path)["Experiments/non-uniform axes"]
    exp.require_group("_list_2_axes")
    for i in range(2):
        exp.store.rename(f"{exp.path}/axis-{i}", f"{exp.path}/_list_2_axes/{i}")
    _reconsolidate(path)
    loaded = _load_one(path)
    if loaded.axes_manager[-1].name != "Energy":
        raise AssertionError("legacy_axes_list.zspy: axes not restored")
    fixtures.append(
        Fixture(
            path.name,
            "nested",
            "copy of axes_nonuniform.zspy with axis-0/axis-1 moved to _list_2_axes/0 and /1 "
            "(older axes layout)",
            edited=True,
        )
    )
    return fixtures


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


def _check_zip(path: Path, first_chunk: str) -> None:
    """Check that a zip store has uncompressed members and the expected chunk key."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    if not any(i.filename == f"Experiments/{EELS_GROUP}/data/{first_chunk}" for i in infos):
        raise AssertionError(f"{path}: no chunk key data/{first_chunk} in zip")
    if any(i.compress_type != zipfile.ZIP_STORED for i in infos):
        raise AssertionError(f"{path}: compressed zip members")
    names = [i.filename for i in infos]
    if len(set(names)) == len(names):
        raise AssertionError(f"{path}: expected duplicated member names")


#: ``save`` keywords that only the zspy writer knows (left out of the ``.hspy`` twin).
_ZSPY_ONLY_KW = ("store_type", "write_empty_chunks", "fill_value")


def _install_hspy_twin(out: Path) -> Callable[[], None]:
    """Make every ``save`` of a ``.zspy`` path also save ``out/hspy/<stem>.hspy``.

    Every case of the zspy set is then also written as HyperSpy's HDF5 ``.hspy`` from
    the very same signal object (zip variants, zarr stores passed in and edits made
    with zarr after saving have no twin). Returns the function that uninstalls it.
    """
    from hyperspy.signal import BaseSignal

    original = BaseSignal.save
    twins = out / "hspy"
    twins.mkdir(exist_ok=True)

    def save(self: Any, filename: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = original(self, filename, *args, **kwargs)
        twin = isinstance(filename, str | Path) and str(filename).endswith(".zspy")
        if twin and kwargs.get("store_type", "local") == "local":
            hspy_kw = {k: v for k, v in kwargs.items() if k not in _ZSPY_ONLY_KW}
            original(self, twins / f"{Path(filename).stem}.hspy", *args, **hspy_kw)
        return result

    BaseSignal.save = save  # type: ignore[method-assign]

    def uninstall() -> None:
        BaseSignal.save = original  # type: ignore[method-assign]

    return uninstall


def _finish_hspy_twins(out: Path) -> list[str]:
    """Complete the ``.hspy`` twins (the second experiment of ``multi``); their names."""
    import h5py

    twins = out / "hspy"
    second = twins / "multi_second.hspy"
    if second.exists():
        with h5py.File(second, "r") as src, h5py.File(twins / "multi.hspy", "r+") as dst:
            src.copy(src["Experiments/second"], dst["Experiments"], name="second")
        second.unlink()
        loaded = hs.load(twins / "multi.hspy")
        if not isinstance(loaded, list) or len(loaded) != 2:
            raise AssertionError("hspy/multi.hspy: HyperSpy did not load two signals")
    names = sorted(p.name for p in twins.glob("*.hspy"))
    for name in names:
        hs.load(twins / name)  # each twin loads in HyperSpy
    return names


def build_all(out: Path) -> list[Fixture]:
    """Write every store into ``out`` and return their manifest entries.

    Parameters
    ----------
    out : pathlib.Path
        Output directory; existing stores with the same names are replaced.

    Returns
    -------
    list of Fixture
        One entry per store, in the order they were written.
    """
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".tmp"
    _remove(tmp)
    tmp.mkdir()
    builders: list[Callable[[Path], list[Fixture]]] = [
        make_eels_si,
        make_dtypes,
        make_axes,
        make_missing_chunks,
        make_ragged,
        make_markers,
        make_model,
        make_learning,
        make_nested_signal,
        lambda o: make_multi(o, tmp),
        make_lazy,
        make_titles,
        make_consolidation_variants,
        make_legacy,
    ]
    planned = [
        "eels_si.zspy", "eels_si_zip.zspy", "eels_si_zip_nested.zspy", "eels_si_flat.zspy", "eels_si_flat_nosep.zspy",
        "no_zmetadata.zspy", "stale_zmetadata.zspy", "multi.zspy", "version_float.zspy",
        "version_future.zspy", "legacy_ragged_shapes.zspy", "legacy_axes_list.zspy",
    ]  # fmt: skip
    for name in planned:
        _remove(out / name)
    _remove(out / "hspy")
    uninstall = _install_hspy_twin(out)
    fixtures: list[Fixture] = []
    try:
        for build in builders:
            fixtures.extend(build(out))
    finally:
        uninstall()
    shutil.rmtree(tmp)
    names = [f.file for f in fixtures]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate store names")
    for f in fixtures:
        size = _store_size(out / f.file)
        if size > MAX_STORE_BYTES:
            raise AssertionError(f"{f.file} is {size} bytes (> {MAX_STORE_BYTES})")
    return fixtures


def write_manifest(out: Path, fixtures: list[Fixture], seconds: float) -> Path:
    """Write ``manifest.json`` and return its path.

    The manifest is ``{"generator": {...versions...}, "stores": [{"file",
    "kind", "description", "edited", "bytes"}, ...]}``.
    """
    manifest = {
        "generator": {
            "script": "tests/hyperspy/make_fixtures.py",
            "python": sys.version.split()[0],
            "hyperspy": hyperspy.__version__,
            "rosettasciio": rsciio.__version__,
            "zarr": zarr.__version__,
            "numcodecs": numcodecs.__version__,
            "numpy": np.__version__,
            "seconds": round(seconds, 2),
        },
        "hspy": _finish_hspy_twins(out),
        "stores": [
            {
                "file": f.file,
                "kind": f.kind,
                "description": f.description,
                "edited": f.edited,
                "bytes": _store_size(out / f.file),
            }
            for f in fixtures
        ],
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``make_fixtures.py OUTDIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="directory to write the stores into")
    args = parser.parse_args(argv)
    hs.set_log_level("ERROR")
    logging.getLogger("rsciio").setLevel(logging.ERROR)
    start = time.perf_counter()
    fixtures = build_all(args.outdir)
    seconds = time.perf_counter() - start
    write_manifest(args.outdir, fixtures, seconds)
    print(f"wrote {len(fixtures)} stores to {args.outdir} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
