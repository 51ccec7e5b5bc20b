"""HyperSpy loads what ``to_zspy`` writes exactly like the original.

1. Every HyperSpy-written fixture store ``f``, opened with ``open_datatree`` and written back
   with ``to_zspy`` (as a directory and as a zip), gives the same ``hs.load`` result as ``f``:
   data, axes (name, units, scale, offset, navigate, type, values...), metadata (except a new
   ``General.FileIO`` record), original_metadata, learning results and models.
2. Fresh xarray objects that never came from zspy load in HyperSpy with the right signal
   class, axes and title: HyperSpy's own title (``metadata.General.title``) wins over the
   variable name, and DigitalMicrograph-style tags (units, ``/``, ``.``, parentheses and
   unicode in keys) load as HyperSpy itself stores them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from tests.hyperspy.reference import assert_equal_nested

pytestmark = pytest.mark.hyperspy

#: How the round trip reads each store: lazily (xarray lazy indexing) for directories,
#: with dask chunks for zip files, so both write paths are covered.
STORE_TYPES = {"local": {}, "zip": {"chunks": {}}}


ENERGY = np.array([0.0, 0.5, 1.5, 3.0, 5.0, 7.5, 12.0])


def _fresh_objects() -> dict[str, tuple[Any, dict[str, Any]]]:
    rng = np.random.default_rng(7)
    cube = xr.DataArray(
        rng.random((3, 4, 7)).astype("f4"),
        dims=("y", "x", "energy"),
        coords={
            "y": ("y", 1.0 + 0.5 * np.arange(3), {"units": "nm"}),
            "x": ("x", -2.0 + 0.25 * np.arange(4), {"units": "nm"}),
            "energy": ("energy", ENERGY, {"units": "eV"}),
        },
        name="cube",
    )
    image = xr.DataArray(
        rng.integers(0, 1000, (5, 6)).astype("u2"),
        dims=("row", "col"),
        coords={"row": np.linspace(0.0, 2.0, 5), "col": 10.0 + 2.0 * np.arange(6)},
        attrs={"long_name": "an image"},
    )
    spectra = xr.Dataset(
        {"counts": (("t", "channel"), np.arange(12.0).reshape(3, 4))},
        coords={"channel": ("channel", 100.0 + 5.0 * np.arange(4), {"units": "eV"})},
        attrs={"title": "My spectra", "signal_type": "EELS"},
    )
    stack = xr.DataArray(
        da.from_array(rng.random((2, 3, 4, 5)), chunks=(1, 3, 4, 5)),
        dims=("a", "b", "ky", "kx"),
        coords={"ky": ("ky", 0.1 * np.arange(4), {"units": "1/nm"})},
        name="diffraction",
    )
    titled = xr.Dataset(
        {"intensity": (("x", "E"), np.arange(6.0).reshape(2, 3))},
        attrs={"title": "not this one", "metadata": {"General": {"title": "fresh dataset"}}},
    )
    tagged = xr.DataArray(
        np.arange(8, dtype="i2").reshape(2, 4),
        dims=("y", "channel"),
        name="tagged",
        attrs={"long_name": "not this one either"},
    ).to_dataset(name="data")
    tagged.attrs["original_metadata"] = DM_TAGS
    return {
        "cube.zspy": (cube, {}),
        "image.zspy": (image, {"signal_dims": 2}),
        "spectra.zspy": (spectra, {"store_type": "zip"}),
        "stack.zspy": (stack, {"signal_dims": ["ky", "kx"]}),
        "titled.zspy": (titled, {}),
        "tagged.zspy": (tagged, {"store_type": "zip"}),
    }


#: original_metadata as DigitalMicrograph files give it (keys with units, '/', '.', unicode).
DM_TAGS = {
    "ImageList": {
        "TagGroup0": {
            "ImageTags": {
                "Acquisition": {
                    "Device": {
                        "Dark Current (counts/s)": 1.5,
                        "Exposure (s)": 0.5,
                        "Pixel Size (µm)": [14.0, 14.0],
                        "Active Size (pixels)": (2048, 2048),
                        "Scale (nm/px)": [0.1, 0.2],
                    },
                    "Frame/Parameters": {"Binning": 2, "Name": "CCD/Camera"},
                },
                "Microscope Info": {
                    "Voltage (kV)": 200.0,
                    "Cs(mm)": 1.2,
                    "Name.Version": "GMS 3.5",
                    "Stage Position": {"Stage Alpha (°)": 0.5},
                },
            }
        }
    }
}


def _open_tree(path: Path, **kwargs: Any) -> xr.DataTree:
    # some fixtures are written to warn (stale .zmetadata, future format version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return intake_zspy.open_datatree(path, **kwargs)


@pytest.fixture(scope="module")
def written(
    hyperspy_fixtures: Any, hyperspy_reference: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, dict[str, Path]], dict[str, tuple[Any, Path]]]:
    """Every store of this module, with all ``--via hyperspy`` dumps made in one HyperSpy
    process: the round trips ``{fixture name: {"original": f, "local": dir, "zip": zip}}``
    and the fresh objects ``{file name: (object, written store)}``."""
    out = tmp_path_factory.mktemp("hyperspy-written")
    stores: dict[str, dict[str, Path]] = {}
    for name in hyperspy_fixtures.names():
        original = hyperspy_fixtures.path(name)
        stores[name] = {"original": original}
        for store_type, open_kwargs in STORE_TYPES.items():
            target = out / f"{Path(name).stem}-{store_type}.zspy"  # hs.load wants .zspy
            tree = _open_tree(original, **open_kwargs)
            intake_zspy.to_zspy(tree, target, store_type=store_type)
            stores[name][store_type] = target
    fresh = {}
    for name, (obj, kwargs) in _fresh_objects().items():
        fresh[name] = (obj, Path(intake_zspy.to_zspy(obj, out / f"fresh-{name}", **kwargs)))
    paths = [p for entry in stores.values() for p in entry.values()]
    hyperspy_reference.prefetch(paths + [path for _, path in fresh.values()], "hyperspy")
    return stores, fresh


@pytest.fixture(scope="module")
def roundtrips(
    written: tuple[dict[str, dict[str, Path]], dict[str, tuple[Any, Path]]],
) -> dict[str, dict[str, Path]]:
    return written[0]


def _without_new_fileio(written: Any, original: Any) -> Any:
    """``written`` without ``General.FileIO`` records that ``original`` does not have."""
    for w_sig, o_sig in zip(written, original, strict=False):
        w_io = w_sig["metadata"].get("General", {}).get("FileIO")
        o_io = o_sig["metadata"].get("General", {}).get("FileIO", {})
        if isinstance(w_io, dict):
            for key in [k for k in w_io if k not in o_io]:
                del w_io[key]
    return written


def test_every_fixture_store_is_covered(roundtrips: dict[str, dict[str, Path]]) -> None:
    assert len(roundtrips) >= 45
    for entry in roundtrips.values():
        for store_type in STORE_TYPES:
            assert entry[store_type].is_dir() == (store_type == "local")


@pytest.mark.parametrize("store_type", sorted(STORE_TYPES))
def test_hyperspy_loads_written_store_like_the_original(
    store_type: str, roundtrips: dict[str, dict[str, Path]], hyperspy_reference: Any
) -> None:
    failures = []
    for name, entry in roundtrips.items():
        expected = hyperspy_reference(entry["original"], "hyperspy")
        got = _without_new_fileio(hyperspy_reference(entry[store_type], "hyperspy"), expected)
        try:
            assert len(got) == len(expected), "number of signals"
            assert_equal_nested(got, expected)
        except AssertionError as exc:
            failures.append(f"{name}: {str(exc)[:600]}")
    assert not failures, "\n".join(failures)


def test_roundtrip_covers_what_matters(
    roundtrips: dict[str, dict[str, Path]], hyperspy_reference: Any
) -> None:
    """The comparison above is not vacuous: the dumps hold the interesting content."""
    eels = hyperspy_reference(roundtrips["eels_si.zspy"]["zip"], "hyperspy")[0]
    assert eels["class"] == "EELSSpectrum"
    assert eels["data"].ndim == 3
    assert [a["navigate"] for a in eels["axes"]] == [True, True, False]
    assert eels["axes"][-1]["units"] == "eV"
    multi = hyperspy_reference(roundtrips["multi.zspy"]["local"], "hyperspy")
    assert len(multi) > 1
    ragged = hyperspy_reference(roundtrips["ragged.zspy"]["zip"], "hyperspy")[0]
    assert ragged["ragged"] is True
    model = hyperspy_reference(roundtrips["model.zspy"]["local"], "hyperspy")[0]
    assert model["models"]
    nonuniform = hyperspy_reference(roundtrips["axes_nonuniform.zspy"]["local"], "hyperspy")[0]
    assert "DataAxis" in [a["_type"] for a in nonuniform["axes"]]


# -- objects that never came from zspy -------------------------------------------------


@pytest.fixture(scope="module")
def fresh(
    written: tuple[dict[str, dict[str, Path]], dict[str, tuple[Any, Path]]],
    hyperspy_reference: Any,
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """``{file name: (object, HyperSpy's view of the written store)}``."""
    result = {}
    for name, (obj, path) in written[1].items():
        (loaded,) = hyperspy_reference(path, "hyperspy")
        result[name] = (obj, loaded)
    return result


def assert_axis(axis: dict[str, Any], **expected: Any) -> None:
    for key, value in expected.items():
        if key == "values":
            np.testing.assert_allclose(axis["values"], value, rtol=0, atol=1e-12)
        elif isinstance(value, float):  # inferred from coordinates: float rounding allowed
            assert axis[key] == pytest.approx(value, rel=1e-12, abs=1e-15), (key, axis)
        else:
            assert axis[key] == value, (key, axis)


def test_fresh_3d_dataarray_is_a_spectrum_image(fresh: dict[str, Any]) -> None:
    cube, s = fresh["cube.zspy"]
    assert s["class"] == "Signal1D"
    assert s["title"] == "cube"
    np.testing.assert_array_equal(s["data"], cube.values)
    assert s["data"].dtype == np.float32
    y, x, energy = s["axes"]
    assert_axis(
        y, _type="UniformDataAxis", name="y", units="nm", navigate=True, scale=0.5, offset=1.0,
        size=3, values=1.0 + 0.5 * np.arange(3),
    )  # fmt: skip
    assert_axis(
        x, _type="UniformDataAxis", name="x", units="nm", navigate=True, scale=0.25,
        offset=-2.0, size=4, values=-2.0 + 0.25 * np.arange(4),
    )  # fmt: skip
    assert_axis(energy, _type="DataAxis", name="energy", units="eV", navigate=False, values=ENERGY)
    assert [a["index_in_array"] for a in s["axes"]] == [0, 1, 2]
    assert s["metadata"]["General"]["title"] == "cube"


def test_fresh_image_with_two_signal_dims_is_a_signal2d(fresh: dict[str, Any]) -> None:
    image, s = fresh["image.zspy"]
    assert s["class"] == "Signal2D"
    assert s["title"] == "an image"
    np.testing.assert_array_equal(s["data"], image.values)
    assert s["data"].dtype == np.uint16
    row, col = s["axes"]
    assert_axis(
        row, _type="UniformDataAxis", name="row", units=None, navigate=False, scale=0.5,
        offset=0.0, size=5, values=np.linspace(0.0, 2.0, 5),
    )  # fmt: skip
    assert_axis(
        col, _type="UniformDataAxis", name="col", units=None, navigate=False, scale=2.0,
        offset=10.0, size=6, values=10.0 + 2.0 * np.arange(6),
    )  # fmt: skip


def test_fresh_dataset_keeps_title_and_signal_type(fresh: dict[str, Any]) -> None:
    spectra, s = fresh["spectra.zspy"]
    assert s["class"] == "EELSSpectrum"  # signal_type "EELS", via exspy
    assert s["title"] == "My spectra"
    assert s["metadata"]["Signal"]["signal_type"] == "EELS"
    np.testing.assert_array_equal(s["data"], spectra["counts"].values)
    t, channel = s["axes"]
    assert_axis(
        t, _type="UniformDataAxis", name="t", units=None, navigate=True, scale=1.0, offset=0.0,
        values=np.arange(3.0),
    )  # fmt: skip
    assert_axis(
        channel, _type="UniformDataAxis", name="channel", units="eV", navigate=False, scale=5.0,
        offset=100.0, values=100.0 + 5.0 * np.arange(4),
    )  # fmt: skip


def test_fresh_dask_4d_stack_is_a_signal2d(fresh: dict[str, Any]) -> None:
    stack, s = fresh["stack.zspy"]
    assert s["class"] == "Signal2D"
    assert s["title"] == "diffraction"
    np.testing.assert_array_equal(s["data"], stack.values)
    assert [a["name"] for a in s["axes"]] == ["a", "b", "ky", "kx"]
    assert [a["navigate"] for a in s["axes"]] == [True, True, False, False]
    assert_axis(s["axes"][2], units="1/nm", scale=0.1, offset=0.0, values=0.1 * np.arange(4))


def test_fresh_title_comes_from_hyperspy_metadata_first(fresh: dict[str, Any]) -> None:
    _, s = fresh["titled.zspy"]
    assert s["title"] == "fresh dataset"
    assert s["metadata"]["General"]["title"] == "fresh dataset"


def test_digitalmicrograph_tags_load_as_hyperspy_stores_them(
    fresh: dict[str, Any], written: Any
) -> None:
    _, s = fresh["tagged.zspy"]
    tags = s["original_metadata"]["ImageList"]["TagGroup0"]["ImageTags"]
    device = tags["Acquisition"]["Device"]
    assert device["Dark Current (counts/s)"] == 1.5
    assert device["Exposure (s)"] == 0.5
    assert list(device["Pixel Size (µm)"]) == [14.0, 14.0]
    assert tuple(device["Active Size (pixels)"]) == (2048, 2048)
    assert device["Scale (nm/px)"] == [0.1, 0.2]  # a JSON list attribute
    # as in HyperSpy, '/' in a key holding a dictionary makes nested groups
    assert tags["Acquisition"]["Frame"]["Parameters"] == {"Binning": 2, "Name": "CCD/Camera"}
    info = tags["Microscope Info"]
    assert info["Voltage (kV)"] == 200.0
    assert info["Cs(mm)"] == 1.2
    assert info["Name.Version"] == "GMS 3.5"
    assert info["Stage Position"] == {"Stage Alpha (°)": 0.5}
    # and intake-zspy reads back what HyperSpy reads
    ours = intake_zspy.open_dataset(written[1]["tagged.zspy"][1]).attrs["original_metadata"]
    assert_equal_nested(ours, s["original_metadata"])
