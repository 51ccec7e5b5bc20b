"""Convert a whole folder of HyperSpy ``.hspy`` files to zspy stores, resumably.

:func:`convert_folder` lists the source folder or prefix once, maps every ``*.hspy``
file below it to ``<target prefix>/<same relative path>.zspy`` and converts the files
in parallel with :func:`~intake_zspy.ops.copy.copy` (streaming, bounded memory).

Resuming needs no journal: the writer puts a store's root attributes last (after every
chunk and document), and a store without them reads as incomplete
(:class:`~intake_zspy.errors.IncompleteStoreError`). So a target that opens as a
complete zspy store is *already converted* and skipped (unless ``overwrite``); one left
incomplete by a killed run is converted again; a local target is swapped in whole and
does not exist until then. Running the same command again after a kill therefore
finishes the job.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from intake_zspy.errors import (
    IncompleteStoreError,
    StoreExistsError,
    StoreNotFoundError,
    ZspyError,
)
from intake_zspy.ops.copy import KEEP, ChunkSpec, copy

if TYPE_CHECKING:
    from numcodecs.abc import Codec

__all__ = ["FolderItem", "convert_folder", "plan_folder"]

SOURCE_SUFFIX = ".hspy"
TARGET_SUFFIX = ".zspy"

Status = Literal["pending", "converted", "skipped", "failed"]


@dataclass
class FolderItem:
    """One file of a folder conversion and what happened to it."""

    source: str
    target: str
    status: Status = "pending"
    error: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        """``"converted a.hspy -> s3://b/a.zspy (1.2 s)"`` and the like."""
        what = {"skipped": "skipped (already converted)"}.get(self.status, self.status)
        tail = f": {self.error}" if self.error else f" ({self.seconds:.1f} s)"
        return f"{what} {self.source} -> {self.target}{tail}"


def _join_url(prefix: str, rel: str) -> str:
    return f"{prefix.rstrip('/')}/{rel}"


def plan_folder(
    src: str, dst: str, storage_options: Mapping[str, Any] | None = None
) -> list[FolderItem]:
    """The ``.hspy`` files under ``src`` (one recursive listing) and their targets.

    Parameters
    ----------
    src
        A local folder or an fsspec URL prefix (``s3://bucket/raw/``).
    dst
        The target folder or prefix; ``raw/a/b.hspy`` becomes ``<dst>/a/b.zspy``.
    storage_options
        fsspec options of the source.

    Raises
    ------
    StoreNotFoundError
        ``src`` holds no ``.hspy`` file.
    """
    from intake_zspy.storage import resolve

    loc = resolve(src, storage_options)
    base = loc.path.rstrip("/")
    found = sorted(
        p for p in loc.fs.find(base, withdirs=False) if p.lower().endswith(SOURCE_SUFFIX)
    )
    if not found:
        raise StoreNotFoundError(f"{loc.url}: no {SOURCE_SUFFIX} file found there")
    items = []
    for path in found:
        rel = posixpath.relpath(loc.fs._strip_protocol(path), base)
        target = _join_url(dst, rel[: -len(SOURCE_SUFFIX)] + TARGET_SUFFIX)
        source = path if loc.local else loc.fs.unstrip_protocol(path)
        if loc.url.startswith("simplecache::"):
            source = f"simplecache::{source}"
        items.append(FolderItem(source, target))
    return items


def _converted(url: str, options: Mapping[str, Any] | None) -> bool | None:
    """``True``: a complete zspy store; ``False``: nothing, or an interrupted write;
    ``None``: something else is there."""
    from intake_zspy.format.decode import open_url

    try:
        file = open_url(url, options)
    except (StoreNotFoundError, IncompleteStoreError):
        return False
    except (ZspyError, OSError, ValueError):
        return None
    file.store.close()
    return True


def convert_folder(
    src: str,
    dst: str,
    *,
    overwrite: bool = False,
    workers: int = 2,
    chunks: ChunkSpec = None,
    compressor: Codec | Literal["keep"] | None = KEEP,
    storage_options: Mapping[str, Any] | None = None,
    target_storage_options: Mapping[str, Any] | None = None,
    on_done: Callable[[FolderItem], None] | None = None,
) -> list[FolderItem]:
    """Convert every ``.hspy`` file under ``src`` to a zspy store under ``dst``.

    Parameters
    ----------
    src, dst
        Source folder or prefix, target folder or prefix (see :func:`plan_folder`).
    overwrite
        Convert again files whose target is already a complete zspy store (default:
        skip them). Targets left incomplete by an interrupted run are always redone.
    workers
        Files converted at once (each also reads and writes with dask threads).
    chunks, compressor
        As for :func:`~intake_zspy.ops.copy.copy` (default: chunks for cloud reads,
        Blosc zstd).
    storage_options, target_storage_options
        fsspec options of the source and of the target (default: the source's).
    on_done
        Called with each item once it is converted, skipped or failed (from the
        worker threads, one at a time).

    Returns
    -------
    list of FolderItem
        One per source file, in path order; failures are reported there, not raised.
    """
    if workers < 1:
        raise ValueError(f"workers={workers}: pass at least 1")
    dst_options = storage_options if target_storage_options is None else target_storage_options
    items = plan_folder(src, dst, storage_options)
    lock = threading.Lock()

    def run(item: FolderItem) -> FolderItem:
        start = time.monotonic()
        try:
            state = _converted(item.target, dst_options)
            if state and not overwrite:
                item.status = "skipped"
            elif state is None and not overwrite:
                raise StoreExistsError(
                    f"{item.target}: exists and is not a zspy store; pass overwrite to replace it"
                )
            else:
                copy(
                    item.source,
                    item.target,
                    chunks=chunks,
                    compressor=compressor,
                    overwrite=True,
                    storage_options=storage_options,
                    target_storage_options=dst_options,
                )
                item.status = "converted"
        except (ZspyError, OSError, ValueError, TypeError) as exc:
            item.status, item.error = "failed", f"{type(exc).__name__}: {exc}"
        item.seconds = time.monotonic() - start
        if on_done is not None:
            with lock:
                on_done(item)
        return item

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(run, items))
