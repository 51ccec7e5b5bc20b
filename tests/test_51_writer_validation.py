"""``to_zspy`` refuses bad input and unwritable targets before writing anything.

Unstorable dtypes, keys and values, bad arguments, read-only protocols, a missing parent
directory or S3 bucket: each fails with a clear error before any data chunk is written,
and leaves an existing store intact. Targets come from ``tests/writer_places.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from tests.writer_places import NEW, OLD, S3, assert_holds, is_data_chunk

# -- bad input: an error before anything is written --------------------------------------

_BASE = xr.DataArray(np.zeros((2, 3), "f4"), dims=("y", "e"), name="x")


def _datetime() -> xr.DataArray:
    values = np.array(["2020-01-01"] * 6, dtype="M8[ns]").reshape(2, 3)
    return xr.DataArray(values, dims=("y", "e"))


BAD_INPUT: dict[str, tuple[Callable[[], Any], dict[str, Any], type[Exception], str]] = {
    "dtype-datetime64": (_datetime, {}, TypeError, "datetime64.*cannot be stored"),
    "dtype-str": (
        lambda: xr.DataArray(np.array(list("abcdef")).reshape(2, 3), dims=("y", "e")),
        {},
        TypeError,
        "<U1 cannot be stored",
    ),
    "key-tuple": (
        lambda: _BASE.to_dataset().assign_attrs(metadata={"General": {"title": "t"}, (1, 2): "v"}),
        {},
        TypeError,
        r"key \(1, 2\) \(tuple\) is not a string",
    ),
    "key-object": (
        lambda: _BASE.assign_attrs(original={"a": {object(): 1}}),
        {},
        TypeError,
        "is not a string",
    ),
    "key-dotdot": (
        lambda: _BASE.to_dataset().assign_attrs(original_metadata={"..": {"b": 1}}),
        {},
        ValueError,
        "cannot be stored as a group or array name",
    ),
    "value-set": (
        lambda: _BASE.to_dataset().assign_attrs(original_metadata={"a": {"b": {1, 2}}}),
        {},
        TypeError,
        "cannot store a set",
    ),
    "value-bytes-nul": (
        lambda: _BASE.to_dataset().assign_attrs(original_metadata={"a": b"x\x00y"}),
        {},
        ValueError,
        "NUL",
    ),
    "ragged-not-object": (
        lambda: xr.Dataset({"data": _BASE}, attrs={"attributes": {"ragged": True}}),
        {},
        TypeError,
        "attrs say the signal is ragged",
    ),
    "ragged-unencodable-item": (
        lambda: xr.DataArray(np.array([np.arange(3.0), {1, 2}], dtype=object), dims=("n",)),
        {},
        TypeError,
        "object array items cannot be stored",
    ),
    "coord-str": (
        lambda: _BASE.assign_coords(e=["a", "b", "c"]),
        {},
        TypeError,
        "cannot be a HyperSpy axis",
    ),
    "two-variables": (
        lambda: xr.Dataset({"a": _BASE, "b": _BASE}),
        {},
        ValueError,
        "one data variable",
    ),
    "signal-dims-not-last": (lambda: _BASE, {"signal_dims": ["y"]}, ValueError, "last dims"),
    "chunks-unknown-dim": (lambda: _BASE, {"chunks": {"zz": 2}}, ValueError, "unknown dims"),
    "not-xarray": (lambda: np.zeros(3), {}, TypeError, "cannot write a ndarray"),
    "empty-datatree": (lambda: xr.DataTree(), {}, ValueError, "no node with data"),
}


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        *((kind, bad) for kind in ("directory", "zip", "memory") for bad in sorted(BAD_INPUT)),
        pytest.param("s3", "key-tuple", marks=S3),
        pytest.param("s3zip", "dtype-datetime64", marks=S3),
    ],
)
def test_bad_input_fails_before_writing(
    kind: str, bad: str, make_place: Any, put_spy: list[str]
) -> None:
    place = make_place(kind)
    factory, kwargs, error, match = BAD_INPUT[bad]
    with pytest.raises(error, match=match):
        place.write(factory(), **kwargs)
    assert put_spy == []
    assert place.snapshot() == {}


@pytest.mark.parametrize("kind", ["directory", "zip"])
def test_bad_input_leaves_existing_store_intact(kind: str, make_place: Any) -> None:
    place = make_place(kind)
    place.write(OLD)
    before = place.snapshot()
    factory, kwargs, error, match = BAD_INPUT["key-tuple"]
    with pytest.raises(error, match=match):
        place.write(factory(), overwrite=True, **kwargs)
    assert place.snapshot() == before
    assert_holds(place, OLD)


@pytest.mark.parametrize(
    ("url", "store_type", "error", "match"),
    [
        ("http://127.0.0.1:9/run.zspy", None, ValueError, "cannot write a zspy store over http"),
        ("zip::https://127.0.0.1:9/run.zspy", None, ValueError, "cannot write"),
        ("nosuchprotocol://bucket/run.zspy", None, ValueError, "nosuchprotocol"),
        ("{tmp}/run.zspy", "hdf5", ValueError, "store_type must be"),
        ("{tmp}/a-file/run.zspy", None, NotADirectoryError, "a-file"),
        ("{tmp}/a-file/run.zspy", "zip", NotADirectoryError, "a-file"),
    ],
)
def test_unwritable_url_fails_before_writing(
    url: str,
    store_type: str | None,
    error: type[Exception],
    match: str,
    tmp_path: Path,
    put_spy: list[str],
) -> None:
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(error, match=match) as info:
        intake_zspy.to_zspy(NEW, url.format(tmp=tmp_path), store_type=store_type)
    assert not isinstance(info.value, FileExistsError)  # the target does not exist
    assert not [k for k in put_spy if is_data_chunk(k)]  # failed before writing data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    assert (tmp_path / "a-file").read_bytes() == b"x"


def test_urlpath_of_wrong_type_is_refused(put_spy: list[str]) -> None:
    with pytest.raises(TypeError, match="urlpath must be a path or URL"):
        intake_zspy.to_zspy(NEW, 42)  # type: ignore[arg-type]
    assert put_spy == []


@pytest.mark.parametrize("store_type", [None, "zip"])
def test_missing_bucket_fails_before_writing(
    store_type: str | None, s3_storage_options: dict[str, Any], put_spy: list[str]
) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(OSError, match="bucket does not exist") as info:
        intake_zspy.to_zspy(
            NEW,
            f"s3://{bucket}/run.zspy",
            storage_options=s3_storage_options,
            store_type=store_type,
        )
    assert not isinstance(info.value, FileExistsError)
    assert not [k for k in put_spy if is_data_chunk(k)]
    fs = fsspec.filesystem("s3", **s3_storage_options)
    assert not fs.exists(bucket)
