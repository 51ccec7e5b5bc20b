"""Exceptions and warnings raised by intake-zspy.

Every exception derives from :class:`ZspyError` and from the builtin a caller would
naturally catch (``ValueError``, ``KeyError``, ``FileExistsError``), so both
``except ZspyError`` and ``except ValueError`` work. Messages name the store URL and the
path inside the store.
"""

from __future__ import annotations

__all__ = [
    "ChunkDecodeError",
    "IncompleteStoreError",
    "SignalNotFoundError",
    "StaleMetadataWarning",
    "UnsupportedCodecError",
    "ZspyError",
    "ZspyFormatError",
    "ZspyVersionWarning",
]


class ZspyError(Exception):
    """Base class of every error raised by intake-zspy."""


class ZspyFormatError(ZspyError, ValueError):
    """The store is not a valid zspy store (or not one this library understands)."""


class IncompleteStoreError(ZspyFormatError):
    """The store was left incomplete by an interrupted writer."""


class UnsupportedCodecError(ZspyFormatError):
    """An array uses a compressor or filter that numcodecs cannot provide."""


class ChunkDecodeError(ZspyError, ValueError):
    """A chunk exists but its bytes cannot be decoded into the declared shape and dtype."""


class SignalNotFoundError(ZspyError, KeyError):
    """The requested signal (``Experiments/<name>``) is not in the store."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better.
        return str(self.args[0]) if self.args else ""


class StaleMetadataWarning(UserWarning):
    """Consolidated metadata (``.zmetadata``) disagrees with the store; the store wins."""


class ZspyVersionWarning(UserWarning):
    """The store declares a newer format version than this library knows."""
