"""Every accepted form of ``urlpath`` opens the same store."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import zarr

import intake_zspy
from intake_zspy.storage import KeyValueStore, open_store
from tests.builders import encode_store, signal_dict, write_dir
from tests.conftest import zip_directory

DATA = np.arange(12, dtype="<i4").reshape(3, 4)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return write_dir(encode_store({"sig": signal_dict(DATA, title="sig")}), tmp_path / "s.zspy")


@pytest.fixture
def store_zip(store_dir: Path, tmp_path: Path) -> Path:
    return zip_directory(store_dir, tmp_path / "z.zspy")


def check(urlpath: Any, **kwargs: Any) -> None:
    ds = intake_zspy.open_dataset(urlpath, **kwargs)
    np.testing.assert_array_equal(ds["data"].values, DATA)
    assert ds.attrs["title"] == "sig"


def test_local_forms(store_dir: Path) -> None:
    check(store_dir)
    check(str(store_dir))
    check(f"{store_dir}/")
    check(f"file://{store_dir}")
    check(fsspec.get_mapper(str(store_dir)))


def test_zip_forms(store_zip: Path) -> None:
    check(store_zip)  # detected from its first bytes, whatever the name
    check(f"zip::file://{store_zip}")
    check(zarr.storage.ZipStore(store_zip, mode="r"))


def test_memory_url(store_dir: Path, memory_fs: fsspec.AbstractFileSystem) -> None:
    for path in store_dir.rglob("*"):
        if path.is_file():
            memory_fs.pipe_file(
                f"/m.zspy/{path.relative_to(store_dir).as_posix()}", path.read_bytes()
            )
    check("memory://m.zspy")


def test_zarr_stores(store_dir: Path) -> None:
    check(zarr.storage.LocalStore(store_dir, read_only=True))
    memory = zarr.storage.MemoryStore(
        {k.relative_to(store_dir).as_posix(): zarr.core.buffer.cpu.Buffer.from_bytes(k.read_bytes())
         for k in store_dir.rglob("*") if k.is_file()}
    )  # fmt: skip
    check(memory)
    logging = zarr.storage.LoggingStore(zarr.storage.LocalStore(store_dir, read_only=True))
    check(logging)
    assert logging.counter["get"] > 0


def test_storage_options_with_an_opened_store_is_a_type_error(store_dir: Path) -> None:
    with pytest.raises(TypeError, match="storage_options"):
        open_store(fsspec.get_mapper(str(store_dir)), {"anon": True})
    with pytest.raises(TypeError, match="urlpath must be"):
        open_store(42)


def test_zip_with_repeated_members_uses_the_last(store_dir: Path, tmp_path: Path) -> None:
    """zarr 2 rewrites attributes by appending a member of the same name."""
    path = zip_directory(store_dir, tmp_path / "dup.zspy")
    key = "Experiments/sig/metadata/General/.zattrs"
    with zipfile.ZipFile(path, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr(key, json.dumps({"title": "rewritten"}))
    ds = intake_zspy.open_dataset(path, consolidated=False)
    assert ds.attrs["title"] == "rewritten"


def test_simplecache_over_a_local_zip(store_zip: Path) -> None:
    check(f"zip::simplecache::file://{store_zip}")


@pytest.mark.s3
def test_s3_forms(
    store_dir: Path, store_zip: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    from tests.s3server import upload

    opts = dict(s3_storage_options)
    upload(store_dir, f"s3://{s3_bucket}/dir.zspy", opts)
    upload(store_zip, f"s3://{s3_bucket}/zipped.zspy", opts)
    check(f"s3://{s3_bucket}/dir.zspy", storage_options=opts)
    check(f"s3://{s3_bucket}/dir.zspy/", storage_options=opts)
    check(f"s3://{s3_bucket}/zipped.zspy", storage_options=opts)  # a zip object, detected
    check(f"zip::s3://{s3_bucket}/zipped.zspy", storage_options={"s3": opts})
    check(f"simplecache::s3://{s3_bucket}/zipped.zspy", storage_options={"s3": opts})
    fs = fsspec.filesystem("s3", **opts)
    check(fs.get_mapper(f"{s3_bucket}/dir.zspy"))
    with pytest.raises(FileNotFoundError, match="no such object"):
        intake_zspy.open_dataset(f"s3://{s3_bucket}/missing.zspy", storage_options=opts)


def test_store_is_picklable(store_dir: Path, store_zip: Path) -> None:
    import pickle

    for url in (store_dir, store_zip):
        store = open_store(url)
        clone = pickle.loads(pickle.dumps(store))
        assert type(clone) is type(store)
        assert isinstance(clone, KeyValueStore)
        assert clone.get(".zgroup") == store.get(".zgroup")
    ds = intake_zspy.open_dataset(store_zip, chunks={})
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ds))["data"].values, DATA)
