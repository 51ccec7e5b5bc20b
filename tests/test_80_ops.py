"""Store operations from Python: describe, verify, copy, and the one signal summary."""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import hypothesis.strategies as st
import intake
import numcodecs
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings

import intake_zspy
from intake_zspy.errors import StoreExistsError
from intake_zspy.format import layout
from intake_zspy.ops import ChunkRule, Report, copy, describe, summarize_signal, verify
from intake_zspy.ops.copy import plan_signals

Publish = Callable[[Path], tuple[str, dict[str, Any]]]

DATA = np.arange(6 * 4 * 16, dtype="<f4").reshape(6, 4, 16)


def _signal() -> xr.Dataset:
    ds = xr.Dataset(
        {"data": (("y", "x", "Energy"), DATA)},
        coords={
            "y": ("y", np.arange(6) * 0.5, {"units": "nm", "navigate": True}),
            "x": ("x", np.arange(4) * 0.5, {"units": "nm", "navigate": True}),
            "Energy": ("Energy", 280 + np.arange(16) * 0.25, {"units": "eV", "navigate": False}),
        },
        attrs={"title": "EELS SI", "signal_type": "EELS"},
    )
    return ds


@pytest.fixture
def local_store(tmp_path: Path) -> Path:
    path = tmp_path / "si.zspy"
    intake_zspy.to_zspy(_signal(), path, chunks={"y": 2, "x": 2})
    return path


def _chunk_keys(path: Path) -> dict[str, bytes]:
    data = path / "Experiments" / "EELS SI" / "data"
    return {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file() and p.name[0] != "."}


# -- describe ---------------------------------------------------------------------------


def test_describe_returns_the_info_document(local_store: Path, publish: Publish) -> None:
    url, options = publish(local_store)
    doc = describe(url, storage_options=options or None)
    assert doc["format_version"] == "3.3"
    assert doc["consolidated"] is True
    (sig,) = doc["signals"]
    assert (sig["name"], sig["title"], sig["signal_type"]) == ("EELS SI", "EELS SI", "EELS")
    assert (sig["shape"], sig["dtype"]) == ([6, 4, 16], "float32")
    assert sig["chunks"] == [2, 2, 16]
    assert (sig["chunk_count"], sig["stored_chunks"]) == (6, 6)
    assert sig["navigation_dims"] == ["y", "x"]
    assert sig["signal_dims"] == ["Energy"]
    assert sig["hyperspy"] == "(4, 6|16)"
    energy = sig["dims"][2]
    assert (energy["units"], energy["first"], energy["last"]) == ("eV", 280.0, 283.75)
    assert sig["nbytes"] == DATA.nbytes
    assert "metadata" not in sig
    with_meta = describe(url, metadata=True, storage_options=options or None)
    assert with_meta["signals"][0]["metadata"]["General"]["title"] == "EELS SI"


