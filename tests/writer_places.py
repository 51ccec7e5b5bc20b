"""Targets of every kind for the writer's safety tests, and what is there around them.

A pytest plugin (listed in ``tests/conftest.py``): the fixtures ``make_place`` (a
:class:`Place` of a kind: local directory, local zip, memory, S3 prefix, S3 zip),
``module_bucket`` (one S3 bucket per test module) and ``put_spy`` (every key any store is
asked to write), the signals ``OLD`` and ``NEW`` and the checks on what a store holds.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from intake_zspy.storage import DirectoryStore, FsspecStore, KeyValueStore

S3 = pytest.mark.s3
KINDS = [
    "directory",
    "zip",
    "memory",
    pytest.param("s3", marks=S3),
    pytest.param("s3zip", marks=S3),
]


# -- data ------------------------------------------------------------------------------


def make_signal(name: str, shape: tuple[int, ...], start: float) -> xr.DataArray:
    """A 3-D spectrum image whose values start at ``start`` (distinct per signal)."""
    values = (np.arange(np.prod(shape), dtype="f4") + np.float32(start)).reshape(shape)
    return xr.DataArray(
        values,
        dims=("t", "y", "energy"),
        coords={
            "t": ("t", np.arange(shape[0]) * 0.5, {"units": "s"}),
            "energy": ("energy", 100.0 + 2.0 * np.arange(shape[2]), {"units": "eV"}),
        },
        name=name,
    )


OLD = make_signal("old", (6, 4, 16), 1000.0)
NEW = make_signal("new", (3, 4, 8), -50.0)


class ChunkCounter:
    """How many data chunks the ``put_spy`` fixture has seen written (and wait for more)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count = 0

    def reset(self) -> None:
        with self.cond:
            self.count = 0

    def add(self, n: int) -> None:
        with self.cond:
            self.count += n
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.count >= n, timeout=timeout)


WRITTEN = ChunkCounter()


# -- where to write, and what is there ---------------------------------------------------


@dataclass
class Place:
    """A target of one kind, and a view of everything in its surroundings."""

    kind: str
    url: str
    options: dict[str, Any]
    store_type: str | None
    read_url: str
    fs: fsspec.AbstractFileSystem
    area: str

    def write(self, obj: Any, **kwargs: Any) -> str:
        return intake_zspy.to_zspy(
            obj, self.url, storage_options=self.options, store_type=self.store_type, **kwargs
        )

    def open(self) -> xr.DataTree:
        return intake_zspy.open_datatree(self.read_url, storage_options=self.options)

    def snapshot(self) -> dict[str, Any]:
        """Every file (with its bytes) and directory of the area around the target."""
        if self.kind in ("directory", "zip"):
            out: dict[str, Any] = {}
            for parent, dirs, files in os.walk(self.area):
                rel = Path(parent).relative_to(self.area)
                for d in dirs:
                    out[(rel / d).as_posix()] = "<dir>"
                for name in files:
                    full = Path(parent, name)
                    out[(rel / name).as_posix()] = (full.read_bytes(), full.stat().st_mtime_ns)
            return out
        if self.kind == "memory":
            store = self.fs.store
            files = {k: store[k].getvalue() for k in store if k.startswith(self.area)}
            dirs = {d: "<dir>" for d in self.fs.pseudo_dirs if d.startswith(self.area)}
            return {**files, **dirs}
        self.fs.invalidate_cache()
        keys = self.fs.find(self.area, withdirs=False)
        return self.fs.cat(keys) if keys else {}


def area_names(place: Place) -> set[str]:
    prefix = place.area.rstrip("/") + "/"
    found = set()
    for key in place.snapshot():
        key = str(key)
        found.add(key.removeprefix(prefix).split("/")[0])
    return found


@pytest.fixture(scope="module")
def module_bucket(s3_storage_options: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """One bucket for this module's S3 tests (each test writes under its own prefix).

    A bucket (and a new s3fs client) per test would cost about a second each; the
    filesystem yielded is the cached instance ``to_zspy`` itself uses, listings uncached.
    """
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = fsspec.filesystem("s3", **s3_storage_options)
    bucket = f"writer-safety-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    try:
        yield bucket, fs
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        cleanup = fsspec.filesystem("s3", skip_instance_cache=True, **s3_storage_options)
        cleanup.rm(bucket, recursive=True)


@pytest.fixture
def make_place(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Place]:
    def make(kind: str) -> Place:
        if kind in ("directory", "zip"):
            area = tmp_path / f"area-{kind}"
            area.mkdir()
            url = str(area / "run.zspy")
            return Place(
                kind,
                url,
                {},
                "zip" if kind == "zip" else None,
                url,
                fsspec.filesystem("file"),
                str(area),
            )
        if kind == "memory":
            fs = request.getfixturevalue("memory_fs")
            url = "memory://area/run.zspy"
            return Place(kind, url, {}, None, url, fs, "/area")
        bucket, fs = request.getfixturevalue("module_bucket")
        options = dict(request.getfixturevalue("s3_storage_options"))
        area = f"{bucket}/{uuid.uuid4().hex[:8]}"
        plain = f"s3://{area}/run.zspy"
        if kind == "s3":
            return Place(kind, plain, options, None, plain, fs, area)
        # zip:: URL on write; the reader recognises the zip object by its bytes
        return Place(kind, f"zip::{plain}", options, None, plain, fs, area)

    return make


def assert_holds(place: Place, expected: xr.DataArray) -> None:
    """The store at ``place`` holds exactly the signal ``expected``, values and axes."""
    assert_url_holds(place.read_url, place.options, expected)


def assert_url_holds(url: str, options: dict[str, Any], expected: xr.DataArray) -> None:
    tree = intake_zspy.open_datatree(url, storage_options=options)
    signals = {name: node.to_dataset() for name, node in tree.children.items()}
    assert list(signals) == [expected.name]
    ds = signals[str(expected.name)]
    assert ds.attrs["title"] == expected.name
    assert ds["data"].dims == expected.dims
    assert ds["data"].dtype == expected.dtype
    np.testing.assert_array_equal(ds["data"].values, expected.values)
    np.testing.assert_array_equal(ds["energy"].values, expected["energy"].values)
    assert ds["energy"].attrs["units"] == "eV"
    assert ds["t"].attrs["units"] == "s"


@pytest.fixture
def put_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key any store is asked to write during the test."""
    keys: list[str] = []
    lock = threading.Lock()

    def spying(original: Any) -> Any:
        def spy(self: KeyValueStore, items: Any) -> None:
            with lock:
                keys.extend(items)
            original(self, items)
            WRITTEN.add(sum(is_data_chunk(k) for k in items))

        return spy

    WRITTEN.reset()
    for cls in (FsspecStore, DirectoryStore):
        monkeypatch.setattr(cls, "put_many", spying(cls.put_many))
    return keys


def is_data_chunk(key: str) -> bool:
    head, sep, tail = key.partition("/data/")
    return bool(sep) and head.startswith("Experiments/") and not tail.startswith(".")
