"""What the two intake v1 catalogs share: saving without credentials, and with the paths
of local stores relative to the saved file where they can be."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml
from intake.catalog.base import Catalog

from intake_zspy._args import Chunks, check_chunks, check_mapping, check_urlpath
from intake_zspy.catalog._entry import escape_templates
from intake_zspy.storage import strip_credentials

__all__ = ["CATALOG_DIR", "ZspyCatalogBase"]

#: How an intake YAML catalog names its own folder (intake renders it when opening).
CATALOG_DIR = "{{ CATALOG_DIR }}"


def _local_path(url: str) -> str | None:
    """The absolute local path ``url`` names, or ``None`` for a remote or chained URL."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif "://" in url or "::" in url:
        return None
    return os.path.abspath(os.path.expanduser(url))


def _saved_urlpath(urlpath: str, directory: str | None) -> str:
    """``urlpath`` as a saved catalog writes it, escaped for intake's template rendering:
    ``{{ CATALOG_DIR }}/...`` when it is a local path inside (or below) ``directory``,
    other local paths absolute, URLs unchanged."""
    path = _local_path(urlpath) if directory is not None else None
    if path is None or directory is None:
        return str(escape_templates(urlpath))
    try:
        inside = os.path.commonpath([path, directory]) == directory
    except ValueError:  # different drives (Windows)
        inside = False
    if not inside or path == directory:
        return str(escape_templates(path))
    relative = os.path.relpath(path, directory).replace(os.sep, "/")
    return f"{CATALOG_DIR}/{escape_templates(relative)}"


class ZspyCatalogBase(Catalog):
    """An intake catalog over a store or a folder of stores, whose YAML leaves storage
    credentials out unless asked."""

    def __init__(
        self,
        urlpath: str | os.PathLike[str],
        storage_options: Mapping[str, Any] | None = None,
        chunks: Chunks = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.urlpath = check_urlpath(urlpath)
        self._options = check_mapping("storage_options", storage_options)
        self._chunks = check_chunks(chunks)
        kwargs.setdefault("name", os.path.basename(self.urlpath.rstrip("/")) or self.urlpath)
        super().__init__(metadata=check_mapping("metadata", metadata), **kwargs)

    def _document(self, include_credentials: bool, directory: str | None = None) -> dict[str, Any]:
        """The catalog's YAML document. What came from the stores (paths, names, metadata)
        is escaped so that intake, rendering it as jinja2 when it opens the file, gets it
        back unchanged and runs nothing; ``storage_options`` are the user's own and left
        as they are. Local paths are written relative to ``directory`` when given."""
        doc: dict[str, Any] = yaml.safe_load(super().serialize())
        for entry in (doc.get("sources") or {}).values():
            args = entry.get("args") or {}
            options = args.pop("storage_options", None)
            urlpath = args.pop("urlpath", None)
            args = escape_templates(args)
            if isinstance(urlpath, str):
                args["urlpath"] = _saved_urlpath(urlpath, directory)
            if options is not None:
                keep = include_credentials or not options
                args["storage_options"] = options if keep else strip_credentials(options)[0]
            entry["args"] = args
            entry["metadata"] = escape_templates(entry.get("metadata") or {})
        return doc

    def serialize(self, include_credentials: bool = False) -> str:
        """The catalog as YAML.

        Parameters
        ----------
        include_credentials
            Keep credentials (``key``, ``secret``, ``token``, ``password``, ...) found in
            the entries' ``storage_options``. By default they are left out: whoever opens
            the catalog brings their own (environment, ``~/.aws``, ...).
        """
        doc = self._document(include_credentials)
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

    def save(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        include_credentials: bool = False,
    ) -> None:
        """Write the catalog as YAML to ``url`` (a path or fsspec URL).

        Saved to a local file, the entries' local stores inside (or below) the file's
        folder are written as ``{{ CATALOG_DIR }}/<relative path>``: the folder can move
        or be copied elsewhere and the catalog still opens with ``intake.open_catalog``.
        Other local stores are written as absolute paths, URLs as they are.

        Parameters
        ----------
        url
            Where to write.
        storage_options
            fsspec options for ``url``.
        include_credentials
            See :meth:`serialize`; off by default.
        """
        from fsspec import open_files

        destination = _local_path(url)
        directory = None if destination is None else os.path.dirname(destination)
        doc = self._document(include_credentials, directory)
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        with open_files([url], **(storage_options or {}), mode="wt")[0] as f:
            f.write(text)

    def _repr_html_(self) -> str:
        """The notebook view: one row per entry (title, signal type, shape, size, errors)."""
        from intake_zspy.archive._repr import catalog_html

        return catalog_html(str(self.name), str(self.urlpath), self._entries)
