"""Catalog entries that hand what a store says to the source as it is.

intake v1 renders every string of an entry's arguments and metadata as a jinja2 template
when the entry is opened (``cat[name]``), and does so again for catalogs read from YAML.
The strings of our entries come from the stores: titles, signal names, key names of a
bucket, error messages quoting a file. Rendered, a title such as
``{{ cycler.__init__.__globals__.os.system(...) }}`` runs code in the reader's process, and
an honest title with ``{{`` in it is changed. So the entries the catalogs build never go
through jinja2 (:class:`VerbatimEntry`, which also spares the ~13 ms per entry the rendering
cost), and a saved catalog writes store strings so that rendering gives them back
unchanged (:func:`escape_templates`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intake.catalog.local import LocalCatalogEntry

__all__ = ["VerbatimEntry", "escape_templates"]

#: What opens a jinja2 block, expression or comment, or makes it change a string.
_OPENERS = ("{{", "{%", "{#")


class VerbatimEntry(LocalCatalogEntry):
    """A :class:`~intake.catalog.local.LocalCatalogEntry` whose arguments and metadata are
    passed to its source as they are, never rendered as templates.

    Keyword arguments given when opening the entry (``cat[name](signal=...)``) override the
    entry's arguments, as in intake; the entry has no user parameters to fill in.
    """

    def _create_open_args(self, user_parameters: dict[str, Any]) -> tuple[type, dict[str, Any]]:
        user_parameters.pop("plugin", None)
        metadata = _rebuilt(self._metadata)
        metadata["catalog_dir"] = self._catalog_dir
        args = {**_rebuilt(self._open_args), **user_parameters, "metadata": metadata}
        return self._plugin[0], args


def _escape(text: str) -> str:
    if not any(o in text for o in _OPENERS) and "\r" not in text and not text.endswith("\n"):
        return text
    # every "{" becomes an expression printing "{" (no block can start) and every carriage
    # return one printing it (jinja2 rewrites line ends); jinja2 drops one final newline
    escaped = text.replace("{", "{{ '{' }}").replace("\r", "{{ '\\r' }}")
    return escaped + "\n" if escaped.endswith("\n") else escaped


def _rebuilt(value: Any, text: Callable[[str], str] = str) -> Any:
    """``value`` with its dicts, lists and tuples rebuilt and ``text`` applied to every
    string in them (dict keys, which intake does not render, left as they are); other
    objects are shared, not copied: a storage option may hold one that cannot be (a
    session, a lock)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {k: _rebuilt(v, text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_rebuilt(v, text) for v in value)
    return value


def escape_templates(value: Any) -> Any:
    """``value`` with every string written so that intake's jinja2 rendering of a saved
    catalog gives the original string back (dicts and lists walked; dict keys, which
    intake does not render, left as they are)."""
    return _rebuilt(value, _escape)
