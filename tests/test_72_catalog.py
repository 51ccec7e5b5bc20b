"""intake v1 catalogs: the signals of one store, the stores under a folder or prefix."""

from __future__ import annotations

import shutil
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import fsspec
import intake
import numpy as np
import pytest
import xarray as xr
import yaml
import zarr
from fsspec.implementations.memory import MemoryFileSystem

from intake_zspy import ZspyFormatError
from intake_zspy.catalog import ZspyExperimentsCatalog, ZspyStoresCatalog
from intake_zspy.source import ZspySource
from tests.builders import encode_store, signal_dict, uniform_axis, write_dir
from tests.conftest import zip_directory
from tests.hostile import base_items, place
from tests.s3server import upload
from tests.test_70_source import SI, chunked_items, si_signal

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "catalog.yml"
EDS = np.arange(3 * 5, dtype="<u2").reshape(3, 5)


def eds_signal(title: str = "EDS map") -> dict[str, Any]:
    axes = [uniform_axis(3, "x", "um"), uniform_axis(5, "Energy", "keV", navigate=False)]
    return signal_dict(EDS, axes, title=title, signal_type="EDS_TEM")


def write_eds(path: Path, **kwargs: Any) -> Path:
    return write_dir(encode_store({"EDS map": eds_signal(**kwargs)}, consolidated=False), path)


def write_folder(root: Path) -> Path:
    """A folder of stores of every kind, a non-zspy zarr group, a text file and two bad stores.

    ======================  =============================================
    si.zspy/                directory store, consolidated (EELS)
    sub/eds.zspy/           directory store without .zmetadata (EDS_TEM)
    both.zspy               zip store with two signals (EELS + EDS_TEM)
    other.zarr/             plain zarr v2 group: not listed
    notes.txt               ignored
    broken.zspy/            a zarr group without zspy root attributes
    corrupt.zspy            a file that is no zip archive
    ======================  =============================================
    """
    root.mkdir(parents=True, exist_ok=True)
    chunks = (2, 2, 8)
    write_dir(chunked_items({"SI - EELS": (si_signal(), chunks)}), root / "si.zspy")
    write_eds(root / "sub" / "eds.zspy")
    both = chunked_items({"SI - EELS": (si_signal(), chunks), "EDS map": (eds_signal(), (3, 5))})
    zip_directory(write_dir(both, root.parent / "both-src"), root / "both.zspy")
    shutil.rmtree(root.parent / "both-src")
    zarr.open_group(root / "other.zarr", mode="w", zarr_format=2).create_array(
        "x", shape=(2,), dtype="i1"
    )
    (root / "notes.txt").write_text("not a store")
    write_dir(encode_store({}, root_attrs={"creator": "someone"}), root / "broken.zspy")
    (root / "corrupt.zspy").write_bytes(b"PK\x03\x04" + bytes(100))  # a truncated zip
    return root


def place_folder(
    kind: str, local: Path, request: pytest.FixtureRequest
) -> tuple[str, dict[str, Any]]:
    """Copy ``local`` to a folder, a memory-filesystem folder or an S3 prefix."""
    if kind == "directory":
        return str(local), {}
    if kind == "memory":
        fs = request.getfixturevalue("memory_fs")
        for path in local.rglob("*"):
            if path.is_file():
                fs.pipe_file(f"/data/{path.relative_to(local).as_posix()}", path.read_bytes())
        return "memory://data", {}
    bucket = request.getfixturevalue("s3_bucket")
    options = dict(request.getfixturevalue("s3_storage_options"))
    upload(local, f"s3://{bucket}/data", options)
    return f"s3://{bucket}/data", options


