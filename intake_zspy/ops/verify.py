"""Verify a store: its documents, its zspy structure and every chunk of every array.

:func:`verify` is what ``intake-zspy check`` runs; it returns a
:class:`~intake_zspy.ops.Report` instead of raising on what it finds.

Works on the store layer directly: one listing, concurrent batches of
:meth:`~intake_zspy.storage.KeyValueStore.get_many` (the next batch is fetched while the
current one is decoded by a thread pool) and
:meth:`~intake_zspy.format.arrays.V2Array.decode_chunk` for each chunk. Memory stays
within two batches of stored bytes plus one decoded chunk per thread.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import posixpath
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from intake_zspy._progress import progress_bar
from intake_zspy.errors import ChunkDecodeError, ZspyError, ZspyFormatError
from intake_zspy.format import names
from intake_zspy.format.fetch import batched, fetch_ahead
from intake_zspy.format.hierarchy import parse_json
from intake_zspy.ops._plain import jsonable
from intake_zspy.ops._report import ArrayCheck, Report, shown

if TYPE_CHECKING:
    from intake_zspy.format.arrays import V2Array
    from intake_zspy.storage import KeyInfo, KeyValueStore

__all__ = ["verify"]


def _fetch(store: KeyValueStore, keys: list[str]) -> tuple[dict[str, bytes | None], dict[str, str]]:
    """Fetch ``keys`` in one batch; if the batch fails, key by key to name the culprits."""
    try:
        return store.get_many(keys), {}
    except Exception:  # noqa: BLE001 - any failure: retry key by key to find the culprits
        values: dict[str, bytes | None] = {}
        errors: dict[str, str] = {}
        for key in keys:
            try:
                values[key] = store.get(key)
            except Exception as exc:  # noqa: BLE001 - reported, with its type
                message = " ".join(str(exc).split())
                errors[key] = f"cannot be read: {type(exc).__name__}: {message}"
        return values, errors


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, allow_nan=True)


def _check_documents(
    store: KeyValueStore, listing: Mapping[str, Any], report: Report
) -> dict[str, dict[str, Any]]:
    keys = sorted(k for k in listing if posixpath.basename(k) in names.METADATA_DOCS)
    report.documents = len(keys)
    raws, errors = _fetch(store, keys + ([names.ZMETADATA] if names.ZMETADATA in listing else []))
    docs: dict[str, dict[str, Any]] = {}
    for key in keys:
        raw = raws.get(key)
        try:
            if key in errors:
                raise ValueError(errors[key])
            if raw is None:
                raise ValueError("listed but gone when read")
            docs[key] = parse_json(raw, store.url, key)
        except ValueError as exc:  # ZspyFormatError, LimitExceededError: bounded parsing
            report.bad_documents[key] = str(exc).removeprefix(f"{store.url}: ")
            report.problems.append(f"invalid metadata document {key}: {exc}")
    if names.ZMETADATA in listing:
        try:
            raw = raws.get(names.ZMETADATA)
            if raw is None:
                raise ValueError(errors.get(names.ZMETADATA, "listed but gone when read"))
            meta = parse_json(raw, store.url, names.ZMETADATA).get("metadata")
            if not isinstance(meta, dict):
                raise TypeError("no 'metadata' mapping")
        except (ValueError, TypeError) as exc:
            report.bad_documents[names.ZMETADATA] = str(exc).removeprefix(f"{store.url}: ")
            report.problems.append(f"invalid metadata document {names.ZMETADATA}: {exc}")
        else:
            meta = {k.lstrip("/"): v for k, v in meta.items()}
            differ = sorted(
                k
                for k in set(meta) | set(docs)
                if k not in report.bad_documents
                and (k not in meta or k not in docs or _canonical(meta[k]) != _canonical(docs[k]))
            )
            if differ:
                report.warnings.append(
                    f"{names.ZMETADATA} is stale: {len(differ)} document(s) differ from the "
                    f"store's own ({shown(differ, '')}); zarr 2 readers such as HyperSpy "
                    "use the consolidated copies"
                )
    return docs


def _check_structure(store: KeyValueStore, docs: dict[str, Any], report: Report) -> None:
    from intake_zspy.format.decode import ZspyFile
    from intake_zspy.format.hierarchy import Hierarchy

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            file = ZspyFile(Hierarchy(store, docs))
        report.warnings.extend(" ".join(str(w.message).split()) for w in caught)
    except ZspyError as exc:
        report.problems.append(f"not a valid zspy store: {exc}")
        return
    report.format_version = file.format_version
    report.signals = file.signal_names()
    for name in report.signals:
        try:
            file.signal(name)
        except ChunkDecodeError:
            pass  # named by key in the chunk pass
        except Exception as exc:  # noqa: BLE001 - any decoding failure is a finding
            report.problems.append(f"signal {name!r} cannot be decoded: {exc}")


def _grid_keys(array: V2Array) -> Iterator[str]:
    meta = array.meta
    for index in itertools.product(*(range(n) for n in meta.grid)):
        yield meta.chunk_key(index)


def _in_grid(rel: str, array: V2Array) -> bool:
    meta = array.meta
    if not meta.shape:
        return rel == "0"
    parts = rel.split(meta.separator)
    if len(parts) != len(meta.shape) or not all(p.isdigit() for p in parts):
        return False
    return all(int(p) < n for p, n in zip(parts, meta.grid, strict=True))


def _plan_array(
    store: KeyValueStore, path: str, doc: dict[str, Any], listing: Mapping[str, KeyInfo]
) -> tuple[ArrayCheck, V2Array | None, list[str]]:
    from intake_zspy.format.arrays import ArrayMeta, V2Array

    check = ArrayCheck(path)
    try:
        meta = ArrayMeta.from_json(doc, f"{store.url}: {path}")
        array = V2Array(store, path, meta)
        array.pipeline()
    except ZspyFormatError as exc:
        check.error = str(exc).removeprefix(f"{store.url}: ")
        return check, None, []
    check.shape, check.chunks = list(meta.shape), list(meta.chunks)
    check.dtype, check.fill_value = str(meta.dtype), jsonable(meta.fill_value)
    check.expected = math.prod(meta.grid)
    prefix = f"{path}/" if path else ""
    present = set()
    for key in listing:
        if key.startswith(prefix) and posixpath.basename(key) not in names.METADATA_DOCS:
            rel = key[len(prefix) :]
            (present.add(rel) if _in_grid(rel, array) else check.stray.append(key))
    check.present = len(present)
    if check.present < check.expected:
        check.missing = [f"{prefix}{k}" for k in _grid_keys(array) if k not in present]
    return check, array, sorted(f"{prefix}{k}" for k in present)


def _decode(array: V2Array, key: str, raw: bytes) -> str | None:
    """``None`` when the chunk decodes to its full shape, else why it does not."""
    try:
        array.decode_chunk(raw, key)
    except ChunkDecodeError as exc:
        return " ".join(str(exc.__cause__ or exc).split())
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a finding
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


def _check_chunks(
    store: KeyValueStore,
    work: list[tuple[ArrayCheck, V2Array, str]],
    listing: Mapping[str, KeyInfo],
    report: Report,
    *,
    workers: int,
    batch: int,
    batch_bytes: int,
    progress: bool,
) -> None:
    batches = batched(work, lambda item: listing[item[2]].size or 0, batch, batch_bytes)
    bar = progress_bar(len(work), "checking", "chunk", progress)
    fetch = functools.partial(_fetch, store)
    with ThreadPoolExecutor(workers) as decoders:
        for items, (values, errors) in fetch_ahead(fetch, batches, lambda item: item[2]):
            futures = []
            for check, array, key in items:
                raw = values.get(key)
                if key in errors:
                    check.corrupted[key] = errors[key]
                elif raw is None:
                    check.missing.append(key)  # listed, then gone
                else:
                    report.chunks_read += 1
                    report.bytes_read += len(raw)
                    futures.append((check, key, decoders.submit(_decode, array, key, raw)))
            del values
            for check, key, future in futures:
                reason = future.result()
                if reason is not None:
                    check.corrupted[key] = reason
            if bar is not None:
                bar.update(len(items))
    if bar is not None:
        bar.close()


def verify(
    url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    workers: int = 8,
    batch: int = 128,
    batch_bytes: int = 64 * 10**6,
    progress: bool = False,
) -> Report:
    """Check a store's documents, zspy structure and every chunk of every array.

    Parameters
    ----------
    url
        The store.
    storage_options
        Passed to fsspec.
    workers
        Threads decoding chunks.
    batch, batch_bytes
        Chunks per concurrent fetch, and their stored bytes at most.
    progress
        Draw a progress bar on stderr.

    Returns
    -------
    Report

    Raises
    ------
    StoreNotFoundError
        Nothing exists at ``url``.
    """
    from intake_zspy.ops.describe import store_description
    from intake_zspy.ops.verify_h5 import verify_hdf5
    from intake_zspy.storage import HDF5File, open_store

    report = Report(url)
    try:
        store = open_store(url, storage_options)
    except ZspyFormatError as exc:  # e.g. a truncated zip file
        report.problems.append(str(exc))
        return report
    if isinstance(store, HDF5File):  # HyperSpy's .hspy: read through h5py
        with store:
            report.url, report.kind = store.url, store_description(store)
            verify_hdf5(store, report, progress=progress)
        report.add_array_findings()
        return report
    with store:
        report.url, report.kind = store.url, store_description(store)
        listing = store.list()
        docs = _check_documents(store, listing, report)
        _check_structure(store, docs, report)
        work: list[tuple[ArrayCheck, V2Array, str]] = []
        for key in sorted(k for k in docs if posixpath.basename(k) == names.ZARRAY):
            check, array, present = _plan_array(store, posixpath.dirname(key), docs[key], listing)
            report.arrays.append(check)
            if array is None:
                report.problems.append(f"invalid array {check.path}: {check.error}")
                continue
            work.extend((check, array, k) for k in present)
        _check_chunks(
            store,
            work,
            listing,
            report,
            workers=workers,
            batch=batch,
            batch_bytes=batch_bytes,
            progress=progress,
        )
    report.add_array_findings()
    return report
