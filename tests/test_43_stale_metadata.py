"""Stale consolidated metadata: ``.zmetadata`` that disagrees with the per-node documents.

A store edited after consolidation (or whose ``.zmetadata`` was edited later) is read from the
per-node documents, with a :class:`StaleMetadataWarning`, in every store kind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from intake_zspy.errors import StaleMetadataWarning
from tests.hostile import (
    CHUNKS,
    DATA,
    DATA_KEY,
    SIG,
    base_items,
    consolidate,
    dumps,
    edit_doc,
    encode_chunks,
    place,
)

KINDS = ("directory", "zip", "memory")
INT_DATA = np.arange(20, dtype="<i8").reshape(4, 5) * 3 - 7


def _age(url: str, kind: str) -> None:
    """Make every entry older than .zmetadata (a store whose mtimes hide the edit)."""
    if kind != "directory":
        return  # zip: member order; memory: creation order (.zmetadata written last)
    root = Path(url)
    old = time.time() - 3600
    for path in root.rglob("*"):
        if path.name != ".zmetadata":
            os.utime(path, (old, old))
    os.utime(root / ".zmetadata", (old + 1800, old + 1800))


def _consolidated_then(items: dict[str, bytes], edit: Callable[[dict[str, bytes]], None]) -> None:
    """Consolidate ``items``, then apply ``edit`` to the per-node documents only."""
    zmetadata = consolidate(items).pop(".zmetadata")
    edit(items)
    items[".zmetadata"] = zmetadata  # last: written last, newest


def _retype(items: dict[str, bytes]) -> None:
    key = f"{DATA_KEY}/.zarray"
    before = items[key]
    items[key] = before.replace(b'"<f8"', b'"<i8"')
    assert len(items[key]) == len(before)
    assert items[key] != before
    chunks = encode_chunks(INT_DATA, CHUNKS)
    items.update({f"{DATA_KEY}/{k}": v for k, v in chunks.items()})


def _reshape(items: dict[str, bytes]) -> None:
    key = f"{DATA_KEY}/.zarray"
    doc = json.loads(items[key])
    doc.update(shape=[5, 4], chunks=[2, 4])
    items[key] = dumps(doc)
    for i, size in ((0, 5), (1, 4)):
        edit_doc(items, f"{SIG}/axis-{i}/.zattrs", {"size": size})
    for k in [k for k in items if k.startswith(f"{DATA_KEY}/") and not k.endswith(".zarray")]:
        del items[k]
    chunks = encode_chunks(DATA.reshape(5, 4), (2, 4))
    items.update({f"{DATA_KEY}/{k}": v for k, v in chunks.items()})


def _read_warned(url: str) -> tuple[xr.Dataset, xr.DataArray, xr.DataTree]:
    with pytest.warns(StaleMetadataWarning, match=r"\.zmetadata"):
        ds = intake_zspy.open_dataset(url)
    ds["data"].load()
    with pytest.warns(StaleMetadataWarning):
        lazy = intake_zspy.open_dataset(url, chunks={})["data"].compute()
    with pytest.warns(StaleMetadataWarning):
        tree = intake_zspy.open_datatree(url).load()
    return ds, lazy, tree


@pytest.mark.parametrize("kind", KINDS)
def test_stale_zmetadata_dtype_edit(
    tmp_path: Path, kind: str, memory_fs: fsspec.AbstractFileSystem
) -> None:
    items = base_items()
    _consolidated_then(items, _retype)
    url = place(items, tmp_path / "retyped.zspy", kind, consolidated=False)
    _age(url, kind)
    ds, lazy, tree = _read_warned(url)
    for result in (ds["data"], lazy, tree["s"]["data"]):
        assert result.dtype == np.dtype("<i8")
        np.testing.assert_array_equal(result.values, INT_DATA)


@pytest.mark.parametrize("kind", KINDS)
def test_stale_zmetadata_shape_edit(
    tmp_path: Path, kind: str, memory_fs: fsspec.AbstractFileSystem
) -> None:
    items = base_items()
    _consolidated_then(items, _reshape)
    url = place(items, tmp_path / "reshaped.zspy", kind, consolidated=False)
    _age(url, kind)
    ds, lazy, tree = _read_warned(url)
    for result in (ds["data"], lazy, tree["s"]["data"]):
        assert result.shape == (5, 4)
        np.testing.assert_array_equal(result.values, DATA.reshape(5, 4))


@pytest.mark.parametrize("kind", KINDS)
def test_edited_zmetadata_loses_to_node_documents(
    tmp_path: Path, kind: str, memory_fs: fsspec.AbstractFileSystem
) -> None:
    """.zmetadata rewritten later (claims int64) while the arrays are still float64."""
    items = consolidate(base_items())
    zmeta = items.pop(".zmetadata")
    items[".zmetadata"] = zmeta.replace(b'"<f8"', b'"<i8"')
    assert items[".zmetadata"] != zmeta
    url = place(items, tmp_path / "edited.zspy", kind, consolidated=False)
    _age(url, kind)
    ds, lazy, tree = _read_warned(url)
    for result in (ds["data"], lazy, tree["s"]["data"]):
        assert result.dtype == np.dtype("<f8")
        np.testing.assert_array_equal(result.values, DATA)
