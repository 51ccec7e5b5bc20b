"""``.hspy`` (HDF5) files decode like their ``.zspy`` twins, and like RosettaSciIO reads them.

``tests/hyperspy/make_fixtures.py`` saves every case of the zspy fixture set a second
time as ``.hspy`` from the same signal object, with real HyperSpy; the reference values
are dumped there by ``rsciio.hspy`` (data, axes, metadata, models) and ``hs.load``
(axis values).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import xarray as xr

import intake_zspy
from tests.hyperspy.reference import assert_equal_nested
from tests.test_60_hyperspy_reference import assert_same_signal, signals

pytestmark = pytest.mark.hyperspy

HSPY = [
    "axes_functional.hspy", "axes_functional_nonuniform_x.hspy", "axes_nonuniform.hspy",
    "dtypes_be_float32.hspy", "dtypes_be_float64.hspy", "dtypes_be_int16.hspy",
    "dtypes_bool.hspy", "dtypes_complex128.hspy", "dtypes_complex64.hspy",
    "dtypes_float16.hspy", "dtypes_float32.hspy", "dtypes_float64.hspy", "dtypes_int16.hspy",
    "dtypes_int32.hspy", "dtypes_int64.hspy", "dtypes_int8.hspy", "dtypes_rgb16.hspy",
    "dtypes_rgb8.hspy", "dtypes_uint16.hspy", "dtypes_uint32.hspy", "dtypes_uint64.hspy",
    "dtypes_uint8.hspy", "eels_si.hspy", "lazy_4dstem.hspy", "learning.hspy", "markers.hspy",
    "missing_chunks.hspy", "missing_chunks_nan.hspy", "model.hspy", "multi.hspy",
    "nested_signal.hspy", "ragged.hspy", "ragged_2d.hspy", "unicode_title.hspy",
    "unnamed.hspy",
]  # fmt: skip


@pytest.fixture(scope="module")
def references(hyperspy_fixtures: Any, hyperspy_reference: Any) -> Any:
    paths = [hyperspy_fixtures.hspy_path(name) for name in HSPY]
    for via in ("rsciio", "hyperspy"):
        hyperspy_reference.prefetch(paths, via)
    return hyperspy_reference


def plain_scalars(value: Any) -> Any:
    """RosettaSciIO's hspy reader hands out attributes as numpy scalars (``np.int64``,
    ``np.float64``, ``np.bool_``); intake-zspy gives the Python scalars a zspy store
    gives. That type, not the value, is the one difference forgiven."""
    if isinstance(value, dict):
        return {k: plain_scalars(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain_scalars(v) for v in value)
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        return value.item()
    return value


def open_tree(path: Any) -> xr.DataTree:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return intake_zspy.open_datatree(path)


def test_every_case_has_an_hspy_twin(hyperspy_fixtures: Any) -> None:
    assert sorted(hyperspy_fixtures.hspy_names()) == sorted(HSPY)
    zspy = {n.removesuffix(".zspy") for n in hyperspy_fixtures.names()}
    assert {n.removesuffix(".hspy") for n in HSPY} <= zspy


@pytest.mark.parametrize("name", HSPY)
def test_matches_rosettasciio(name: str, hyperspy_fixtures: Any, references: Any) -> None:
    path = hyperspy_fixtures.hspy_path(name)
    tree = open_tree(path)
    assert tree.attrs["file_format"] == "HyperSpy"
    for ds, ref in signals(tree, references(path, "rsciio")):
        for key in ("metadata", "original_metadata", "attributes", "models"):
            ref[key] = plain_scalars(ref[key])
        assert_same_signal(ds, ref)
        assert ds.attrs["package"] == ref["package"]
        for dim, axis in zip(ds["data"].dims, ref["axes"], strict=True):
            attrs = ds[dim].attrs
            assert attrs.get("long_name") == axis.get("name"), dim
            assert attrs.get("units") == axis.get("units"), dim
            assert attrs["navigate"] == axis["navigate"], dim
            assert attrs["axis_type"] == axis.get("_type", "UniformDataAxis"), dim
            for key in ("scale", "offset", "expression"):
                if key in axis:
                    assert attrs[key] == axis[key], (dim, key)


@pytest.mark.parametrize("name", HSPY)
def test_axis_values_match_hyperspy(name: str, hyperspy_fixtures: Any, references: Any) -> None:
    path = hyperspy_fixtures.hspy_path(name)
    for ds, ref in signals(open_tree(path), references(path, "hyperspy")):
        assert ds.attrs["title"] == ref["title"]
        for dim, axis in zip(ds["data"].dims, ref["axes"], strict=True):
            np.testing.assert_allclose(ds[dim].values, axis["values"], rtol=1e-12, err_msg=dim)


@pytest.mark.parametrize("name", ["eels_si.hspy", "lazy_4dstem.hspy", "ragged_2d.hspy"])
def test_same_dataset_as_the_zspy_twin(name: str, hyperspy_fixtures: Any) -> None:
    """Data, coordinates and dictionaries equal those of the ``.zspy`` saved alongside
    (but the record of the save itself, ``General.FileIO``)."""
    hspy = intake_zspy.open_dataset(hyperspy_fixtures.hspy_path(name))
    zspy = intake_zspy.open_dataset(hyperspy_fixtures.path(name.replace(".hspy", ".zspy")))
    assert_equal_nested(hspy["data"].values, zspy["data"].values, "data")
    xr.testing.assert_identical(xr.Dataset(hspy.coords), xr.Dataset(zspy.coords))
    for ds in (hspy, zspy):
        ds.attrs["metadata"]["General"].pop("FileIO")
        for key in ("big_int", "negative_big_int"):  # beyond 64 bits: HDF5 cannot hold them
            ds.attrs["original_metadata"].pop(key, None)
    for key in ("metadata", "original_metadata", "attributes", "title", "signal_type"):
        assert_equal_nested(hspy.attrs[key], zspy.attrs[key], key)


def test_dask_chunks_follow_the_hdf5_chunks(hyperspy_fixtures: Any, references: Any) -> None:
    path = hyperspy_fixtures.hspy_path("eels_si.hspy")
    ds = intake_zspy.open_dataset(path, chunks={})
    assert ds["data"].data.chunksize == (3, 2, 64)  # as HyperSpy saved it
    assert_equal_nested(ds["data"].compute().values, references(path, "rsciio")[0]["data"])
