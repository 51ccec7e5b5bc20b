"""Shared helpers of the hostile-store tests: build the store an attacker (or a broken tool)
would hand over, then read it the three ways users do (eager, dask, DataTree) and check the
exact error type and that the message names the store URL and the path inside it.

Reads that could execute code or allocate absurd amounts of memory run in a subprocess
(:func:`read_isolated`, with an address-space limit), so a library that misbehaves fails the
test instead of taking the test run down.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fsspec
import numcodecs
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from intake_zspy.errors import ZspyError, ZspyFormatError, ZspyWarning
from tests.builders import encode_store, signal_dict, write_dir

REPO = Path(__file__).resolve().parents[1]
DATA = np.arange(20, dtype="<f8").reshape(4, 5)
CHUNKS = (2, 5)
SIG = "Experiments/s"
DATA_KEY = f"{SIG}/data"
FIRST_CHUNK = f"{DATA_KEY}/0/0"
MARKERS = f"{SIG}/metadata/Markers/pts/kwargs"
BLOSC: dict[str, Any] = {"id": "blosc", "cname": "zstd", "clevel": 1, "shuffle": 1, "blocksize": 0}
DOCS = (".zgroup", ".zattrs", ".zarray")
READS = ("eager", "dask", "tree")
#: Address space of subprocess reads: an absurd allocation fails fast instead of swapping.
ISOLATED_AS_LIMIT = 4 * 2**30


# -- building stores ---------------------------------------------------------------------


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, indent=4, sort_keys=True).encode()


def codec(config: Mapping[str, Any] | None) -> Any:
    return None if config is None else numcodecs.get_codec(dict(config))


def zarray(
    shape: Sequence[int],
    chunks: Sequence[int],
    dtype: Any,
    *,
    compressor: Mapping[str, Any] | None = BLOSC,
    filters: Sequence[Mapping[str, Any]] | None = None,
    fill_value: Any = 0,
    order: str = "C",
    separator: str = "/",
) -> dict[str, Any]:
    """A ``.zarray`` document (written as given: nothing is validated)."""
    return {
        "chunks": list(chunks),
        "compressor": None if compressor is None else dict(compressor),
        "dimension_separator": separator,
        "dtype": dtype,
        "fill_value": fill_value,
        "filters": None if filters is None else [dict(f) for f in filters],
        "order": order,
        "shape": list(shape),
        "zarr_format": 2,
    }


def encode_chunks(
    data: np.ndarray,
    chunks: Sequence[int],
    *,
    compressor: Mapping[str, Any] | None = BLOSC,
    filters: Sequence[Mapping[str, Any]] = (),
    separator: str = "/",
) -> dict[str, bytes]:
    """Every chunk of ``data`` encoded with numcodecs, keyed relative to the array."""
    comp = codec(compressor)
    flts = [codec(f) for f in filters]
    out: dict[str, bytes] = {}
    grid = [range(math.ceil(n / c)) for n, c in zip(data.shape, chunks, strict=True)]
    for index in itertools.product(*grid):
        region = tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(index, chunks, data.shape, strict=True)
        )
        block = np.zeros(tuple(chunks), dtype=data.dtype)
        block[tuple(slice(0, r.stop - r.start) for r in region)] = data[region]
        buf: Any = np.ascontiguousarray(block)
        for f in flts:
            buf = f.encode(buf)
        if comp is not None:
            buf = comp.encode(buf)
        out[separator.join(map(str, index)) if index else "0"] = bytes(buf)
    return out


def put_array(
    items: dict[str, bytes], path: str, doc: Mapping[str, Any], chunks: Mapping[str, bytes]
) -> None:
    """Replace the array at ``path`` (its ``.zarray`` and every chunk)."""
    for key in [k for k in items if k.startswith(f"{path}/")]:
        del items[key]
    items[f"{path}/.zarray"] = dumps(dict(doc))
    items.update({f"{path}/{k}": v for k, v in chunks.items()})


def set_data(
    items: dict[str, bytes],
    data: np.ndarray,
    chunks: Sequence[int] = CHUNKS,
    *,
    compressor: Mapping[str, Any] | None = BLOSC,
    filters: Sequence[Mapping[str, Any]] | None = None,
    path: str = DATA_KEY,
    **doc: Any,
) -> None:
    """Store ``data`` at ``path`` with the given chunks and codecs (canonical configs)."""
    comp = None if compressor is None else codec(compressor).get_config()
    flts = None if filters is None else [codec(f).get_config() for f in filters]
    meta = zarray(data.shape, chunks, data.dtype.str, compressor=comp, filters=flts)
    meta.update(doc)
    put_array(
        items,
        path,
        meta,
        encode_chunks(data, chunks, compressor=compressor, filters=flts or ()),
    )


def edit_doc(items: dict[str, bytes], key: str, changes: Mapping[str, Any]) -> None:
    """Update one metadata document (consolidate again afterwards)."""
    doc = json.loads(items[key]) if key in items else {}
    doc.update(changes)
    items[key] = dumps(doc)


def consolidate(items: dict[str, bytes]) -> dict[str, bytes]:
    """(Re)write ``.zmetadata`` from the per-node documents, so that both agree."""
    docs = {k: json.loads(v) for k, v in sorted(items.items()) if k.rsplit("/", 1)[-1] in DOCS}
    items.pop(".zmetadata", None)
    items[".zmetadata"] = dumps({"metadata": docs, "zarr_consolidated_format": 1})
    return items


def base_items(
    data: np.ndarray = DATA, chunks: Sequence[int] = CHUNKS, **kw: Any
) -> dict[str, bytes]:
    """A good one-signal store (``Experiments/s``) with ``data`` stored in ``chunks``."""
    items = encode_store({"s": signal_dict(data, title="s", **kw)}, consolidated=False)
    set_data(items, data, chunks)
    return items


def markers() -> dict[str, Any]:
    """Metadata holding ragged marker arrays (stored with vlen-array and msgpack2)."""
    offsets = np.empty(4, dtype=object)
    texts = np.empty(4, dtype=object)
    for i in range(4):
        offsets[i] = np.arange(2 * (i + 1), dtype="<f8").reshape(i + 1, 2)
        texts[i] = np.array([f"t{i}{j}" for j in range(i + 1)])
    return {"Markers": {"pts": {"kwargs": {"offsets": offsets, "texts": texts}}}}


def markers_items() -> dict[str, bytes]:
    """A good store whose metadata holds ragged marker arrays."""
    return base_items(metadata=markers())


def write_zip(items: Mapping[str, bytes], path: Path) -> Path:
    """A zip store as zarr writes one: members stored, root attributes and .zmetadata last."""
    last = [".zattrs", ".zmetadata"]
    order = [k for k in items if k not in last] + [k for k in last if k in items]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in order:
            zf.writestr(key, items[key])
    return path


def place(
    items: dict[str, bytes], where: Path, kind: str = "directory", *, consolidated: bool = True
) -> str:
    """Write a store; return the URL a user would pass (absolute path, or memory://)."""
    if consolidated:
        consolidate(items)
    if kind == "directory":
        return str(write_dir(items, where))
    if kind == "zip":
        return str(write_zip(items, where))
    assert kind == "memory", kind
    fs = fsspec.filesystem("memory")
    for key, value in items.items():
        fs.pipe_file(f"/{where.name}/{key}", value)
    return f"memory://{where.name}"


# -- reading -----------------------------------------------------------------------------


def read(url: str, how: str = "eager", **kwargs: Any) -> Any:
    """Read the whole store the way users do: values, dask, DataTree."""
    if how == "eager":
        ds = intake_zspy.open_dataset(url, **kwargs)
        ds["data"].values  # noqa: B018
        return ds
    if how == "dask":
        return intake_zspy.open_dataset(url, chunks={}, **kwargs)["data"].compute()
    assert how == "tree", how
    return intake_zspy.open_datatree(url, **kwargs).load()


def expect(
    exc_type: type[BaseException],
    url: str,
    *fragments: str | re.Pattern[str],
    reads: Sequence[str] = READS,
    **kwargs: Any,
) -> list[BaseException]:
    """Every read of ``url`` raises ``exc_type`` naming ``url`` and every fragment (a
    string, or a pattern to search for)."""
    errors: list[BaseException] = []
    for how in reads:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZspyWarning)
            with pytest.raises(exc_type) as info:
                read(url, how, **kwargs)
        message = str(info.value)
        assert isinstance(info.value, ZspyError), f"{how}: {info.value!r}"
        assert url in message, f"{how}: the message does not name the store: {message}"
        for fragment in fragments:
            found = (
                fragment.search(message)
                if isinstance(fragment, re.Pattern)
                else fragment in message
            )
            assert found, f"{how}: {fragment!r} not in: {message}"
        errors.append(info.value)
    return errors


