"""What intake-zspy decodes equals what RosettaSciIO/HyperSpy decode, store by store.

The stores are written by real HyperSpy in its own virtual environment
(``tests/hyperspy/make_fixtures.py``); the reference values are dumped there by
RosettaSciIO (data, axes, metadata, models) and HyperSpy (axis values).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import intake_zspy
from intake_zspy import StaleMetadataWarning, ZspyVersionWarning
from tests.conftest import corpus_files
from tests.hyperspy.reference import assert_equal_nested

pytestmark = pytest.mark.hyperspy

STORES = [
    "eels_si.zspy", "eels_si_zip.zspy", "eels_si_zip_nested.zspy", "eels_si_flat.zspy",
    "eels_si_flat_nosep.zspy", "dtypes_int8.zspy", "dtypes_int16.zspy", "dtypes_int32.zspy",
    "dtypes_int64.zspy", "dtypes_uint8.zspy", "dtypes_uint16.zspy", "dtypes_uint32.zspy",
    "dtypes_uint64.zspy", "dtypes_float16.zspy", "dtypes_float32.zspy", "dtypes_float64.zspy",
    "dtypes_complex64.zspy", "dtypes_complex128.zspy", "dtypes_bool.zspy",
    "dtypes_be_float32.zspy", "dtypes_be_int16.zspy", "dtypes_be_float64.zspy",
    "dtypes_rgb8.zspy", "dtypes_rgb16.zspy", "axes_nonuniform.zspy", "axes_functional.zspy",
    "axes_functional_nonuniform_x.zspy", "missing_chunks.zspy", "missing_chunks_nan.zspy",
    "ragged.zspy", "ragged_2d.zspy", "markers.zspy", "model.zspy", "learning.zspy",
    "nested_signal.zspy", "multi.zspy", "lazy_4dstem.zspy", "unnamed.zspy",
    "unicode_title.zspy", "no_zmetadata.zspy", "stale_zmetadata.zspy", "version_float.zspy",
    "version_future.zspy", "legacy_ragged_shapes.zspy", "legacy_axes_list.zspy",
]  # fmt: skip
EXPECTED_WARNINGS = {
    "stale_zmetadata.zspy": StaleMetadataWarning,
    "version_future.zspy": ZspyVersionWarning,
}


@pytest.fixture(scope="module")
def references(hyperspy_fixtures: Any, hyperspy_reference: Any) -> Any:
    paths = [hyperspy_fixtures.path(name) for name in STORES]
    for via in ("rsciio", "hyperspy"):
        hyperspy_reference.prefetch(paths, via)
    return hyperspy_reference


def test_every_generated_store_is_covered(hyperspy_fixtures: Any) -> None:
    assert sorted(hyperspy_fixtures.names()) == sorted(STORES)


def open_tree(path: Any, name: str) -> xr.DataTree:
    expected = EXPECTED_WARNINGS.get(name)
    if expected is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return intake_zspy.open_datatree(path)
    with pytest.warns(expected):
        return intake_zspy.open_datatree(path)


def _matches(actual: Any, expected: Any) -> bool:
    try:
        assert_equal_nested(actual, expected)
    except AssertionError:
        return False
    return True


def in_reference_order(ours: Any, ref: Any) -> Any:
    """Our value, with long mixed lists put in the reference reader's string order.

    RosettaSciIO sorts the items of a ``_list_<n>_`` group by name ("0", "1", "10",
    "2", ...); intake-zspy restores their true order. Only that difference is forgiven.
    """
    if isinstance(ours, dict) and isinstance(ref, dict):
        return {k: in_reference_order(v, ref[k]) if k in ref else v for k, v in ours.items()}
    if isinstance(ours, list | tuple) and isinstance(ref, list | tuple) and len(ours) == len(ref):
        if len(ours) > 10 and not _matches(ours, ref):
            shuffled = type(ours)(ours[i] for i in sorted(range(len(ours)), key=str))
            if _matches(shuffled, ref):
                return shuffled
        return type(ours)(in_reference_order(a, b) for a, b in zip(ours, ref, strict=True))
    return ours


def signals(tree: xr.DataTree, refs: list[dict[str, Any]]) -> Iterator[tuple[xr.Dataset, dict]]:
    nodes = list(tree.children.values())
    assert len(nodes) == len(refs)
    for node, ref in zip(nodes, refs, strict=True):
        yield node.to_dataset(), ref


def assert_same_signal(ds: xr.Dataset, ref: dict[str, Any]) -> None:
    """Data and every dictionary equal what RosettaSciIO decoded."""
    assert_equal_nested(ds["data"].values, ref["data"], "data")
    # RosettaSciIO overwrites the stored "_lazy" with how it was asked to load
    ref["attributes"].pop("_lazy", None)
    ds.attrs["attributes"].pop("_lazy", None)
    for key in ("metadata", "original_metadata", "attributes", "models"):
        assert_equal_nested(in_reference_order(ds.attrs[key], ref[key]), ref[key], key)


@pytest.mark.parametrize("name", STORES)
def test_matches_rosettasciio(name: str, hyperspy_fixtures: Any, references: Any) -> None:
    path = hyperspy_fixtures.path(name)
    tree = open_tree(path, name)
    for ds, ref in signals(tree, references(path, "rsciio")):
        assert_same_signal(ds, ref)
        assert ds.attrs["package"] == ref["package"]
        assert ds.attrs["package_version"] == ref["package_version"]
        assert len(ds["data"].dims) == len(ref["axes"])
        for dim, axis in zip(ds["data"].dims, ref["axes"], strict=True):
            attrs = ds[dim].attrs
            assert attrs.get("long_name") == axis.get("name"), dim
            assert attrs.get("units") == axis.get("units"), dim
            assert attrs["navigate"] == axis["navigate"], dim
            assert attrs["is_binned"] == axis["is_binned"], dim
            assert attrs["axis_type"] == axis.get("_type", "UniformDataAxis"), dim
            for key in ("scale", "offset", "expression"):
                if key in axis:
                    assert attrs[key] == axis[key], (dim, key)


@pytest.mark.parametrize("name", STORES)
def test_axis_values_match_hyperspy(name: str, hyperspy_fixtures: Any, references: Any) -> None:
    path = hyperspy_fixtures.path(name)
    tree = open_tree(path, name)
    for ds, ref in signals(tree, references(path, "hyperspy")):
        assert ds.attrs["title"] == ref["title"]
        for dim, axis in zip(ds["data"].dims, ref["axes"], strict=True):
            np.testing.assert_allclose(ds[dim].values, axis["values"], rtol=1e-12, err_msg=dim)


@pytest.mark.parametrize("name", ["eels_si.zspy", "eels_si_zip.zspy", "lazy_4dstem.zspy"])
def test_dask_read_matches(name: str, hyperspy_fixtures: Any, references: Any) -> None:
    path = hyperspy_fixtures.path(name)
    ref = references(path, "rsciio")[0]
    ds = intake_zspy.open_dataset(path, chunks={})
    assert_equal_nested(ds["data"].compute().values, ref["data"], "data")


CORPUS_FILES = corpus_files()


@pytest.mark.skipif(
    not CORPUS_FILES, reason="no corpus: set INTAKE_ZSPY_CORPUS (default ../shared/corpus-dev)"
)
@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_public_corpus_matches_rosettasciio(path: Path, hyperspy_reference: Any) -> None:
    tree = intake_zspy.open_datatree(path)
    for ds, ref in signals(tree, hyperspy_reference(path, "rsciio")):
        assert_same_signal(ds, ref)
