"""The Dataset contract: dims, coordinates, attrs, laziness, chunks, DataTree, backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array
import numpy as np
import pytest
import xarray as xr

import intake_zspy
import intake_zspy.storage
from intake_zspy.errors import ZspyFormatError
from intake_zspy.format.hierarchy import ItemEncoder
from intake_zspy.storage import KeyValueStore, open_store
from intake_zspy.xarray_backend import ZspyBackendEntrypoint
from tests.builders import CountingStore, encode_store, signal_dict, uniform_axis, write_dir

EELS = np.arange(4 * 3 * 16, dtype="<f4").reshape(4, 3, 16)


def eels_signal() -> dict[str, Any]:
    axes = [
        uniform_axis(4, "x", "nm", scale=0.5, offset=-1.0),
        uniform_axis(3, "y", "nm", scale=0.5),
        uniform_axis(
            16, "Energy loss", "eV", scale=0.25, offset=100.0, navigate=False, is_binned=True
        ),
    ]
    return signal_dict(
        EELS,
        axes,
        title="EELS SI / core-loss",
        signal_type="EELS",
        metadata={"Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}},
        original_metadata={"Header": {"list": [3, "a", None], "empty": ()}},
    )


def eels_items(**kwargs: Any) -> dict[str, bytes]:
    """An EELS store whose data array is chunked (2, 2, 16): 4 chunks."""
    enc_items = encode_store({"EELS SI - core-loss": eels_signal()}, **kwargs)
    # re-encode the data with navigation chunks so that laziness can be observed
    enc = ItemEncoder()
    enc.array("Experiments/EELS SI - core-loss/data", EELS, chunks=(2, 2, 16))
    stale = [k for k in enc_items if k.startswith("Experiments/EELS SI - core-loss/data/")]
    for key in stale:
        del enc_items[key]
    enc_items.update(enc.items)
    if ".zmetadata" in enc_items:
        import json

        meta = json.loads(enc_items[".zmetadata"])
        meta["metadata"]["Experiments/EELS SI - core-loss/data/.zarray"] = enc.docs[
            "Experiments/EELS SI - core-loss/data/.zarray"
        ]
        enc_items[".zmetadata"] = json.dumps(meta).encode()
    return enc_items


@pytest.fixture
def eels_dir(tmp_path: Path) -> Path:
    return write_dir(eels_items(), tmp_path / "eels.zspy")


def test_dims_coords_and_attrs_across_store_kinds(eels_dir: Path, publish: Any) -> None:
    url, options = publish(eels_dir)
    ds = intake_zspy.open_dataset(url, storage_options=options)
    assert list(ds.data_vars) == ["data"]
    assert ds["data"].dims == ("x", "y", "Energy loss")
    np.testing.assert_allclose(ds["x"].values, -1.0 + 0.5 * np.arange(4))
    np.testing.assert_allclose(ds["Energy loss"].values, 100.0 + 0.25 * np.arange(16))
    energy = ds["Energy loss"].attrs
    assert energy["units"] == "eV"
    assert energy["navigate"] is False
    assert energy["is_binned"] is True
    assert energy["axis_type"] == "UniformDataAxis"
    assert (energy["scale"], energy["offset"]) == (0.25, 100.0)
    assert ds["x"].attrs["navigate"] is True
    assert ds.attrs["title"] == "EELS SI / core-loss"
    assert ds.attrs["signal_type"] == "EELS"
    assert ds.attrs["zspy_signal"] == "EELS SI - core-loss"
    assert ds.attrs["metadata"]["Acquisition_instrument"]["TEM"]["beam_energy"] == 200.0
    assert ds.attrs["original_metadata"]["Header"] == {"list": [3, "a", None], "empty": ()}
    np.testing.assert_array_equal(ds["data"].values, EELS)
    assert ds["data"].dtype == np.dtype("<f4")


def test_opening_reads_no_chunk_and_slicing_reads_only_touched_chunks(eels_dir: Path) -> None:
    store = CountingStore(open_store(eels_dir))
    ds = intake_zspy.open_dataset(store)
    assert store.chunk_reads() == []
    assert not isinstance(ds["data"].variable._data, np.ndarray | dask.array.Array)
    value = ds["data"].isel(x=3, y=0).values
    np.testing.assert_array_equal(value, EELS[3, 0])
    assert store.chunk_reads() == ["Experiments/EELS SI - core-loss/data/1/0/0"]
    store.requested.clear()
    ds["data"].isel(x=slice(0, 2)).values  # noqa: B018 - the read is the point
    assert store.chunk_reads() == [
        "Experiments/EELS SI - core-loss/data/0/0/0",
        "Experiments/EELS SI - core-loss/data/0/1/0",
    ]


def test_chunks_follow_the_stored_chunks(eels_dir: Path) -> None:
    ds = intake_zspy.open_dataset(eels_dir, chunks={})
    data = ds["data"].data
    assert isinstance(data, dask.array.Array)
    assert data.chunks == ((2, 2), (2, 1), (16,))
    np.testing.assert_array_equal(data.compute(), EELS)
    auto = intake_zspy.open_dataset(eels_dir, chunks="auto")["data"].data
    assert isinstance(auto, dask.array.Array)
    np.testing.assert_array_equal(auto.sum(axis=-1).compute(), EELS.sum(axis=-1))


def test_stepped_and_negative_indexing(eels_dir: Path) -> None:
    ds = intake_zspy.open_dataset(eels_dir)
    out = ds["data"][::-2, 1:, ::3].values
    np.testing.assert_array_equal(out, EELS[::-2, 1:, ::3])


def test_xarray_engine_and_registration(eels_dir: Path) -> None:
    assert "zspy" in xr.backends.list_engines()
    ds = xr.open_dataset(eels_dir, engine="zspy")
    assert ds["data"].dims == ("x", "y", "Energy loss")
    entry = ZspyBackendEntrypoint()
    assert entry.guess_can_open("s3://bucket/run.zspy")
    assert entry.guess_can_open("/data/run.zspy/")
    assert not entry.guess_can_open("/data/run.hspy")
    assert not entry.guess_can_open(12)


def two_signal_items() -> dict[str, bytes]:
    a = signal_dict(np.arange(6.0).reshape(2, 3), title="first")
    b = signal_dict(np.ones((5,), dtype="u1"), title="second")
    model = {"components": {"Gaussian": {"A": 1.0}}, "chisq": np.arange(2.0)}
    return encode_store({"first": a, "second": b}, models={"fit": ("/Experiments/first", model)})


def test_datatree_has_one_node_per_signal(tmp_path: Path) -> None:
    path = write_dir(two_signal_items(), tmp_path / "two.zspy")
    tree = intake_zspy.open_datatree(path)
    assert set(tree.children) == {"first", "second"}
    assert tree.attrs["file_format"] == "ZSpy"
    np.testing.assert_array_equal(tree["second"]["data"].values, np.ones(5, "u1"))
    assert tree["first"].attrs["models"]["fit"]["components"]["Gaussian"]["A"] == 1.0
    assert tree["second"].attrs["models"] == {}
    tree_engine = xr.open_datatree(path, engine="zspy", chunks={})
    assert isinstance(tree_engine["first"]["data"].data, dask.array.Array)


def _track_closes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every store the backend opens record its closing in the returned list."""
    closed: list[str] = []

    def tracked(*args: Any, **kwargs: Any) -> KeyValueStore:
        store = open_store(*args, **kwargs)
        monkeypatch.setattr(store, "close", lambda: closed.append(store.url))
        return store

    monkeypatch.setattr(intake_zspy.storage, "open_store", tracked)
    return closed