def expect_format_error(
    url: str, *fragments: str | re.Pattern[str], **kwargs: Any
) -> list[BaseException]:
    return expect(ZspyFormatError, url, *fragments, **kwargs)


_ISOLATED = r"""
import json, resource, sys, warnings
urls, limit = json.loads(sys.argv[1]), int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import intake_zspy

READS = {
    "eager": lambda u: intake_zspy.open_dataset(u)["data"].values,
    "dask": lambda u: intake_zspy.open_dataset(u, chunks={})["data"].compute(),
    "tree": lambda u: intake_zspy.open_datatree(u).load(),
}

def attempt(read, url):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(url)
    except BaseException as exc:
        mro = [c.__name__ for c in type(exc).__mro__]
        return {"type": type(exc).__name__, "mro": mro, "message": str(exc)}
    return {"type": None, "mro": [], "message": ""}

out = {u: {how: attempt(read, u) for how, read in READS.items()} for u in urls}
sys.stdout.write(json.dumps(out))
"""


def read_isolated(
    urls: Sequence[str], env: Mapping[str, str] | None = None, limit: int = ISOLATED_AS_LIMIT
) -> dict[str, dict[str, dict[str, Any]]]:
    """Read each store three ways in a fresh process; ``{url: {read: outcome}}``."""
    done = subprocess.run(
        [sys.executable, "-c", _ISOLATED, json.dumps(list(urls)), str(limit)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, f"reader process died ({done.returncode}): {done.stderr[-3000:]}"
    result: dict[str, dict[str, dict[str, Any]]] = json.loads(done.stdout)
    return result


def check_isolated(
    outcomes: Mapping[str, Mapping[str, Any]], expected: str, url: str, *fragments: str
) -> None:
    """Every read of :func:`read_isolated` raised ``expected`` naming url and fragments."""
    for how, outcome in outcomes.items():
        assert outcome["type"] not in ("MemoryError", "RecursionError"), (how, outcome)
        assert outcome["type"] is not None, f"{how}: no error (expected {expected})"
        assert expected in outcome["mro"], f"{how}: {outcome['type']}: {outcome['message']}"
        message = outcome["message"]
        assert url in message, f"{how}: the message does not name the store: {message}"
        for fragment in fragments:
            assert fragment in message, f"{how}: {fragment!r} not in: {message}"


def cli(*args: Any, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m intake_zspy ARGS`` in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env.update(NO_PROXY="*", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "intake_zspy", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


def snapshot(root: Path) -> dict[str, int]:
    """Every path below ``root`` (files, directories, symlinks) with its size."""
    out = {}
    for parent, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(parent) / name
            out[path.relative_to(root).as_posix()] = path.lstat().st_size if name in files else -1
    return out


def fresh_dataset(**attrs: Any) -> xr.Dataset:
    """A fresh one-variable dataset (``intensity``) with ``attrs``."""
    return xr.Dataset({"intensity": (("x", "E"), DATA.copy())}, attrs=attrs)
