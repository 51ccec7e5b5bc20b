"""The intake v1 catalog ``zspy_cat``: one entry per signal of one zspy store."""

from __future__ import annotations

from intake_zspy import __version__
from intake_zspy.catalog._base import ZspyCatalogBase
from intake_zspy.catalog._entry import VerbatimEntry
from intake_zspy.format.decode import open_url
from intake_zspy.ops.summary import summarize_file, summary_line
from intake_zspy.source import ZspySource

__all__ = ["ZspyExperimentsCatalog"]


class ZspyExperimentsCatalog(ZspyCatalogBase):
    """The signals (``Experiments/<name>`` groups) of one zspy store, as a catalog.

    Each entry is a :class:`~intake_zspy.source.ZspySource` named like its
    ``Experiments/`` group, described from its title, signal type, dtype and shape, with
    a summary (axes with units) in its metadata. Only metadata is read.

    Parameters
    ----------
    urlpath
        The store, as for :func:`intake_zspy.open_dataset`.
    storage_options
        Passed to fsspec, and to every entry.
    chunks
        Given to every entry (see :class:`~intake_zspy.source.ZspySource`).
    metadata
        Catalog metadata; the store's format version is added as
        ``zspy_format_version``.
    **kwargs
        Passed to :class:`intake.catalog.Catalog` (``name``, ``ttl``, ...).

    Raises
    ------
    TypeError
        An argument has the wrong type.
    StoreNotFoundError, ZspyFormatError
        From loading: nothing at ``urlpath``, or not a zspy store.
    """

    name = "zspy_cat"
    version = __version__

    def _load(self) -> None:
        file = open_url(self.urlpath, self._options or None)
        with file.store:
            summaries = summarize_file(file)
            self.metadata["zspy_format_version"] = file.format_version
        self._entries = {
            s["signal"]: VerbatimEntry(
                name=s["signal"],
                description=summary_line(s),
                driver=ZspySource,
                args={
                    "urlpath": self.urlpath,
                    "signal": s["signal"],
                    "chunks": self._chunks,
                    "storage_options": self._options,
                },
                metadata=dict(s),
                catalog=self,
                getenv=False,
                getshell=False,
            )
            for s in summaries
        }
