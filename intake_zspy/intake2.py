"""intake 2: the :class:`ZSpy` datatype and the readers that open it with xarray.

This is the one module of the intake 2 API (datatypes and readers); the intake v1 API
lives in :mod:`intake_zspy.source` and :mod:`intake_zspy.catalog`. intake imports it at
start-up (``intake.imports`` entry point), which registers the classes (intake finds
datatypes and readers as subclasses of its base classes) and publishes :class:`ZSpy` as
``intake.readers.datatypes.ZSpy`` as well.

>>> import intake
>>> data = intake.readers.datatypes.ZSpy("s3://bucket/run.zspy", storage_options={...})
>>> ds = data.to_reader("xarray:Dataset").read()            # doctest: +SKIP
>>> tree = data.to_reader("DataTree").read()                # doctest: +SKIP
>>> ds = intake.auto_pipeline(data, "xarray:Dataset").read()  # doctest: +SKIP

The readers keep only JSON-serialisable arguments (the datatype's ``url`` and
``storage_options``, ``signal``, ``chunks``...) and open the store inside ``_read``, so
``reader.to_entry()`` can go into an intake 2 :class:`~intake.readers.entry.Catalog`
and its YAML file. ``storage_options`` travel with the datatype; a reader's own
``storage_options`` argument is merged over them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import xarray as xr
from intake.readers import datatypes
from intake.readers.readers import BaseReader
from intake.readers.readers import recommend as recommend_readers

from intake_zspy.reader import open_dataset, open_datatree

__all__ = ["HSpy", "ZSpy", "ZspyDataTreeReader", "ZspyDatasetReader"]


class ZSpy(datatypes.FileData):
    """A HyperSpy ``.zspy`` store: a zarr format 2 hierarchy with ``Experiments/``.

    Recognised by :func:`intake.readers.datatypes.recommend` from a ``.zspy`` URL (a
    zip file or a directory), from a directory listing that holds the ``Experiments``
    group of the zspy layout, and from the head of a zip file whose members include
    ``Experiments/...`` (a zip store of any name).

    intake 2.0.9 ranks what it recognises in three tiers, head bytes (:attr:`magic`)
    first, then MIME type, then the URL (:attr:`filepattern`, or :attr:`contains` for a
    directory, ranked by where the pattern matches). Within a tier it has no
    priority: equal matches come in the iteration order of a ``set`` of classes,
    which changes from run to run. A zspy directory is also a zarr group (``Zarr``
    matches its ``.zgroup`` in the same tier) and a zip store is claimed by every
    zip-based type (``Excel`` matches any ``PK`` head); ``ZSpy`` is always among the
    first matches but not always the first. Pass the datatype itself where it
    matters: ``intake.auto_pipeline(ZSpy(url, storage_options), "xarray:Dataset")``.

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
    #: A zip local file header (signature, 26 bytes of fields) naming an ``Experiments/``
    #: member: the zspy layout inside a zip store, whatever the file is called.
    magic: ClassVar[set[bytes | tuple[int | None, bytes]]] = {
        (None, rb"PK\x03\x04[\x00-\xff]{26}Experiments/")
    }

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


class HSpy(ZSpy):
    """A HyperSpy ``.hspy`` file (HDF5, same layout as zspy; needs ``intake-zspy[hspy]``).

    Recognised from a ``.hspy`` URL only: the HDF5 signature is shared by many formats.
    A :class:`ZSpy` subclass, so the same readers open it (intake cannot build a reader
    from a URL when the reader names several datatypes).
    """

    filepattern = r"\.hspy$"
    structure: ClassVar[set[str]] = {"array", "hierarchy"}
    contains: ClassVar[set[str]] = set()
    magic: ClassVar[set[bytes | tuple[int | None, bytes]]] = set()


class _ZspyReader(BaseReader):
    """Shared by the readers below (implements nothing itself, so intake never offers it)."""

    imports: ClassVar[set[str]] = {"xarray", "intake_zspy"}

    @staticmethod
    def _options(data: ZSpy, extra: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The datatype's ``storage_options`` with the reader's own (if any) over them."""
        options = {**(data.storage_options or {}), **(extra or {})}
        return options or None


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
        options = self._options(data, kwargs.pop("storage_options", None))
        return open_dataset(data.url, storage_options=options, **kwargs)


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
        options = self._options(data, kwargs.pop("storage_options", None))
        return open_datatree(data.url, storage_options=options, **kwargs)


# intake resolves datatypes by import name ("intake_zspy.intake2:ZSpy" in catalogs) and
# finds readers by subclass; publishing the class next to intake's own datatypes also
# makes ``intake.readers.datatypes.ZSpy`` work, as for the built-in formats.
if getattr(datatypes, "ZSpy", ZSpy) is ZSpy:
    datatypes.ZSpy = ZSpy
