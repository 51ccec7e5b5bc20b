"""The ``zspy`` xarray backend: ``xr.open_dataset(url, engine="zspy")``.

A thin adapter: store resolution lives in :mod:`intake_zspy.storage`, decoding in
:mod:`intake_zspy.format`, the mapping in :mod:`intake_zspy.dataset`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from intake_zspy.dataset import DATA_VAR, signal_to_dataset
from intake_zspy.errors import ZspyError, ZspyFormatError
from intake_zspy.format import names
from intake_zspy.format.arrays import V2Array
from intake_zspy.format.decode import ZspyFile, open_url
from intake_zspy.format.model import RaggedArray

__all__ = ["ZspyBackendArray", "ZspyBackendEntrypoint"]


class ZspyBackendArray(BackendArray):
    """Lazy, picklable access to a signal's data; reads only the chunks an index touches."""

    __slots__ = ("array", "dtype", "shape")

    def __init__(self, array: V2Array | RaggedArray) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple[int | slice, ...]) -> np.ndarray:
        slices = tuple(slice(k, k + 1) if isinstance(k, int | np.integer) else k for k in key)
        out = self.array.read(slices)
        squeeze = tuple(i for i, k in enumerate(key) if isinstance(k, int | np.integer))
        return out.squeeze(axis=squeeze) if squeeze else out


def _signal_name(group: str | None) -> str | None:
    """Accept ``name``, ``Experiments/name`` or ``/Experiments/name`` as the signal."""
    if group is None or group in ("", "/"):
        return None
    group = group.strip("/")
    prefix = f"{names.EXPERIMENTS}/"
    return group.removeprefix(prefix)


@contextlib.contextmanager
def _mapping(url: str, what: str) -> Iterator[None]:
    """Errors xarray raises on what a store holds (names, extra coordinates) as ours."""
    try:
        yield
    except (TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, ZspyError):
            raise
        raise ZspyFormatError(f"{url}: {what} cannot be represented in xarray: {exc}") from exc


def _dataset(file: ZspyFile, name: str | None, drop_variables: Iterable[str] | None) -> xr.Dataset:
    signal = file.signal(name)
    lazy = indexing.LazilyIndexedArray(ZspyBackendArray(signal.data))
    with _mapping(file.url, f"signal {signal.path!r}"):
        ds = signal_to_dataset(signal, lazy)
    # dask chunks follow the stored ones: xarray reads "preferred_chunks" for chunks={}
    chunks = signal.data.chunks
    ds[DATA_VAR].encoding.update(
        chunks=chunks, preferred_chunks=dict(zip(ds[DATA_VAR].dims, chunks, strict=True))
    )
    if drop_variables:
        ds = ds.drop_vars(list(drop_variables), errors="ignore")
    return ds


def _groups(
    file: ZspyFile, wanted: str | None, drop_variables: Iterable[str] | None
) -> dict[str, xr.Dataset]:
    """The root group (the file's attributes) and one group per signal (or the one wanted)."""
    signals = [file.resolve_name(wanted)] if wanted else file.signal_names()
    root_attrs = {
        names.ATTR_FILE_FORMAT: file.hierarchy.file_format,
        names.ATTR_FORMAT_VERSION: file.format_version,
    }
    groups = {"/": xr.Dataset(attrs=root_attrs)}
    groups["/"].encoding["source"] = file.url
    groups.update({f"/{n}": _dataset(file, n, drop_variables) for n in signals})
    return groups


@contextlib.contextmanager
def _opened(
    filename_or_obj: Any, storage_options: Mapping[str, Any] | None, consolidated: bool | None
) -> Iterator[ZspyFile]:
    """The opened file (``filename_or_obj`` itself if it is one, e.g. from the intake
    source); its store is closed if anything fails before the caller returns."""
    file = open_url(filename_or_obj, storage_options, consolidated=consolidated)
    try:
        yield file
    except BaseException:
        file.store.close()
        raise


def _as_list(drop_variables: str | Iterable[str] | None) -> Iterable[str] | None:
    return [drop_variables] if isinstance(drop_variables, str) else drop_variables


class ZspyBackendEntrypoint(BackendEntrypoint):
    """Open HyperSpy ``.zspy`` stores as xarray Datasets and DataTrees.

    ``group`` names a signal (``Experiments/<group>``); ``storage_options`` go to fsspec;
    ``consolidated`` controls the use of ``.zmetadata`` (see
    :func:`intake_zspy.open_dataset`).
    """

    description = "HyperSpy .zspy stores (zarr format 2) via intake-zspy"
    url = "https://github.com/intake-zspy/intake-zspy"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "group",
        "storage_options",
        "consolidated",
    )
    supports_groups = True

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        consolidated: bool | None = None,
    ) -> xr.Dataset:
        with _opened(filename_or_obj, storage_options, consolidated) as file:
            ds = _dataset(file, _signal_name(group), _as_list(drop_variables))
        ds.set_close(file.store.close)
        return ds

    def open_groups_as_dict(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        consolidated: bool | None = None,
    ) -> dict[str, xr.Dataset]:
        with _opened(filename_or_obj, storage_options, consolidated) as file:
            groups = _groups(file, _signal_name(group), _as_list(drop_variables))
        groups["/"].set_close(file.store.close)
        return groups

    def open_datatree(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        consolidated: bool | None = None,
    ) -> xr.DataTree:
        with _opened(filename_or_obj, storage_options, consolidated) as file:
            groups = _groups(file, _signal_name(group), _as_list(drop_variables))
            with _mapping(file.url, "the store"):
                tree = xr.DataTree.from_dict(groups)
        # the root node owns the store: tree.close() closes every node
        tree.set_close(file.store.close)
        return tree

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if isinstance(path, bytes):
            return False
        return bool(path.rstrip("/").lower().endswith(".zspy"))