def test_closing_the_tree_or_its_root_group_closes_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_dir(two_signal_items(), tmp_path / "two.zspy")
    closed = _track_closes(monkeypatch)
    for open_tree in (
        intake_zspy.open_datatree,
        lambda p: xr.open_datatree(p, engine="zspy", chunks={}),
    ):
        tree = open_tree(path)
        assert closed == []
        np.testing.assert_array_equal(tree["second"]["data"].values, np.ones(5, "u1"))
        tree.close()
        assert len(closed) == 1
        closed.clear()
    groups = ZspyBackendEntrypoint().open_groups_as_dict(path)
    assert closed == []
    groups["/"].close()
    assert len(closed) == 1


def test_a_tree_that_cannot_be_built_closes_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_dir(two_signal_items(), tmp_path / "two.zspy")
    closed = _track_closes(monkeypatch)

    def refuse(cls: type, groups: Any, *args: Any, **kwargs: Any) -> xr.DataTree:
        raise ValueError("node names clash")

    monkeypatch.setattr(xr.DataTree, "from_dict", classmethod(refuse))
    with pytest.raises(ZspyFormatError, match="cannot be represented in xarray"):
        intake_zspy.open_datatree(path)
    assert len(closed) == 1


def test_signal_selection(tmp_path: Path) -> None:
    path = write_dir(two_signal_items(), tmp_path / "two.zspy")
    assert intake_zspy.open_dataset(path).attrs["title"] == "first"
    assert intake_zspy.open_dataset(path, signal="second").attrs["title"] == "second"
    ds = xr.open_dataset(path, engine="zspy", group="/Experiments/second")
    assert ds.attrs["title"] == "second"
    with pytest.raises(KeyError, match=r"no signal named 'third'; available: first, second"):
        intake_zspy.open_dataset(path, signal="third")


