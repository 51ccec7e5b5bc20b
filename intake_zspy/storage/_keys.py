"""The keys of a store: what a listing tells about them, and which ones are safe.

Every store checks its keys with :func:`check_key` before using them: no store hands
out or accepts a key that would address anything outside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from intake_zspy.errors import UnsafePathError

__all__ = ["KeyInfo", "check_key", "checked_listing"]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a listing tells about one key.

    ``digest`` is a content hash the storage computed itself, when it has one:
    ``"md5:<hex>"`` (an S3 ETag of a single-part upload, a GCS ``md5Hash``) or
    ``"crc32:<hex>"`` (a zip member). It lets a reader check a document it already holds
    without fetching it again.
    """

    size: int | None
    digest: str | None = None


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_key(key: str, url: str) -> str:
    """``key`` if it is a safe relative key of a store, else :class:`UnsafePathError`.

    A safe key is relative, has no empty, ``.`` or ``..`` segment, no backslash, no NUL
    and no drive letter: it cannot address anything outside the store, on any storage,
    whatever it is later turned into (a local path when copying, an object key).
    """
    if (
        not isinstance(key, str)
        or not key
        or key.startswith("/")
        or "\\" in key
        or "\0" in key
        or _DRIVE.match(key)
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise UnsafePathError(
            f"{url}: key {key!r} is not a safe relative path (no '..', '.', empty segment, "
            "leading '/', backslash, NUL or drive); refusing the store"
        )
    return key


def checked_listing(listing: dict[str, KeyInfo], url: str) -> dict[str, KeyInfo]:
    """``listing`` itself once every key is checked with :func:`check_key`."""
    for key in listing:
        check_key(key, url)
    return listing