@pytest.fixture(params=["directory", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    return place_folder(request.param, write_folder(tmp_path / "data"), request)


def test_drivers_are_registered() -> None:
    assert intake.registry["zspy_cat"] is ZspyExperimentsCatalog
    assert intake.registry["zspy_dir"] is ZspyStoresCatalog


# -- one store --------------------------------------------------------------------------


def test_experiments_catalog(tmp_path: Path, publish: Any) -> None:
    items = chunked_items(
        {"SI - EELS": (si_signal(), (2, 2, 8)), "EDS map": (eds_signal(), (3, 5))}
    )
    url, options = publish(write_dir(items, tmp_path / "two.zspy"))
    cat = intake.open_zspy_cat(url, storage_options=options)
    assert sorted(cat) == ["EDS map", "SI - EELS"]
    assert cat.metadata["zspy_format_version"] == "3.3"
    described = cat["SI - EELS"].describe()
    assert described["description"] == "SI / EELS (EELS), float32 6x4x8"
    assert described["metadata"]["axes"][2] == {
        "dim": "E",
        "name": "E",
        "units": "eV",
        "navigate": False,
        "size": 8,
    }
    source = cat["SI - EELS"]
    assert isinstance(source, ZspySource)
    assert source.npartitions == 6
    np.testing.assert_array_equal(source.read()["data"].values, SI)
    np.testing.assert_array_equal(cat["EDS map"].read()["data"].values, EDS)
    assert list(cat.search("EDS_TEM")) == ["EDS map"]


def test_experiments_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.zspy"):
        ZspyExperimentsCatalog(str(tmp_path / "missing.zspy"))
    (tmp_path / "text.zspy").write_text("x")
    with pytest.raises(ZspyFormatError, match="not a zspy store"):
        ZspyExperimentsCatalog(str(tmp_path / "text.zspy"))
    with pytest.raises(TypeError, match="storage_options must be a dict"):
        ZspyExperimentsCatalog(str(tmp_path), storage_options="anon")


# -- stores under a folder --------------------------------------------------------------


def test_stores_catalog(folder: tuple[str, dict[str, Any]]) -> None:
    url, options = folder
    cat = intake.open_zspy_dir(url, storage_options=options)
    assert sorted(cat) == ["both", "broken", "corrupt", "si", "sub/eds"]
    si = cat.si.describe()
    assert si["description"] == "SI / EELS (EELS), float32 6x4x8"
    kind = "directory" if "://" not in url else "prefix"  # one key prefix on memory:// or S3
    assert (si["metadata"]["store_kind"], si["metadata"]["signal_type"]) == (kind, "EELS")
    assert si["metadata"]["signals"]["SI - EELS"]["axes"][0]["units"] == "nm"
    np.testing.assert_array_equal(cat.si.read()["data"].values, SI)
    eds = cat["sub/eds"]
    assert eds.describe()["description"] == "EDS map (EDS_TEM), uint16 3x5"
    np.testing.assert_array_equal(eds.read()["data"].values, EDS)
    both = cat.both.describe()
    assert both["metadata"]["store_kind"] == "zip"
    assert sorted(both["metadata"]["signals"]) == ["EDS map", "SI - EELS"]
    assert both["description"] == ("EDS map (EDS_TEM), uint16 3x5; SI / EELS (EELS), float32 6x4x8")
    np.testing.assert_array_equal(cat.both(signal="SI - EELS").read()["data"].values, SI)
    assert cat.both.read()["data"].dtype == np.uint16  # the first signal by default


def test_search_by_metadata(folder: tuple[str, dict[str, Any]]) -> None:
    url, options = folder
    cat = ZspyStoresCatalog(url, storage_options=options)
    assert sorted(cat.search("EELS")) == ["both", "si"]
    assert sorted(cat.search("EDS_TEM")) == ["both", "sub/eds"]
    assert sorted(cat.search("unreadable")) == ["broken", "corrupt"]


def test_unreadable_stores_are_listed_with_their_error(folder: tuple[str, dict[str, Any]]) -> None:
    url, options = folder
    cat = ZspyStoresCatalog(url, storage_options=options)
    broken = cat.broken.describe()
    assert broken["description"].startswith("unreadable zspy store: ZspyFormatError: ")
    assert "no file_format='ZSpy' attribute" in broken["metadata"]["error"]
    assert broken["metadata"]["error_type"] == "ZspyFormatError"
    with pytest.raises(ZspyFormatError, match="no file_format='ZSpy' attribute"):
        cat.broken.read()
    corrupt = cat.corrupt.describe()["metadata"]
    assert corrupt["error_type"] == "DamagedStoreError"
    assert "zip" in corrupt["error"]
    with pytest.raises(ZspyFormatError):
        cat.corrupt.read()


def test_glob_selects_stores(folder: tuple[str, dict[str, Any]]) -> None:
    url, options = folder
    cat = ZspyStoresCatalog(f"{url}/*.zspy", storage_options=options)
    assert sorted(cat) == ["both", "broken", "corrupt", "si"]
    deep = ZspyStoresCatalog(f"{url}/**/eds.zspy", storage_options=options)
    assert list(deep) == ["sub/eds"]


def test_one_listing_and_one_bulk_fetch(
    tmp_path: Path, memory_fs: fsspec.AbstractFileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "many"
    for i in range(6):
        if i % 2:
            write_eds(local / f"eds{i}.zspy", title=f"EDS {i}")
        else:
            write_dir(chunked_items({"SI - EELS": (si_signal(), (2, 2, 8))}), local / f"si{i}.zspy")
    for path in local.rglob("*"):
        if path.is_file():
            memory_fs.pipe_file(f"/many/{path.relative_to(local).as_posix()}", path.read_bytes())
    calls: dict[str, int] = {"find": 0, "cat_ranges": 0, "cat_file": 0, "ls": 0}
    for name in calls:
        original = getattr(MemoryFileSystem, name)

        def spy(self: Any, *args: Any, _name: str = name, _orig: Any = original, **kw: Any) -> Any:
            calls[_name] += 1
            return _orig(self, *args, **kw)

        monkeypatch.setattr(MemoryFileSystem, name, spy)
    cat = ZspyStoresCatalog("memory://many")
    assert len(cat) == 6
    assert cat["eds3"].describe()["description"] == "EDS 3 (EDS_TEM), uint16 3x5"
    assert (calls["find"], calls["cat_ranges"]) == (1, 1)
    # fsspec's generic cat_ranges() fetches files one by one (memory is not async)
    # .zmetadata of the 3 consolidated stores, 10 summary documents of each other store
    assert calls["cat_file"] == 3 + 3 * 10
    assert calls["ls"] == 0


def test_local_listing_matches_fsspec(tmp_path: Path) -> None:
    """The catalog's own walk of a local folder lists what fsspec's ``find`` lists (sizes
    and modification times); links to folders are not walked, broken links skipped."""
    from intake_zspy.catalog._listing import _token, _walk_local

    root = write_folder(tmp_path / "data")
    (root / "linked.txt").symlink_to(root / "notes.txt")
    fs = fsspec.filesystem("file")
    found = fs.find(str(root), detail=True, withdirs=False)
    files, tokens = _walk_local(str(root))
    assert files == {p: i["size"] for p, i in found.items()}
    link = f"{root}/linked.txt"
    assert {p: t for p, t in tokens.items() if p != link} == {
        p: _token(i) for p, i in found.items() if p != link
    }
    # a linked file: its target's size (as fsspec) and modification time (fsspec: the link's)
    assert (files[link], tokens[link]) == (
        len("not a store"),
        str((root / "notes.txt").stat().st_mtime),
    )
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)  # a cycle
    (root / "dangling").symlink_to(root / "nowhere")
    assert _walk_local(str(root)) == (files, tokens)
    one = root / "both.zspy"
    size, mtime = one.stat().st_size, str(one.stat().st_mtime)
    assert _walk_local(str(one)) == ({str(one): size}, {str(one): mtime})
    assert _walk_local(str(root / "missing")) == ({}, {})
    assert sorted(ZspyStoresCatalog(str(root))) == ["both", "broken", "corrupt", "si", "sub/eds"]


def test_reload_picks_up_new_stores(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_eds(root / "run1.zspy")
    cat = ZspyStoresCatalog(str(root), ttl=None)
    assert list(cat) == ["run1"]
    write_eds(root / "run2.zspy", title="second")
    cat.reload()  # ttl=None: never relists by itself
    assert list(cat) == ["run1"]
    cat.force_reload()
    assert sorted(cat) == ["run1", "run2"]
    assert cat.run2.read().attrs["title"] == "second"
    timed = ZspyStoresCatalog(str(root), ttl=0)
    write_eds(root / "run3.zspy")
    timed.updated -= 1
    assert sorted(timed) == ["run1", "run2", "run3"]  # any access after ttl relists


def test_empty_prefix(tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: nothing found there"):
        ZspyStoresCatalog(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=rf"s3://{s3_bucket}/runs: nothing found there"):
        ZspyStoresCatalog(f"s3://{s3_bucket}/runs", storage_options=s3_storage_options)


def test_folder_without_stores_is_an_empty_catalog(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert len(ZspyStoresCatalog(str(tmp_path))) == 0


def test_wrong_catalog_args(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="urlpath must be a non-empty path"):
        ZspyStoresCatalog(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="chunks must be None"):
        ZspyStoresCatalog(str(tmp_path), chunks=[2])  # type: ignore[arg-type]


# -- export and YAML --------------------------------------------------------------------


def test_export_as_yaml(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "data")
    cat = ZspyStoresCatalog(str(root), chunks={"x": 3})
    cat.save(str(tmp_path / "stores.yml"))
    reopened = intake.open_catalog(str(tmp_path / "stores.yml"))
    assert sorted(reopened) == sorted(cat)
    si = reopened.si
    assert isinstance(si, ZspySource)
    assert si.describe()["description"] == "SI / EELS (EELS), float32 6x4x8"
    assert si.npartitions == 4
    np.testing.assert_array_equal(si.read()["data"].values, SI)
    with pytest.raises(ZspyFormatError):
        reopened.corrupt.read()
    signals = ZspyExperimentsCatalog(str(root / "both.zspy"))
    signals.save(str(tmp_path / "signals.yml"))
    both = intake.open_catalog(str(tmp_path / "signals.yml"))
    np.testing.assert_array_equal(both["EDS map"].read()["data"].values, EDS)


def test_catalog_drivers_in_a_yaml_file(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "data")
    (tmp_path / "cat.yml").write_text(
        textwrap.dedent(
            """
            sources:
              everything:
                driver: zspy_dir
                args: {urlpath: "{{ CATALOG_DIR }}/data"}
              pair:
                driver: zspy_cat
                args: {urlpath: "{{ CATALOG_DIR }}/data/both.zspy"}
            """
        )
    )
    cat = intake.open_catalog(str(tmp_path / "cat.yml"))
    assert sorted(cat.everything) == ["both", "broken", "corrupt", "si", "sub/eds"]
    assert sorted(cat.pair) == ["EDS map", "SI - EELS"]
    xr.testing.assert_identical(cat.pair["SI - EELS"].read(), cat.everything.si.read())
    assert root.is_dir()


def test_example_catalog(
    tmp_path: Path,
    s3_bucket: str,
    s3_endpoint: str,
    s3_storage_options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/catalog.yml: local, zip, templated and S3 entries all read."""
    data = tmp_path / "data"
    eels = write_dir(chunked_items({"SI - EELS": (si_signal(), (2, 2, 8))}), data / "eels.zspy")
    zip_directory(eels, data / "eels-zip.zspy")
    write_eds(data / "run1.zspy", title="run 1")
    write_eds(data / "run2.zspy", title="run 2")
    shutil.copy(EXAMPLE, tmp_path / "catalog.yml")
    upload(eels, f"s3://{s3_bucket}/eels.zspy", s3_storage_options)
    upload(data / "eels-zip.zspy", f"s3://{s3_bucket}/eels-zip.zspy", s3_storage_options)
    for name, value in {
        "S3_ENDPOINT": s3_endpoint,
        "ZSPY_BUCKET": s3_bucket,
        "AWS_ACCESS_KEY_ID": s3_storage_options["key"],
        "AWS_SECRET_ACCESS_KEY": s3_storage_options["secret"],
    }.items():
        monkeypatch.setenv(name, value)
    cat = intake.open_catalog(str(tmp_path / "catalog.yml"))
    expected = cat.eels_local.read()
    np.testing.assert_array_equal(expected["data"].values, SI)
    zipped = cat.eels_zip
    assert zipped.npartitions == 6
    xr.testing.assert_identical(zipped.to_dask().compute(), expected)
    assert cat.run.read().attrs["title"] == "run 1"
    assert cat.run(run=2).read().attrs["title"] == "run 2"
    assert list(cat.eels_signals) == ["SI - EELS"]
    assert sorted(cat.local_folder) == ["eels", "eels-zip", "run1", "run2"]
    xr.testing.assert_identical(cat.eels_s3.read(), expected)
    xr.testing.assert_identical(cat.eels_s3_zip.read(), expected)
    assert sorted(cat.s3_folder) == ["eels", "eels-zip"]
    assert sorted(cat.s3_folder.search("EELS")) == ["eels", "eels-zip"]


def test_zip_with_duplicate_members_is_summarised_from_the_last(tmp_path: Path) -> None:
    """zarr 2 may rewrite a zip member; the catalog describes the store as the reader does."""
    src = write_eds(tmp_path / "src.zspy", title="old title")
    (tmp_path / "data").mkdir()
    path = zip_directory(src, tmp_path / "data" / "dup.zspy")
    newer = write_eds(tmp_path / "newer.zspy", title="new title")
    key = "Experiments/EDS map/metadata/General/.zattrs"
    with zipfile.ZipFile(path, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr(key, (newer / key).read_bytes())
    cat = ZspyStoresCatalog(str(tmp_path / "data"))
    assert cat.dup.describe()["metadata"]["title"] == "new title"
    assert cat.dup.read().attrs["title"] == "new title"


# -- credentials stay out of saved catalogs ---------------------------------------------

SECRETS = ("AKIAEXAMPLE7Q2Z", "s3cr3t-Vq9", "tok-5d1e", "x2-hidden-77")
ENDPOINT = "http://127.0.0.1:1"


def _credential_options() -> dict[str, Any]:
    key, secret, token, nested = SECRETS
    return {
        "key": key,
        "secret": secret,
        "token": token,
        "client_kwargs": {"endpoint_url": ENDPOINT, "aws_secret_access_key": nested},
    }


def _catalogs(tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "folder"
    folder.mkdir()
    store = place(base_items(), folder / "one.zspy")
    return {
        "stores": ZspyStoresCatalog(str(folder), storage_options=_credential_options()),
        "experiments": ZspyExperimentsCatalog(store, storage_options=_credential_options()),
    }


@pytest.mark.parametrize("kind", ["stores", "experiments"])
def test_saved_catalog_leaves_credentials_out(tmp_path: Path, kind: str) -> None:
    cat = _catalogs(tmp_path)[kind]
    assert list(cat)  # loads (local files ignore the S3 options)
    path = tmp_path / "cat.yml"
    cat.save(str(path))
    text = path.read_text()
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} written to the catalog"
    assert ENDPOINT in text
    doc = yaml.safe_load(text)
    for entry in doc["sources"].values():
        options = entry["args"]["storage_options"]
        assert options["client_kwargs"] == {"endpoint_url": ENDPOINT}
        assert not {"key", "secret", "token"} & set(options)


@pytest.mark.parametrize("kind", ["stores", "experiments"])
def test_saved_catalog_keeps_credentials_on_request(tmp_path: Path, kind: str) -> None:
    cat = _catalogs(tmp_path)[kind]
    path = tmp_path / "cat.yml"
    cat.save(str(path), include_credentials=True)
    text = path.read_text()
    for secret in SECRETS:
        assert secret in text
    entry = next(iter(yaml.safe_load(text)["sources"].values()))
    assert entry["args"]["storage_options"] == _credential_options()
