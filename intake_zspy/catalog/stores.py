"""The intake v1 catalog ``zspy_dir``: one entry per zspy store under a folder or prefix."""

from __future__ import annotations

from typing import Any

from intake_zspy import __version__
from intake_zspy.catalog._base import ZspyCatalogBase
from intake_zspy.catalog._entry import VerbatimEntry
from intake_zspy.catalog._listing import StoreInfo, find_stores, store_line
from intake_zspy.source import ZspySource

__all__ = ["ZspyStoresCatalog"]


def _metadata(info: StoreInfo) -> dict[str, Any]:
    meta: dict[str, Any] = {"url": info.url, "store_kind": info.kind, "size": info.size}
    if info.error is not None:
        meta.update(error=info.error, error_type=info.error_type)
        return meta
    first = info.signals[0]
    meta.update(
        title=first["title"],
        signal_type=first["signal_type"],
        format_version=info.format_version,
        signals={s["signal"]: {k: v for k, v in s.items() if k != "signal"} for s in info.signals},
    )
    return meta


class ZspyStoresCatalog(ZspyCatalogBase):
    """Every zspy store under a folder, bucket prefix or glob, as a catalog.

    One entry per store (directories and zip files, see
    :func:`~intake_zspy.catalog._listing.find_stores`), named from its path below
    ``urlpath`` without ``.zspy``, described from the title and signal type of its
    signals, and searchable by them (``cat.search("EELS")``). Each entry is a
    :class:`~intake_zspy.source.ZspySource` of the store's first signal; pick another
    with ``cat[name](signal=...)`` (the entry's metadata lists them under ``signals``).

    The listing is one recursive ``find`` of ``urlpath``; the metadata of all stores
    is then fetched concurrently. A store that cannot be read is still listed: its
    description starts with ``unreadable zspy store``, its metadata holds ``error``
    and ``error_type``, and reading it raises the error.

    Parameters
    ----------
    urlpath
        A local folder, ``s3://bucket/prefix`` or a glob such as ``s3://bucket/*.zspy``.
    storage_options
        Passed to fsspec, and to every entry.
    chunks
        Given to every entry (see :class:`~intake_zspy.source.ZspySource`).
    metadata
        Catalog metadata.
    **kwargs
        Passed to :class:`intake.catalog.Catalog` (``name``, ``ttl``: seconds after which
        an access relists; ``None`` never relists by itself).

    Raises
    ------
    TypeError
        An argument has the wrong type.
    StoreNotFoundError
        Nothing exists under ``urlpath`` (a missing or empty folder or prefix).

    Notes
    -----
    Refresh with :meth:`force_reload` (now) or :meth:`reload` (if ``ttl`` has passed).
    Export with :meth:`save` (``cat.save("catalog.yml")``, credentials left out unless
    ``include_credentials=True``); ``intake.open_catalog`` opens the file.
    """

    name = "zspy_dir"
    version = __version__

    #: Whether the folder was listed once (later loads refresh the listing).
    _loaded = False

    def _entry(self, info: StoreInfo) -> VerbatimEntry:
        args: dict[str, Any] = {
            "urlpath": info.url,
            "chunks": self._chunks,
            "storage_options": self._options,
        }
        if info.error is None:
            args["signal"] = info.signals[0]["signal"]
        return VerbatimEntry(
            name=info.name,
            description=store_line(info),
            driver=ZspySource,
            args=args,
            metadata=_metadata(info),
            catalog=self,
            getenv=False,
            getshell=False,
        )

    def _load(self) -> None:
        infos = find_stores(self.urlpath, self._options, refresh=self._loaded)
        self._loaded = True
        self._entries = {info.name: self._entry(info) for info in infos}
