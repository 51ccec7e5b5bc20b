"""What a newcomer following the README hits: ``group=``, zip names, ``keep_attrs``, the
quickstart's background subtraction, movable catalogs, unreachable S3, the corpus path."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import fsspec
import intake
import numpy as np
import pytest
import xarray as xr
import yaml

import intake_zspy
from intake_zspy import StoreReadError, ZspyNameWarning
from intake_zspy.catalog import ZspyExperimentsCatalog, ZspyStoresCatalog
from tests.s3server import upload

ROOT = Path(__file__).resolve().parents[1]
ENERGY = 250.0 + 0.5 * np.arange(64)


def eels(title: str = "SI", scale: float = 1.0) -> xr.Dataset:
    """A small EELS spectrum image with a title, a signal type and instrument metadata."""
    data = scale * np.arange(2 * 3 * ENERGY.size, dtype="f4").reshape(2, 3, ENERGY.size)
    return xr.Dataset(
        {"data": (("y", "x", "Energy loss"), data)},
        coords={
            "y": ("y", [0.0, 0.5], {"units": "nm"}),
            "x": ("x", [0.0, 0.5, 1.0], {"units": "nm"}),
            "Energy loss": ("Energy loss", ENERGY, {"units": "eV", "navigate": False}),
        },
        attrs={
            "title": title,
            "signal_type": "EELS",
            "metadata": {"Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}},
        },
    )


@pytest.fixture
def two_signals(tmp_path: Path) -> Path:
    """A store with the signals ``first`` and ``second``."""
    tree = xr.DataTree.from_dict({"/first": eels("first"), "/second": eels("second", 2.0)})
    path = tmp_path / "two.zspy"
    intake_zspy.to_zspy(tree, path)
    return path


def zipped_metadata(path: Path) -> dict[str, Any]:
    """``General`` and ``Signal`` metadata of the one signal of the zip store ``path``."""
    with zipfile.ZipFile(path) as zf:
        general = [n for n in zf.namelist() if n.endswith("/metadata/General/.zattrs")]
        assert len(general) == 1, zf.namelist()
        signal = general[0].replace("/General/", "/Signal/")
        return {
            "General": json.loads(zf.read(general[0])),
            "Signal": json.loads(zf.read(signal)),
        }


# -- 1. group= is xarray's spelling of signal= ----------------------------------------------


def test_open_dataset_takes_group_like_xarray(two_signals: Path) -> None:
    expected = 2.0 * np.arange(2 * 3 * ENERGY.size, dtype="f4").reshape(2, 3, -1)
    for group in ("second", "Experiments/second", "/Experiments/second"):
        ds = intake_zspy.open_dataset(two_signals, group=group)
        assert ds.attrs["title"] == "second"
        np.testing.assert_array_equal(ds["data"].values, expected)
    backend = xr.open_dataset(two_signals, engine="zspy", group="second")
    np.testing.assert_array_equal(backend["data"].values, expected)
    same = intake_zspy.open_dataset(two_signals, signal="second", group="/Experiments/second")
    assert same.attrs["title"] == "second"
    assert intake_zspy.open_dataset(two_signals).attrs["title"] == "first"
    tree = intake_zspy.open_datatree(two_signals, group="second")
    assert set(tree.children) == {"second"}


def test_open_dataset_refuses_two_different_signals(two_signals: Path) -> None:
    with pytest.raises(TypeError, match=r"signal='first' and group='second' name different"):
        intake_zspy.open_dataset(two_signals, signal="first", group="second")
    with pytest.raises(TypeError, match=re.escape(str(two_signals))):
        intake_zspy.open_dataset(two_signals, signal="first", group="second")


# -- 2. zip stores are named .zspy ----------------------------------------------------------


def test_zip_store_not_named_zspy_warns(tmp_path: Path) -> None:
    ds = eels()
    target = tmp_path / "mean.zip"
    with pytest.warns(ZspyNameWarning) as caught:
        intake_zspy.to_zspy(ds, target)
    message = str(caught[0].message)
    assert message.startswith(f"{target}: HyperSpy's hs.load recognises zspy stores by the")
    assert "'mean.zip'" in message
    assert "store_type='zip'" in message
    assert caught[0].filename == __file__  # points at the caller's line
    assert zipfile.is_zipfile(target)  # written all the same
    with pytest.warns(ZspyNameWarning, match="will not load 'mean2.zip'") as caught:
        ds.zspy.to_zspy(tmp_path / "mean2.zip")
    assert caught[0].filename == __file__
    np.testing.assert_array_equal(
        intake_zspy.open_dataset(target)["data"].values, ds["data"].values
    )


@pytest.mark.usefixtures("memory_fs")
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mean.zspy", {"store_type": "zip"}),
        ("mean.ZSPY", {"store_type": "zip"}),
        ("mean.zspy", {}),
        ("zip::memory://newcomer/mean.zspy", {}),
    ],
)
def test_zspy_names_do_not_warn(tmp_path: Path, name: str, kwargs: dict[str, Any]) -> None:
    target = name if "://" in name else str(tmp_path / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZspyNameWarning)
        intake_zspy.to_zspy(eels(), target, **kwargs)
    back = intake_zspy.open_dataset(target.removeprefix("zip::"))
    assert back.attrs["title"] == "SI"
    if kwargs:
        assert zipfile.is_zipfile(target)


# -- 3. what xarray.open_zarr makes of a zspy store (the README says it) -------------------


def test_open_zarr_gives_an_empty_dataset(two_signals: Path) -> None:
    ds = xr.open_zarr(two_signals)
    assert dict(ds.sizes) == {}
    assert list(ds.data_vars) == []
    assert ds.attrs["file_format"] == "ZSpy"
    with pytest.raises(KeyError, match="_ARRAY_DIMENSIONS"):
        xr.open_zarr(two_signals, group="Experiments/first", consolidated=False)


# -- 4. keep_attrs=True keeps the title and the signal type --------------------------------


def test_mean_with_keep_attrs_writes_title_and_signal_type(tmp_path: Path) -> None:
    source = tmp_path / "si.zspy"
    intake_zspy.to_zspy(eels("Carbon SI"), source)
    ds = intake_zspy.open_dataset(source)

    mean = ds.mean("x", keep_attrs=True)
    out = tmp_path / "mean.zspy"
    intake_zspy.to_zspy(mean, out, store_type="zip")
    meta = zipped_metadata(out)
    assert meta["General"]["title"] == "Carbon SI"
    assert meta["Signal"]["signal_type"] == "EELS"
    back = intake_zspy.open_dataset(out)
    assert back["data"].dims == ("y", "Energy loss")
    np.testing.assert_allclose(back["data"].values, ds["data"].values.mean(axis=1))
    assert back.attrs["metadata"]["Acquisition_instrument"]["TEM"]["beam_energy"] == 200.0
    assert back["Energy loss"].attrs["units"] == "eV"

    plain = ds["data"].mean("x").to_dataset(name="data")  # what the README used to show
    lost = tmp_path / "lost.zspy"
    intake_zspy.to_zspy(plain, lost, store_type="zip")
    meta = zipped_metadata(lost)
    assert meta["General"]["title"] == ""
    assert meta["Signal"]["signal_type"] == ""


# -- 5. the quickstart's power-law background -----------------------------------------------


def quickstart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_power_law_background_is_fitted_per_spectrum() -> None:
    energy = 240.0 + 0.5 * np.arange(200)
    amplitude = np.array([[1.0e9, 1.2e9, 1.5e9], [2.0e9, 0.8e9, 1.1e9]])
    exponent = np.array([[3.0, 2.5, 3.5], [2.8, 3.2, 4.0]])
    edge = np.where(energy > 284.0, 40.0 * np.exp(-(energy - 284.0) / 60.0), 0.0)
    counts = amplitude[..., None] * energy ** -exponent[..., None] + edge
    ds = xr.Dataset(
        {"data": (("y", "x", "Energy loss"), counts)},
        coords={"Energy loss": ("Energy loss", energy, {"units": "eV"})},
        attrs={"title": "SI", "signal_type": "EELS"},
    )
    result, fitted_a, fitted_r = quickstart().subtract_power_law(ds, (250.0, 280.0))
    np.testing.assert_allclose(fitted_r.values, exponent, rtol=1e-9)
    np.testing.assert_allclose(fitted_a.values, amplitude, rtol=1e-7)
    assert result["data"].dims == ("y", "x", "Energy loss")
    assert float(result["Energy loss"][0]) == 280.0
    above = energy >= 280.0
    np.testing.assert_allclose(
        result["data"].values, np.broadcast_to(edge[above], (2, 3, above.sum())), atol=1e-4
    )
    assert result.attrs == ds.attrs
    assert result["Energy loss"].attrs["units"] == "eV"


def test_quickstart_runs_and_keeps_titles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = tmp_path / "example"
    assert quickstart().main([str(workdir)]) == 0
    out = capsys.readouterr().out
    found = re.search(r"fitted per spectrum on 255-280 eV: r = ([0-9.]+) \+/- ([0-9.]+)", out)
    assert found, out
    assert abs(float(found[1]) - 3.0) < 0.05
    assert float(found[2]) < 0.2
    left = re.search(r"counts left: (-?[0-9.]+) at 280-284 eV, ([0-9.]+) at 284-290 eV", out)
    assert left, out
    assert abs(float(left[1])) < 0.5  # nothing but noise below the edge
    assert 40.0 < float(left[2]) < 60.0  # the edge: 40 counts x thickness 1..1.5
    title = "Carbon K edge, power-law background subtracted"
    mean_store = workdir / "carbon_k_edge_mean.zspy"
    assert zipfile.is_zipfile(mean_store)
    meta = zipped_metadata(mean_store)
    assert meta["General"]["title"] == title
    assert meta["Signal"]["signal_type"] == "EELS"
    edge = intake_zspy.open_dataset(workdir / "carbon_k_edge.zspy")
    assert edge.attrs["title"] == title
    assert dict(edge.sizes) == {"y": 32, "x": 24, "Energy loss": 452}
    assert "background removed" not in out


# -- 6. saved catalogs can move -------------------------------------------------------------


@pytest.mark.usefixtures("memory_fs")
def test_saved_catalog_opens_after_the_folder_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "campaign"
    (folder / "sub").mkdir(parents=True)
    intake_zspy.to_zspy(eels("a"), folder / "a.zspy")
    intake_zspy.to_zspy(eels("b", 3.0), folder / "sub" / "b.zspy", store_type="zip")
    ZspyStoresCatalog(str(folder)).save(str(folder / "stores.yml"))
    outside = tmp_path / "elsewhere" / "c.zspy"
    intake_zspy.to_zspy(eels("c"), outside)
    ZspyExperimentsCatalog(str(outside)).save(str(folder / "outside.yml"))
    monkeypatch.chdir(folder)
    ZspyExperimentsCatalog("a.zspy").save("relative.yml")  # relative to the working dir
    intake_zspy.to_zspy(eels("m"), "memory://newcomer-cat/m.zspy")
    ZspyExperimentsCatalog("memory://newcomer-cat/m.zspy").save(str(folder / "memory.yml"))

    def urlpaths(name: str, root: Path = folder) -> dict[str, str]:
        doc = yaml.safe_load((root / name).read_text())
        return {k: v["args"]["urlpath"] for k, v in doc["sources"].items()}

    assert urlpaths("stores.yml") == {
        "a": "{{ CATALOG_DIR }}/a.zspy",
        "sub/b": "{{ CATALOG_DIR }}/sub/b.zspy",
    }
    assert urlpaths("outside.yml") == {"c": str(outside)}
    assert urlpaths("relative.yml") == {"a": "{{ CATALOG_DIR }}/a.zspy"}
    assert urlpaths("memory.yml") == {"m": "memory://newcomer-cat/m.zspy"}

    monkeypatch.chdir(tmp_path)
    moved = tmp_path / "moved" / "campaign-2026"
    moved.parent.mkdir()
    shutil.move(folder, moved)
    copied = tmp_path / "copy"
    shutil.copytree(moved, copied)
    shutil.rmtree(moved)
    cat = intake.open_catalog(str(copied / "stores.yml"))
    assert sorted(cat) == ["a", "sub/b"]
    np.testing.assert_array_equal(cat["a"].read()["data"].values, eels()["data"].values)
    np.testing.assert_array_equal(
        cat["sub/b"].read()["data"].values, eels(scale=3.0)["data"].values
    )
    assert intake.open_catalog(str(copied / "relative.yml"))["a"].read().attrs["title"] == "a"
    assert intake.open_catalog(str(copied / "outside.yml"))["c"].read().attrs["title"] == "c"


# -- 7. S3 without a reachable endpoint or credentials --------------------------------------


@pytest.fixture
def closed_port() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No credentials anywhere botocore looks, one attempt per request, fresh s3fs clients."""
    s3fs = pytest.importorskip("s3fs")
    for name in list(os.environ):
        if name.startswith(("AWS_", "FSSPEC_S3")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.delitem(fsspec.config.conf, "s3", raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.usefixtures("no_aws_setup")
@pytest.mark.parametrize("credentials", [True, False], ids=["refused", "no-credentials"])
@pytest.mark.parametrize("how", ["open_dataset", "zspy_dir"])
def test_unreachable_s3_raises_store_read_error(
    closed_port: str, credentials: bool, how: str
) -> None:
    url = "s3://lab-data/2026/si_042.zspy"
    options: dict[str, Any] = {"endpoint_url": closed_port}
    if credentials:
        options.update(key="nobody", secret="nobody")
    opening = {
        "open_dataset": lambda: intake_zspy.open_dataset(url, storage_options=options),
        "zspy_dir": lambda: list(ZspyStoresCatalog("s3://lab-data/2026/", storage_options=options)),
    }[how]
    start = time.monotonic()
    with pytest.raises(StoreReadError) as caught:
        opening()
    assert time.monotonic() - start < 20
    message = str(caught.value)
    assert message.startswith(url if how == "open_dataset" else "s3://lab-data/2026/: ")
    assert message.endswith("(check the endpoint_url and the credentials in storage_options)")
    expected = closed_port if credentials else "Unable to locate credentials"
    assert expected in message
    assert type(caught.value.__cause__).__module__ == "botocore.exceptions"


def readme_catalog() -> str:
    """The catalog YAML of the README's "Catalogs (intake)" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Catalogs (intake)", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_readme_catalog_entries_all_name_their_s3_endpoint() -> None:
    sources = yaml.safe_load(readme_catalog())["sources"]
    s3 = {k: v for k, v in sources.items() if v["args"]["urlpath"].startswith("s3://")}
    assert set(s3) == {"run", "everything"}
    for entry in s3.values():
        endpoint = entry["args"]["storage_options"]["client_kwargs"]["endpoint_url"]
        assert endpoint == "{{ env(S3_ENDPOINT) }}"


@pytest.mark.s3
def test_readme_catalog_reads_from_s3(
    tmp_path: Path,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "data").mkdir()
    intake_zspy.to_zspy(eels("local"), tmp_path / "data" / "eels.zspy")
    intake_zspy.to_zspy(eels("run 2", 2.0), tmp_path / "run2.zspy")
    intake_zspy.to_zspy(eels("si 42", 4.0), tmp_path / "si_042.zspy")
    upload(tmp_path / "run2.zspy", f"s3://{s3_bucket}/run2.zspy", s3_storage_options)
    upload(tmp_path / "si_042.zspy", f"s3://{s3_bucket}/2026/si_042.zspy", s3_storage_options)
    catalog = tmp_path / "catalog.yml"
    catalog.write_text(readme_catalog().replace("s3://lab-data/", f"s3://{s3_bucket}/"))
    monkeypatch.setenv("S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "readme")  # the reader's own, from the environment
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "readme")
    monkeypatch.delitem(fsspec.config.conf, "s3", raising=False)

    cat = intake.open_catalog(str(catalog))
    assert cat.eels.read().attrs["title"] == "local"
    run = cat.run(run=2).read()
    np.testing.assert_array_equal(run["data"].values, eels(scale=2.0)["data"].values)
    everything = cat.everything
    assert list(everything) == ["si_042"]
    assert list(everything.search("EELS")) == ["si_042"]
    assert everything["si_042"].read().attrs["title"] == "si 42"


# -- 8. the corpus folder from the environment ----------------------------------------------


def test_corpus_folder_from_the_environment(tmp_path: Path) -> None:
    corpus = tmp_path / "my corpus"
    intake_zspy.to_zspy(eels(), corpus / "mine.zspy")
    env = {**os.environ, "INTAKE_ZSPY_CORPUS": str(corpus)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/test_60_hyperspy_reference.py", "-k", "public_corpus"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "public_corpus" in line]
    assert collected == [
        "tests/test_60_hyperspy_reference.py::test_public_corpus_matches_rosettasciio[mine.zspy]"
    ]
