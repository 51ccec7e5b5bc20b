"""What a previous run drew, so that a re-run redraws only the stores that changed.

The state lives beside the page as ``.browse-state.json``: per store URL, the digest of
its listing (:attr:`~intake_zspy.catalog._listing.StoreInfo.digest`: key names, sizes
and ETags or modification times), the thumbnail drawn for it (or why none was) and the
preview settings. A store whose digest and settings are unchanged keeps its thumbnail.
Thumbnail file names are hashes of the store URL: nothing from a store's content ever
becomes a path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["STATE_FILE", "THUMBS", "Drawn", "State", "thumbnail_name"]

STATE_FILE = ".browse-state.json"
THUMBS = "thumbs"
_VERSION = 1


def thumbnail_name(url: str) -> str:
    """The thumbnail's path below the page's folder, from a hash of the store's URL."""
    return f"{THUMBS}/{hashlib.sha256(url.encode('utf-8', 'surrogatepass')).hexdigest()[:24]}.png"


@dataclass(frozen=True)
class Drawn:
    """The outcome of drawing one store: a thumbnail path, or the reason there is none."""

    digest: str
    settings: str
    thumbnail: str | None
    no_thumbnail: str = ""


class State:
    """The stores drawn by previous runs, by URL."""

    def __init__(self, entries: Mapping[str, Drawn] | None = None) -> None:
        self.entries: dict[str, Drawn] = dict(entries or {})

    @classmethod
    def parse(cls, raw: bytes | None) -> State:
        """The state saved by :meth:`dumps`; empty when missing, unreadable or outdated."""
        if not raw:
            return cls()
        try:
            doc = json.loads(raw)
            if doc.get("version") != _VERSION:
                return cls()
            return cls({url: Drawn(**d) for url, d in doc["stores"].items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()

    def dumps(self) -> bytes:
        """The state as JSON bytes."""
        doc: dict[str, Any] = {
            "version": _VERSION,
            "stores": {url: asdict(d) for url, d in sorted(self.entries.items())},
        }
        return json.dumps(doc, indent=1).encode()

    def reusable(self, url: str, digest: str, settings: str) -> Drawn | None:
        """What was drawn for ``url`` if the store and the settings are unchanged."""
        old = self.entries.get(url)
        if old is None or not digest or old.digest != digest or old.settings != settings:
            return None
        return old

    def stale_thumbnails(self, urls: set[str]) -> list[str]:
        """Thumbnails of stores that are gone or were redrawn under another name."""
        keep = {d.thumbnail for u, d in self.entries.items() if u in urls}
        return sorted(
            d.thumbnail
            for u, d in self.entries.items()
            if u not in urls and d.thumbnail and d.thumbnail not in keep
        )
