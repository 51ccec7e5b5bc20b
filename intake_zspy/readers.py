"""intake 2: the :class:`ZSpy` datatype and the readers that open it with xarray.

intake imports this module at start-up (``intake.imports`` entry point), which
registers the classes (intake finds datatypes and readers as subclasses of its base
classes) and publishes :class:`ZSpy` as ``intake.readers.datatypes.ZSpy`` as well.

>>> import intake
>>> data = intake.readers.datatypes.ZSpy("s3://bucket/run.zspy", storage_options={...})
>>> ds = data.to_reader("xarray:Dataset").read()            # doctest: +SKIP
>>> tree = data.to_reader("DataTree").read()                # doctest: +SKIP

The readers keep only JSON-serialisable arguments (the datatype's ``url`` and
``storage_options``, ``signal``, ``chunks``...) and open the store inside ``_read``, so
``reader.to_entry()`` can go into an intake 2 :class:`~intake.readers.entry.Catalog`
and its YAML file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import xarray as xr
from intake.readers import datatypes
from intake.readers.readers import BaseReader
from intake.readers.readers import recommend as recommend_readers

from intake_zspy.reader import open_dataset, open_datatree

__all__ = ["ZSpy", "ZspyDataTreeReader", "ZspyDatasetReader"]


class ZSpy(datatypes.FileData):
    """A HyperSpy ``.zspy`` store: a zarr format 2 hierarchy with ``Experiments/``.

    Recognised by :func:`intake.readers.datatypes.recommend` from a ``.zspy`` URL (a
    zip file or a directory) or from a directory listing that holds the
    ``Experiments`` group of the zspy layout.

    Parameters
    ----------
    url
        A local path or fsspec URL of the store (directory, zip file or prefix).
    storage_options
        Passed to fsspec.
    metadata
        Free-form metadata.
    """

    filepattern = r"\.zspy/?$"
    structure: ClassVar[set[str]] = {"array", "hierarchy"}
    contains: ClassVar[set[str]] = {r"(^|/)Experiments/?$"}

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(url=url, storage_options=storage_options, metadata=metadata)

    @property
    def possible_readers(self) -> dict[str, list[type]]:
        """Readers that can open this data, intake-zspy's first (Dataset, then DataTree).

        intake keeps readers in a set, so without this the order (and therefore what
        ``to_reader("xarray")`` picks) would vary between runs.
        """
        found: dict[str, list[type]] = recommend_readers(self)
        order: dict[type, int] = {ZspyDatasetReader: 0, ZspyDataTreeReader: 1}
        return {k: sorted(v, key=lambda cls: order.get(cls, 2)) for k, v in found.items()}


class _ZspyReader(BaseReader):
    """Shared by the readers below (implements nothing itself, so intake never offers it)."""

    imports: ClassVar[set[str]] = {"xarray", "intake_zspy"}

    @staticmethod
    def _options(data: ZSpy) -> Mapping[str, Any] | None:
        return data.storage_options or None


class ZspyDatasetReader(_ZspyReader):
    """One signal of a zspy store as an :class:`xarray.Dataset`.

    Keyword arguments (``signal``, ``chunks``, ``consolidated``, ...) go to
    :func:`intake_zspy.open_dataset`.
    """

    implements: ClassVar[set[type]] = {ZSpy}
    output_instance = "xarray:Dataset"
    func = "intake_zspy.reader:open_dataset"

    def _read(self, data: ZSpy, **kwargs: Any) -> xr.Dataset:
        """Open the store and return the (lazy) Dataset of one signal."""
        return open_dataset(data.url, storage_options=self._options(data), **kwargs)


class ZspyDataTreeReader(_ZspyReader):
    """Every signal of a zspy store as an :class:`xarray.DataTree`.

    Keyword arguments (``chunks``, ``consolidated``, ...) go to
    :func:`intake_zspy.open_datatree`.
    """

    implements: ClassVar[set[type]] = {ZSpy}
    output_instance = "xarray:DataTree"
    func = "intake_zspy.reader:open_datatree"

    def _read(self, data: ZSpy, **kwargs: Any) -> xr.DataTree:
        """Open the store and return the (lazy) DataTree of all its signals."""
        return open_datatree(data.url, storage_options=self._options(data), **kwargs)


# intake resolves datatypes by import name ("intake_zspy.readers:ZSpy" in catalogs) and
# finds readers by subclass; publishing the class next to intake's own datatypes also
# makes ``intake.readers.datatypes.ZSpy`` work, as for the built-in formats.
if getattr(datatypes, "ZSpy", ZSpy) is ZSpy:
    datatypes.ZSpy = ZSpy
