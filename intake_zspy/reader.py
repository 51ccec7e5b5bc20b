"""Public reading API: :func:`open_dataset` and :func:`open_datatree`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import xarray as xr

from intake_zspy.xarray_backend import ZspyBackendEntrypoint, _signal_name

__all__ = ["open_dataset", "open_datatree"]

UrlPath = str | os.PathLike[str] | Any


def open_dataset(
    urlpath: UrlPath,
    *,
    signal: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    chunks: int | str | Mapping[str, Any] | None = None,
    consolidated: bool | None = None,
    group: str | None = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Open one signal of a zspy store as an :class:`xarray.Dataset`.

    Only metadata is read; the data stays lazy until it is indexed or loaded.

    Parameters
    ----------
    urlpath
        A local directory or zip file, an fsspec URL (``file://``, ``memory://``,
        ``s3://bucket/run.zspy``, ``zip::s3://...``, ``simplecache::s3://...``), an
        fsspec mapper or a zarr Store.
    signal
        The ``Experiments/`` group to open (a title with ``/`` also works). Default: the
        first in name order.
    storage_options
        Passed to fsspec (e.g. s3fs credentials, ``client_kwargs``).
    chunks
        ``None`` (default): xarray lazy indexing without dask. ``{}``: dask chunks equal
        to the stored chunks. ``"auto"``, an int or a dict: dask chunks as in
        :func:`xarray.open_dataset` (aligned to the stored chunks where possible).
    consolidated
        ``None`` (default): use ``.zmetadata`` after checking it against one listing of
        the store; a stale one is corrected with a
        :class:`~intake_zspy.errors.StaleMetadataWarning`. ``True``: trust ``.zmetadata``
        without listing (fewest requests). ``False``: ignore it.
    group
        xarray's name for ``signal`` (``"EELS SI"``, ``"Experiments/EELS SI"`` or
        ``"/Experiments/EELS SI"``), so that code written for
        ``xr.open_dataset(..., engine="zspy", group=...)`` works here too.
    **kwargs
        Passed to :func:`xarray.open_dataset` (``drop_variables``, ``inline_array``,
        ``cache``, ...).

    Returns
    -------
    xarray.Dataset
        One data variable ``data``; one index coordinate per axis; metadata in attrs.

    Raises
    ------
    StoreNotFoundError
        Nothing exists at ``urlpath`` (a ``FileNotFoundError``).
    ZspyFormatError
        ``urlpath`` is not a zspy store, or breaks the format; the message says what is
        wrong and where. Its subclasses say more (see :mod:`intake_zspy.errors`).
    SignalNotFoundError
        ``signal`` does not exist (a ``KeyError``); the message lists the signals.
    TypeError
        ``signal`` and ``group`` are both given and name different signals.

    See Also
    --------
    open_datatree : every signal of the store at once.
    """
    return xr.open_dataset(
        urlpath,
        engine=ZspyBackendEntrypoint,
        group=_one_signal(urlpath, signal, group),
        storage_options=storage_options,
        consolidated=consolidated,
        chunks=chunks,
        **kwargs,
    )


def _one_signal(urlpath: UrlPath, signal: str | None, group: str | None) -> str | None:
    """The signal asked for by ``signal=`` or by its xarray spelling ``group=``."""
    if signal is None:
        return group
    if group is None or _signal_name(group) == _signal_name(signal):
        return signal
    raise TypeError(
        f"{urlpath}: signal={signal!r} and group={group!r} name different signals; "
        "pass only one of them (group is xarray's name for signal)"
    )


def open_datatree(
    urlpath: UrlPath,
    *,
    storage_options: Mapping[str, Any] | None = None,
    chunks: int | str | Mapping[str, Any] | None = None,
    consolidated: bool | None = None,
    **kwargs: Any,
) -> xr.DataTree:
    """Open every signal of a zspy store as an :class:`xarray.DataTree`.

    The root node carries the file format attributes; each child node is one signal,
    named like its ``Experiments/`` group, holding the Dataset :func:`open_dataset`
    returns for it.

    Parameters
    ----------
    urlpath, storage_options, chunks, consolidated, **kwargs
        As for :func:`open_dataset`; ``group="<signal>"`` keeps only that signal's node.

    Returns
    -------
    xarray.DataTree
    """
    return xr.open_datatree(
        urlpath,
        engine=ZspyBackendEntrypoint,
        storage_options=storage_options,
        consolidated=consolidated,
        chunks=chunks,
        **kwargs,
    )
