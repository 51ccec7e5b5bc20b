"""Zip stores on object storage, opened from one ranged GET of their end.

A zip file keeps its directory at its end, and zspy writers put the consolidated
metadata (``.zmetadata``) last. A catalog of many zip stores therefore fetches the last
:data:`TAIL_BYTES` of every zip (from :func:`tail_start` to its size, known from the
listing: no HEAD) in the catalog's one concurrent ``fs.cat_ranges`` call, and opens each zip from those bytes: a small store is read
whole, a large one needs no further request unless a member it reads lies before the
tail (one ranged GET per block of :data:`BLOCK_BYTES` then).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import fsspec
from fsspec.implementations.zip import ZipFileSystem

from intake_zspy.errors import DamagedStoreError
from intake_zspy.storage._fsspec import FsspecStore

__all__ = ["TAIL_BYTES", "TailFile", "open_zip_from_tail", "tail_start"]

#: Bytes fetched from the end of each zip: its directory and last members.
TAIL_BYTES = 256 * 2**10
#: Bytes fetched at once for a read before the tail.
BLOCK_BYTES = 2**20


class TailFile(io.RawIOBase):
    """A read-only, seekable file of ``size`` bytes whose ``tail`` is already fetched;
    reads before the tail fetch ranges of ``path`` block by block."""

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, size: int, tail: bytes) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self.size = size
        self._blocks: list[tuple[int, bytes]] = [(size - len(tail), tail)]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _block(self, pos: int) -> tuple[int, bytes]:
        for start, data in self._blocks:
            if start <= pos < start + len(data):
                return start, data
        tail_start = self._blocks[0][0]
        end = min(pos + BLOCK_BYTES, tail_start if pos < tail_start else self.size)
        data = self.fs.cat_file(self.path, start=pos, end=end)
        self._blocks.append((pos, data))
        return pos, data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self._pos)
        done = 0
        while done < want:
            start, data = self._block(self._pos)
            piece = data[self._pos - start : self._pos - start + want - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done


def tail_start(size: int) -> int:
    """Where the fetched end of a zip of ``size`` bytes starts."""
    return max(0, size - TAIL_BYTES)


def open_zip_from_tail(
    fs: fsspec.AbstractFileSystem, path: str, url: str, size: int, tail: bytes
) -> FsspecStore:
    """A store over the zip ``path`` of ``fs`` opened from its fetched ``tail``.

    Raises
    ------
    DamagedStoreError
        The bytes are not a readable zip file.
    """
    try:
        zfs = ZipFileSystem(fo=TailFile(fs, path, size, tail), skip_instance_cache=True)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DamagedStoreError(f"{url}: damaged or truncated zip file: {exc}") from exc
    return FsspecStore(zfs, "", url)
