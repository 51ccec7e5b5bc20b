"""What the two intake v1 catalogs share: saving without credentials."""

from __future__ import annotations

from typing import Any

import yaml
from intake.catalog.base import Catalog

from intake_zspy.storage import strip_credentials

__all__ = ["ZspyCatalogBase"]


class ZspyCatalogBase(Catalog):
    """An intake catalog whose YAML leaves storage credentials out unless asked."""

    def serialize(self, include_credentials: bool = False) -> str:
        """The catalog as YAML.

        Parameters
        ----------
        include_credentials
            Keep credentials (``key``, ``secret``, ``token``, ``password``, ...) found in
            the entries' ``storage_options``. By default they are left out: whoever opens
            the catalog brings their own (environment, ``~/.aws``, ...).
        """
        text: str = super().serialize()
        if include_credentials:
            return text
        doc = yaml.safe_load(text)
        for entry in (doc.get("sources") or {}).values():
            args = entry.get("args") or {}
            if args.get("storage_options"):
                args["storage_options"] = strip_credentials(args["storage_options"])[0]
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

    def save(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        include_credentials: bool = False,
    ) -> None:
        """Write the catalog as YAML to ``url`` (a path or fsspec URL).

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

        with open_files([url], **(storage_options or {}), mode="wt")[0] as f:
            f.write(self.serialize(include_credentials=include_credentials))
