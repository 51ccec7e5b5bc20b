"""Writing xarray objects: the mapping to HyperSpy's layout and round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import intake_zspy
from intake_zspy.errors import ZspyNameWarning
from intake_zspy.writer import to_zspy
from tests.builders import encode_store, signal_dict, uniform_axis, write_dir
from tests.test_30_dataset import eels_signal


def fresh_eels() -> xr.DataArray:
    energy = np.array([0.0, 0.5, 1.5, 3.0, 5.0])
    return xr.DataArray(
        np.arange(2 * 3 * 5, dtype="<f4").reshape(2, 3, 5),
        dims=("y", "x", "energy"),
        coords={
            "y": ("y", [0.0, 2.0], {"units": "nm"}),
            "x": ("x", np.linspace(-1.0, 1.0, 3), {"units": "nm"}),
            "energy": ("energy", energy, {"units": "eV"}),
        },
        name="counts",
    )


def read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_fresh_dataarray_maps_to_hyperspy_axes(tmp_path: Path) -> None:
    out = tmp_path / "fresh.zspy"
    assert to_zspy(fresh_eels(), out) == str(out)
    group = out / "Experiments" / "counts"
    axis = [read_json(group / f"axis-{i}" / ".zattrs") for i in range(3)]
    assert axis[0] == {"_type": "UniformDataAxis", "name": "y", "units": "nm", "navigate": True,
                       "is_binned": False, "size": 2, "scale": 2.0, "offset": 0.0}  # fmt: skip
    assert (axis[1]["scale"], axis[1]["offset"]) == (1.0, -1.0)
    assert (axis[2]["_type"], axis[2]["navigate"]) == ("DataAxis", False)
    assert (group / "axis-2" / "axis" / ".zarray").exists()
    root = read_json(out / ".zattrs")
    assert root == {"file_format": "ZSpy", "file_format_version": "3.3"}
    general = read_json(group / "metadata" / "General" / ".zattrs")
    assert general["title"] == "counts"
    zarray = read_json(group / "data" / ".zarray")
    assert zarray["dimension_separator"] == "/"
    assert zarray["compressor"] == {"id": "blosc", "cname": "zstd", "clevel": 1, "shuffle": 1,
                                    "blocksize": 0}  # fmt: skip
    assert zarray["chunks"] == [2, 3, 5]  # whole signals, one chunk for small data
    ds = intake_zspy.open_dataset(out)
    assert ds["data"].dims == ("y", "x", "energy")
    np.testing.assert_array_equal(ds["energy"].values, fresh_eels()["energy"].values)
    np.testing.assert_array_equal(ds["data"].values, fresh_eels().values)
    assert ds["energy"].attrs["units"] == "eV"


def test_no_coordinate_gives_unit_scale_and_unnamed(tmp_path: Path) -> None:
    da = xr.DataArray(np.zeros((4, 6)))
    to_zspy(da, tmp_path / "plain.zspy")
    ds = intake_zspy.open_dataset(tmp_path / "plain.zspy")
    assert ds.attrs["zspy_signal"] == "__unnamed__"
    assert ds.attrs["title"] == ""
    assert (ds["dim_1"].attrs["scale"], ds["dim_1"].attrs["offset"]) == (1.0, 0.0)
    assert "long_name" not in ds["dim_0"].attrs
    assert [ds[d].attrs["navigate"] for d in ds["data"].dims] == [True, False]


@pytest.mark.parametrize(
    ("signal_dims", "expected"),
    [(None, [True, True, False]), (2, [True, False, False]), (["x", "energy"], [True, False, False]),
     (0, [True, True, True])],
)  # fmt: skip
def test_signal_dims(tmp_path: Path, signal_dims: Any, expected: list[bool]) -> None:
    to_zspy(fresh_eels(), tmp_path / "s.zspy", signal_dims=signal_dims)
    ds = intake_zspy.open_dataset(tmp_path / "s.zspy")
    assert [ds[d].attrs["navigate"] for d in ds["data"].dims] == expected


def test_signal_dims_must_be_trailing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be the last dims"):
        to_zspy(fresh_eels(), tmp_path / "s.zspy", signal_dims=["y"])
    assert not (tmp_path / "s.zspy").exists()


def test_title_sources_and_slash(tmp_path: Path) -> None:
    da = fresh_eels()
    ds = da.to_dataset(name="data")
    ds.attrs["title"] = "SI / core-loss"
    to_zspy(ds, tmp_path / "t.zspy")
    assert (tmp_path / "t.zspy" / "Experiments" / "SI - core-loss").is_dir()
    assert intake_zspy.open_dataset(tmp_path / "t.zspy").attrs["title"] == "SI / core-loss"
    da.attrs["long_name"] = "Électrons µ"
    to_zspy(da, tmp_path / "u.zspy")
    assert intake_zspy.open_dataset(tmp_path / "u.zspy").attrs["title"] == "Électrons µ"


def test_unmapped_attributes_come_back(tmp_path: Path) -> None:
    da = fresh_eels()
    da.attrs["instrument_note"] = "tilted"
    da = da.assign_coords(time=("y", [10.0, 20.0], {"units": "s"}))
    da["energy"].attrs["comment"] = "calibrated"
    ds = da.to_dataset(name="data")
    ds.attrs.update(title="t", run=7)
    to_zspy(ds, tmp_path / "x.zspy")
    back = intake_zspy.open_dataset(tmp_path / "x.zspy")
    assert back.attrs["run"] == 7
    assert back["data"].attrs == {"instrument_note": "tilted"}
    np.testing.assert_array_equal(back["time"].values, [10.0, 20.0])
    assert back["time"].dims == ("y",)
    assert back["time"].attrs == {"units": "s"}
    assert back["energy"].attrs["comment"] == "calibrated"
    assert "_xarray" not in back.attrs["metadata"]


@pytest.fixture
def eels_store(tmp_path: Path) -> Path:
    return write_dir(encode_store({"EELS SI - core-loss": eels_signal()}), tmp_path / "e.zspy")


def assert_same_dataset(actual: xr.Dataset, expected: xr.Dataset) -> None:
    from tests.hyperspy.reference import assert_equal_nested

    assert list(actual.dims) == list(expected.dims)
    assert_equal_nested(actual["data"].values, expected["data"].values, "data")
    for dim in expected.dims:
        np.testing.assert_array_equal(actual[dim].values, expected[dim].values)
        assert_equal_nested(dict(actual[dim].attrs), dict(expected[dim].attrs), str(dim))
    assert_equal_nested(dict(actual.attrs), dict(expected.attrs), "attrs")


@pytest.mark.parametrize("store_type", ["local", "zip"])
def test_round_trip_over_local_kinds(eels_store: Path, tmp_path: Path, store_type: str) -> None:
    original = intake_zspy.open_dataset(eels_store)
    out = tmp_path / f"out-{store_type}.zspy"
    to_zspy(original, out, store_type=store_type)
    assert out.is_file() == (store_type == "zip")
    assert_same_dataset(intake_zspy.open_dataset(out), original)


def test_round_trip_to_memory_and_zip_url(eels_store: Path, memory_fs: Any) -> None:
    original = intake_zspy.open_dataset(eels_store)
    to_zspy(original, "memory://rt/e.zspy")
    assert_same_dataset(intake_zspy.open_dataset("memory://rt/e.zspy"), original)
    to_zspy(original, "zip::memory://rt/e2.zspy")
    assert memory_fs.isfile("/rt/e2.zspy")
    assert_same_dataset(intake_zspy.open_dataset("memory://rt/e2.zspy"), original)


@pytest.mark.s3
def test_round_trip_to_s3(eels_store: Path, s3_bucket: str, s3_storage_options: dict) -> None:
    original = intake_zspy.open_dataset(eels_store, chunks={})
    opts = dict(s3_storage_options)
    url = f"s3://{s3_bucket}/out.zspy"
    to_zspy(original, url, storage_options=opts)
    assert_same_dataset(intake_zspy.open_dataset(url, storage_options=opts), original.load())
    zipped = f"s3://{s3_bucket}/out.zip"  # a zip store, from the name
    with pytest.warns(ZspyNameWarning, match=r"out\.zip.*hs\.load .*'\.zspy'"):
        original.zspy.to_zspy(zipped, storage_options=opts)
    assert_same_dataset(intake_zspy.open_dataset(zipped, storage_options=opts), original.load())


def test_datatree_round_trip(tmp_path: Path) -> None:
    a = signal_dict(np.arange(6.0).reshape(2, 3), title="first")
    b = signal_dict(np.ones((5,), dtype="u1"), title="second")
    model = {"components": {"G": {"A": 1.0}}, "chisq": np.arange(2.0)}
    src = write_dir(
        encode_store({"first": a, "second": b}, models={"fit": ("/Experiments/first", model)}),
        tmp_path / "two.zspy",
    )
    tree = intake_zspy.open_datatree(src)
    to_zspy(tree, tmp_path / "copy.zspy")
    back = intake_zspy.open_datatree(tmp_path / "copy.zspy")
    assert set(back.children) == {"first", "second"}
    for name in ("first", "second"):
        assert_same_dataset(back[name].to_dataset(), tree[name].to_dataset())
    models = (tmp_path / "copy.zspy" / "Analysis" / "models" / "fit" / ".zattrs").read_text()
    assert json.loads(models)["_signal"] == "/Experiments/first"


def test_sliced_dataset_gets_consistent_axes(eels_store: Path, tmp_path: Path) -> None:
    sliced = intake_zspy.open_dataset(eels_store).isel(
        x=slice(1, None), **{"Energy loss": slice(2, 10, 2)}
    )
    to_zspy(sliced, tmp_path / "sliced.zspy")
    back = intake_zspy.open_dataset(tmp_path / "sliced.zspy")
    np.testing.assert_allclose(back["Energy loss"].values, sliced["Energy loss"].values)
    assert back["Energy loss"].attrs["scale"] == pytest.approx(0.5)
    assert back["Energy loss"].attrs["offset"] == pytest.approx(100.5)
    assert back["x"].attrs["offset"] == pytest.approx(-0.5)
    np.testing.assert_array_equal(back["data"].values, sliced["data"].values)


def test_ragged_data_round_trip(tmp_path: Path) -> None:
    data = np.empty((3,), dtype=object)
    for i in range(3):
        data[i] = np.arange(2 * (i + 1), dtype="<i4").reshape(-1, 2)
    to_zspy(xr.DataArray(data, dims=["x"]), tmp_path / "r.zspy")
    back = intake_zspy.open_dataset(tmp_path / "r.zspy")
    assert back.attrs["attributes"]["ragged"] is True
    assert back["x"].attrs["navigate"] is True
    for i in range(3):
        np.testing.assert_array_equal(back["data"].values[i], data[i])


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (xr.DataArray(np.array(["a", "b"])), "dtype <U1 cannot be stored"),
        (xr.DataArray(np.array(["2020-01-01"], dtype="datetime64[ns]")), "cannot be stored"),
        (
            xr.DataArray(np.zeros(2), attrs={"meta": {1.5: "x"}}),
            r"key 1\.5 \(float\) is not a string",
        ),
        (xr.Dataset({"a": ("x", [1]), "b": ("x", [2])}), "one data variable"),
        (xr.DataArray(np.zeros(2), coords={"dim_0": ["a", "b"]}), "1-D numeric index"),
        (
            xr.Dataset({"data": ("x", [1.0])}, attrs={"attributes": {"ragged": True}}),
            "ragged",
        ),
    ],
)
def test_bad_input_fails_before_writing(tmp_path: Path, obj: Any, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        to_zspy(obj, tmp_path / "bad.zspy")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot write a zspy store over http"):
        to_zspy(fresh_eels(), "http://127.0.0.1:9/x.zspy")
    with pytest.raises(ValueError, match="store_type must be"):
        to_zspy(fresh_eels(), tmp_path / "x.zspy", store_type="nested")


def test_user_chunks(tmp_path: Path) -> None:
    to_zspy(fresh_eels(), tmp_path / "c.zspy", chunks={"y": 1, "x": 2})
    zarray = read_json(tmp_path / "c.zspy" / "Experiments" / "counts" / "data" / ".zarray")
    assert zarray["chunks"] == [1, 2, 5]
    np.testing.assert_array_equal(
        intake_zspy.open_dataset(tmp_path / "c.zspy")["data"].values, fresh_eels().values
    )


# -- property: fresh DataArrays round trip --------------------------------------------------

dtypes = st.sampled_from(["<f4", "<f8", "<i2", "<u1", "|b1", "<c8", ">f8", "<f2"])


@st.composite
def dataarrays(draw: st.DrawFn) -> xr.DataArray:
    data = draw(hnp.arrays(dtypes, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)))
    coords = {}
    for i, n in enumerate(data.shape):
        kind = draw(st.sampled_from(["none", "uniform", "nonuniform"]))
        if kind == "uniform":
            scale = draw(st.floats(0.01, 100))
            offset = draw(st.floats(-1e3, 1e3))
            coords[f"d{i}"] = offset + scale * np.arange(n)
        elif kind == "nonuniform":
            coords[f"d{i}"] = np.cumsum(draw(hnp.arrays("<f8", n, elements=st.floats(0.1, 10))))
    return xr.DataArray(data, dims=[f"d{i}" for i in range(data.ndim)], coords=coords)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(da=dataarrays())
def test_fresh_dataarrays_round_trip(tmp_path: Path, da: xr.DataArray) -> None:
    out = tmp_path / "p.zspy"
    to_zspy(da, out, overwrite=True)
    back = intake_zspy.open_dataset(out)
    assert back["data"].dtype == da.dtype
    np.testing.assert_array_equal(back["data"].values, da.values)
    for dim in da.dims:
        if dim in da.coords:
            np.testing.assert_allclose(back[dim].values, da[dim].values, rtol=1e-9, atol=1e-9)
        else:
            np.testing.assert_array_equal(back[dim].values, np.arange(da.sizes[dim]))
    again = tmp_path / "q.zspy"
    to_zspy(back, again, overwrite=True)
    assert_same_dataset(intake_zspy.open_dataset(again), back)


def test_signal_with_uniform_axis_helper() -> None:
    # builders' axes are what HyperSpy writes; the writer emits the same keys
    expected = set(uniform_axis(3))
    da = xr.DataArray(np.zeros(3), dims=["x"], coords={"x": [0.0, 1.0, 2.0]})
    from intake_zspy.dataset_write import dataset_to_signal

    assert set(dataset_to_signal(da).axes[0]) == expected
