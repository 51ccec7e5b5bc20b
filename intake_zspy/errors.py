"""Exceptions and warnings raised by intake-zspy.

Every exception derives from :class:`ZspyError` and from the builtin a caller would
naturally catch (``ValueError``, ``KeyError``, ``FileNotFoundError``, ...), so both
``except ZspyError`` and ``except ValueError`` work. Messages name the store URL and the
path inside the store (array, group or key).

The tree::

    ZspyError
    ├── ZspyFormatError (ValueError)        the content is not a valid zspy store
    │   ├── IncompleteStoreError            left incomplete by an interrupted writer
    │   ├── UnsupportedCodecError           a codec outside the allow-list
    │   ├── ChunkDecodeError                a chunk's bytes do not decode as declared
    │   ├── DamagedStoreError               the container is damaged (zip CRC, zip directory)
    │   ├── UnsafePathError                 a key or name that would leave a store or target
    │   ├── LimitExceededError              a size or depth beyond the configured limits
    │   └── UnsupportedVersionError         a format version older than the ones read
    ├── PreviewError (ValueError)           a signal that cannot be previewed (ragged, text)
    ├── SignalNotFoundError (KeyError)      no such ``Experiments/`` signal
    ├── StoreNotFoundError (FileNotFoundError)
    ├── StoreExistsError (FileExistsError)
    └── StoreReadError (OSError)            a key exists but reading it failed (I/O)

    ZspyWarning (UserWarning)
    ├── StaleMetadataWarning
    ├── ZspyNameWarning                     a zip store named so that HyperSpy will not load it
    └── ZspyVersionWarning
"""

from __future__ import annotations

__all__ = [
    "ChunkDecodeError",
    "DamagedStoreError",
    "IncompleteStoreError",
    "LimitExceededError",
    "PreviewError",
    "SignalNotFoundError",
    "StaleMetadataWarning",
    "StoreExistsError",
    "StoreNotFoundError",
    "StoreReadError",
    "UnsafePathError",
    "UnsupportedCodecError",
    "UnsupportedVersionError",
    "ZspyError",
    "ZspyFormatError",
    "ZspyNameWarning",
    "ZspyVersionWarning",
    "ZspyWarning",
]


class ZspyError(Exception):
    """Base class of every error raised by intake-zspy."""


class ZspyFormatError(ZspyError, ValueError):
    """The store is not a valid zspy store (or not one this library understands)."""


class IncompleteStoreError(ZspyFormatError):
    """The store was left incomplete by an interrupted writer."""


class UnsupportedCodecError(ZspyFormatError):
    """An array names a compressor or filter outside the allow-list, or bad parameters."""


class ChunkDecodeError(ZspyFormatError):
    """A chunk exists but its bytes do not decode into the declared shape and dtype."""


class DamagedStoreError(ZspyFormatError):
    """The container is damaged: a zip directory or member cannot be read as stored."""


class UnsafePathError(ZspyFormatError):
    """A key or name would address something outside the store or the write target."""


class LimitExceededError(ZspyFormatError):
    """A document, array or chunk is larger (or deeper) than the configured limits.

    See :func:`intake_zspy.set_limits` to raise them for trusted data.
    """


class UnsupportedVersionError(ZspyFormatError):
    """The file declares a format version older than the ones intake-zspy reads; the
    message says which versions are supported."""


class PreviewError(ZspyError, ValueError):
    """The signal cannot be previewed: ragged data, data that is not numbers, no dims.

    The store itself is valid; see :func:`intake_zspy.preview.preview_figure`.
    """


class SignalNotFoundError(ZspyError, KeyError):
    """The requested signal (``Experiments/<name>``) is not in the store."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better.
        return str(self.args[0]) if self.args else ""


class StoreNotFoundError(ZspyError, FileNotFoundError):
    """Nothing exists at the URL (no file, directory, object or prefix)."""


class StoreExistsError(ZspyError, FileExistsError):
    """The write target exists and overwriting was not asked for."""


class StoreReadError(ZspyError, OSError):
    """A key of the store exists but could not be read (network or file system failure)."""


class ZspyWarning(UserWarning):
    """Base class of every warning issued by intake-zspy."""


class StaleMetadataWarning(ZspyWarning):
    """Consolidated metadata (``.zmetadata``) disagrees with the store; the store wins."""


class ZspyNameWarning(ZspyWarning):
    """A zip store is written under a name without ``.zspy``.

    HyperSpy's ``hs.load`` chooses its reader by extension, so it does not load such a
    file; intake-zspy reads it all the same.
    """


class ZspyVersionWarning(ZspyWarning):
    """The store declares a newer format version than this library knows."""