def test_non_uniform_and_functional_axes(tmp_path: Path) -> None:
    x = np.array([0.0, 1.0, 3.0, 7.0])
    axes = [
        {"_type": "DataAxis", "name": "t", "units": "s", "navigate": True, "is_binned": False,
         "axis": x},
        {"_type": "FunctionalDataAxis", "name": "E", "units": "eV", "navigate": False,
         "is_binned": False, "size": 5, "expression": "a / (x + b)", "a": 10.0, "b": 1.0,
         "x": {"_type": "UniformDataAxis", "size": 5, "scale": 2.0, "offset": 0.0,
               "navigate": False, "is_binned": False, "name": None, "units": None}},
    ]  # fmt: skip
    path = write_dir(
        encode_store({"s": signal_dict(np.zeros((4, 5)), axes)}), tmp_path / "axes.zspy"
    )
    ds = intake_zspy.open_dataset(path)
    np.testing.assert_array_equal(ds["t"].values, x)
    np.testing.assert_allclose(ds["E"].values, 10.0 / (2.0 * np.arange(5) + 1.0))
    assert ds["E"].attrs["expression"] == "a / (x + b)"
    assert ds["E"].attrs["parameters"] == {"a": 10.0, "b": 1.0}
    assert ds["t"].attrs["axis_type"] == "DataAxis"
    assert "scale" not in ds["t"].attrs


def test_duplicate_and_missing_axis_names_use_dim_i(tmp_path: Path) -> None:
    axes = [uniform_axis(2, "x"), uniform_axis(3, "x"), uniform_axis(4, None, navigate=False)]
    path = write_dir(
        encode_store({"s": signal_dict(np.zeros((2, 3, 4)), axes)}), tmp_path / "d.zspy"
    )
    ds = intake_zspy.open_dataset(path)
    assert ds["data"].dims == ("dim_0", "dim_1", "dim_2")
    assert ds["dim_0"].attrs["long_name"] == "x"


def test_ragged_signal(tmp_path: Path) -> None:
    data = np.empty((2, 2), dtype=object)
    for i, j in np.ndindex(2, 2):
        data[i, j] = np.arange(i + j + 1, dtype="<f8").reshape(1, -1)
    sig = signal_dict(
        data, [uniform_axis(2, "x"), uniform_axis(2, "y")], attributes={"ragged": True}
    )
    path = write_dir(encode_store({"r": sig}), tmp_path / "r.zspy")
    ds = intake_zspy.open_dataset(path)
    assert ds["data"].dtype == object
    values = ds["data"].values
    assert values[1, 1].shape == (1, 3)
    np.testing.assert_array_equal(values[1, 0], np.arange(2.0).reshape(1, 2))
    assert ds.attrs["attributes"]["ragged"] is True
    lazy = intake_zspy.open_dataset(path, chunks={})["data"]
    assert lazy[1, 1].compute().item().shape == (1, 3)