def test_describe_is_what_info_prints(
    local_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from intake_zspy.cli import main
    from intake_zspy.ops._plain import jsonable

    assert main(["info", str(local_store), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == jsonable(describe(local_store))


# -- the one summary ------------------------------------------------------------------


def test_source_catalogs_and_describe_share_one_summary(local_store: Path) -> None:
    from intake_zspy.format.decode import open_file
    from intake_zspy.storage import open_store

    with open_store(local_store) as store:
        summary = summarize_signal(open_file(store).hierarchy, "EELS SI")
    assert summary == {
        "signal": "EELS SI",
        "title": "EELS SI",
        "signal_type": "EELS",
        "shape": [6, 4, 16],
        "dtype": "float32",
        "chunks": [2, 2, 16],
        "axes": [
            {"dim": "y", "name": "y", "units": "nm", "navigate": True, "size": 6},
            {"dim": "x", "name": "x", "units": "nm", "navigate": True, "size": 4},
            {"dim": "Energy", "name": "Energy", "units": "eV", "navigate": False, "size": 16},
        ],
    }
    discovered = intake.open_zspy(str(local_store)).discover()["metadata"]
    assert {k: discovered[k] for k in summary} == summary
    entry = intake.open_zspy_cat(str(local_store))["EELS SI"].describe()["metadata"]
    assert {k: entry[k] for k in summary} == summary
    listed = intake.open_zspy_dir(str(local_store.parent))["si"].describe()["metadata"]
    assert listed["signals"]["EELS SI"] == {k: v for k, v in summary.items() if k != "signal"}
    described = describe(local_store)["signals"][0]
    assert [a["dim"] for a in described["dims"]] == [a["dim"] for a in summary["axes"]]


def test_summary_never_fails_on_odd_documents() -> None:
    from intake_zspy.format.hierarchy import Hierarchy

    docs = {
        "Experiments/s/data/.zarray": {"shape": ["x"], "dtype": 7},
        "Experiments/s/axis-0/.zattrs": {"name": 3, "navigate": "False"},
        "Experiments/s/metadata/General/.zattrs": {"title": "_None_"},
    }
    summary = summarize_signal(Hierarchy(None, docs), "s")  # type: ignore[arg-type]
    assert summary == {
        "signal": "s",
        "title": "",
        "signal_type": "",
        "shape": [],
        "dtype": "",
        "chunks": [],
        "axes": [],
    }


# -- verify -------------------------------------------------------------------------------


def test_verify_a_sound_store(local_store: Path, publish: Publish) -> None:
    url, options = publish(local_store)
    report = verify(url, storage_options=options or None)
    assert isinstance(report, Report)
    assert report.problems == []
    assert report.warnings == []
    assert report.signals == ["EELS SI"]
    data = next(a for a in report.arrays if a.path == "Experiments/EELS SI/data")
    assert (data.expected, data.present, data.missing, data.corrupted) == (6, 6, [], {})
    assert report.chunks_read >= 6
    assert report.as_json()["corrupted_chunks"] == 0


def test_verify_names_corrupted_and_missing_chunks(local_store: Path) -> None:
    data = local_store / "Experiments" / "EELS SI" / "data"
    (data / "1" / "0" / "0").write_bytes(b"not blosc")
    (data / "2" / "1" / "0").unlink()
    report = verify(local_store)
    assert report.problems == [
        "corrupted chunk Experiments/EELS SI/data/1/0/0: 9 bytes, shorter than a blosc header"
    ]
    assert any("1 of 6 chunks missing" in w and "2/1/0" in w for w in report.warnings)


def test_verify_reports_documents_too_deep_to_parse(local_store: Path) -> None:
    attrs = local_store / "Experiments" / "EELS SI" / "metadata" / "General" / ".zattrs"
    attrs.write_text("[" * 5000 + "]" * 5000)
    report = verify(local_store)
    bad = report.bad_documents["Experiments/EELS SI/metadata/General/.zattrs"]
    assert "nested" in bad or "deep" in bad
    assert any("invalid metadata document" in p for p in report.problems)


# -- copy -----------------------------------------------------------------------------


def test_raw_copy_keeps_every_chunk_byte_for_byte(local_store: Path, tmp_path: Path) -> None:
    out = copy(local_store, tmp_path / "copy.zspy")
    assert out == str(tmp_path / "copy.zspy")
    assert _chunk_keys(Path(out)) == _chunk_keys(local_store)
    zmeta = json.loads((Path(out) / ".zmetadata").read_text())["metadata"]
    assert zmeta["Experiments/EELS SI/data/.zarray"]["chunks"] == [2, 2, 16]
    np.testing.assert_array_equal(intake_zspy.open_dataset(out)["data"].values, DATA)
    with pytest.raises(StoreExistsError, match="overwrite=True"):
        copy(local_store, out)
    assert verify(out).problems == []


def test_copy_to_a_zip_and_to_memory(local_store: Path, tmp_path: Path) -> None:
    zipped = copy(local_store, tmp_path / "si_zip.zspy", store_type="zip")
    assert zipfile.is_zipfile(zipped)
    memory = copy(zipped, "memory://ops-copy/si.zspy", overwrite=True)
    np.testing.assert_array_equal(intake_zspy.open_dataset(memory)["data"].values, DATA)
    fsspec.filesystem("memory").rm("/ops-copy", recursive=True)


def test_copy_rechunks_and_recompresses(local_store: Path, tmp_path: Path) -> None:
    out = copy(local_store, tmp_path / "re.zspy", chunks={"x": -1, "y": 3}, compressor=None)
    zarray = json.loads((Path(out) / "Experiments" / "EELS SI" / "data" / ".zarray").read_text())
    assert (zarray["chunks"], zarray["compressor"]) == ([3, 4, 16], None)
    ds = intake_zspy.open_dataset(out)
    np.testing.assert_array_equal(ds["data"].values, DATA)
    assert ds.attrs["title"] == "EELS SI"
    zstd = copy(local_store, tmp_path / "zstd.zspy", compressor=numcodecs.Zstd(level=3))
    zarray = json.loads((Path(zstd) / "Experiments" / "EELS SI" / "data" / ".zarray").read_text())
    assert zarray["compressor"] == {"id": "zstd", "level": 3, "checksum": False}
    assert zarray["chunks"] == [2, 2, 16]  # chunks kept


def test_copy_auto_chunks_follow_the_writers_rule(local_store: Path, tmp_path: Path) -> None:
    budget = 3 * 16 * 4  # three spectra
    out = copy(local_store, tmp_path / "auto.zspy", chunks=ChunkRule(auto_bytes=budget))
    zarray = json.loads((Path(out) / "Experiments" / "EELS SI" / "data" / ".zarray").read_text())
    assert tuple(zarray["chunks"]) == layout.default_chunks(
        (6, 4, 16), 4, [True, True, False], budget
    )
    assert math.prod(zarray["chunks"]) * 4 <= budget


def test_copy_refuses_chunks_that_do_not_fit(local_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"names dims \['nope'\]"):
        copy(local_store, tmp_path / "a.zspy", chunks={"nope": 2})
    with pytest.raises(ValueError, match="gives 2 sizes, but a signal has 3 dims"):
        copy(local_store, tmp_path / "b.zspy", chunks=(2, 2))
    with pytest.raises(ValueError, match="integer >= 1"):
        copy(local_store, tmp_path / "c.zspy", chunks={"x": 0})
    with pytest.raises(TypeError, match="pass None, 'auto'"):
        copy(local_store, tmp_path / "d.zspy", chunks=3)  # type: ignore[arg-type]
    assert not any((tmp_path / n).exists() for n in ("a.zspy", "b.zspy", "c.zspy", "d.zspy"))


def test_copy_leaves_an_opened_source_open(local_store: Path, tmp_path: Path) -> None:
    from intake_zspy.storage import open_store

    with open_store(local_store) as store:
        copy(store, tmp_path / "one.zspy")
        copy(store, tmp_path / "two.zspy", chunks={"y": 6})
        assert store.get(".zgroup") is not None
        plans = plan_signals(intake_zspy.format.decode.open_file(store), {"y": 6})
    assert (plans[0].stored, plans[0].target, plans[0].read) == ((2, 2, 16), (6, 2, 16), (6, 2, 16))
    assert plans[0].describe() == "chunks (2, 2, 16) -> (6, 2, 16)"


# -- the one chunk rule ---------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    shape=st.lists(st.integers(0, 300), min_size=1, max_size=4),
    itemsize=st.sampled_from([1, 2, 4, 8, 16]),
    budget=st.integers(1, 2**16),
    data=st.data(),
)
def test_default_chunks_hold_whole_signals_within_the_budget(
    shape: list[int], itemsize: int, budget: int, data: st.DataObject
) -> None:
    navigate = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    chunks = layout.default_chunks(shape, itemsize, navigate, budget)
    assert len(chunks) == len(shape)
    for n, c, nav in zip(shape, chunks, navigate, strict=True):
        assert 1 <= c <= max(n, 1)
        if not nav:
            assert c == max(n, 1)  # signal dims are never split
    nav_chunks = [c for c, nav in zip(chunks, navigate, strict=True) if nav]
    assert math.prod(chunks) * itemsize <= budget or all(c == 1 for c in nav_chunks)


def test_writer_and_copy_default_to_the_same_chunks(tmp_path: Path) -> None:
    big = xr.Dataset(
        {"data": (("y", "x", "E"), np.zeros((64, 64, 4096), dtype="f4"))},
        coords={"E": ("E", np.arange(4096.0), {"navigate": False})},
    )
    out = intake_zspy.to_zspy(big, tmp_path / "big.zspy")
    zarray = json.loads(
        (Path(out) / "Experiments" / "__unnamed__" / "data" / ".zarray").read_text()
    )
    expected = layout.default_chunks((64, 64, 4096), 4, [True, True, False])
    assert tuple(zarray["chunks"]) == expected == (64, 32, 4096)  # 32 MiB
    copied = copy(out, tmp_path / "auto.zspy", chunks="auto")
    zarray = json.loads(
        (Path(copied) / "Experiments" / "__unnamed__" / "data" / ".zarray").read_text()
    )
    assert tuple(zarray["chunks"]) == expected
