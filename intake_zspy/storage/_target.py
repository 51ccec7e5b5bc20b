"""Write targets: a store built where it cannot be mistaken for a finished one, then put
in place in one step.

:func:`open_target` resolves where a store is written (:func:`~intake_zspy.storage.resolve`
with ``mode="w"``); :meth:`WriteTarget.staging` yields the store to write into and, once
the writer is done, replaces whatever was at the target: a local directory by one rename,
a zip file by one rename or one upload, a remote prefix by copying the staged keys over it
with the keys the caller names (the format's root documents) last.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import sys
import tempfile
import uuid
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import fsspec
from fsspec.implementations.local import LocalFileSystem

from intake_zspy.errors import ZspyNameWarning
from intake_zspy.storage._fsspec import FsspecStore
from intake_zspy.storage._kinds import StoreKind
from intake_zspy.storage._local import DirectoryStore
from intake_zspy.storage._resolve import Location, resolve
from intake_zspy.storage._stores import KeyValueStore

__all__ = ["WriteTarget", "open_target"]


def open_target(
    urlpath: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
    store_type: StoreKind | Literal["local"] | None = None,
) -> WriteTarget:
    """Where a store is written: see :func:`~intake_zspy.storage.resolve` (``mode="w"``).

    Warns
    -----
    ZspyNameWarning
        A zip store whose name does not end in ``.zspy``: HyperSpy's ``hs.load`` picks
        its reader by extension and would not load it.

    Raises
    ------
    TypeError, ValueError
        As :func:`~intake_zspy.storage.resolve`.
    """
    location = resolve(urlpath, storage_options, mode="w", store_type=store_type)
    name = posixpath.basename(location.path.rstrip("/"))
    if location.kind == "zip" and not name.lower().endswith(".zspy"):
        warnings.warn(
            f"{location.url}: HyperSpy's hs.load recognises zspy stores by the '.zspy' "
            f"extension and will not load {name!r}; write the zip store to a '.zspy' name "
            "with store_type='zip' (intake-zspy reads it either way)",
            ZspyNameWarning,
            stacklevel=_caller_outside_package(),
        )
    return WriteTarget(location)


def _caller_outside_package() -> int:
    """The ``stacklevel`` of the first caller outside intake-zspy, for a warning issued
    by :func:`open_target`: it then points at the user's line."""
    level, frame = 2, sys._getframe(2)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "intake_zspy."
    ):
        level, frame = level + 1, frame.f_back
    return level


class WriteTarget:
    """Where a store is written, and how it replaces what is there.

    ``kind`` is ``"directory"`` (local), ``"zip"`` (one file, any filesystem) or
    ``"prefix"`` (a key prefix on remote storage such as S3).
    """

    def __init__(self, location: Location) -> None:
        assert location.kind is not None  # resolve(mode="w") always decides it
        self.fs: fsspec.AbstractFileSystem = location.fs
        self.path = location.path
        self.url = location.url
        self.kind: StoreKind = location.kind

    def exists(self) -> bool:
        if isinstance(self.fs, LocalFileSystem):
            return os.path.lexists(self.path)
        return bool(self.fs.exists(self.path))

    def _sibling(self, suffix: str) -> str:
        parent, name = posixpath.split(self.path.rstrip("/"))
        return posixpath.join(parent, f".{name}.{suffix}-{uuid.uuid4().hex[:8]}")

    @contextlib.contextmanager
    def staging(self, last: Sequence[str] = ()) -> Iterator[KeyValueStore]:
        """A store to write into; on success it replaces the target, on error it is removed.

        Parameters
        ----------
        last
            Keys put in place after all others (zip members last, copied last over a
            prefix): a reader that sees them sees a complete store.
        """
        if self.kind == "zip":
            self._probe()  # the store is built locally first: fail now, not after that
            local = isinstance(self.fs, LocalFileSystem)
            parent = os.path.dirname(self.path) if local else None
            with tempfile.TemporaryDirectory(prefix=".intake-zspy-", dir=parent) as tmp:
                yield DirectoryStore(tmp, self.url)
                self._publish_zip(tmp, last)
            return
        if self.kind == "prefix" and not self.exists():
            # written in place: an interrupted write leaves a store the reader rejects,
            # a failed one is removed
            try:
                yield FsspecStore(self.fs, self.path, self.url)
            except BaseException:
                if self.fs.exists(self.path):
                    self.fs.rm(self.path, recursive=True)
                raise
            return
        staging = self._sibling("tmp")
        try:
            yield (
                DirectoryStore(staging, self.url)
                if self.kind == "directory"
                else FsspecStore(self.fs, staging, self.url)
            )
        except BaseException:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)
            raise
        if self.kind == "directory":
            self._swap_local(staging)
        else:
            self._replace_prefix(staging, last)

    def _probe(self) -> None:
        """Check that the target's location takes writes, leaving nothing behind."""
        if isinstance(self.fs, LocalFileSystem):
            parent = os.path.dirname(self.path) or "."
            try:
                os.makedirs(parent, exist_ok=True)
            except FileExistsError as exc:
                raise NotADirectoryError(f"{self.url}: {parent} is not a directory") from exc
            fd, probe = tempfile.mkstemp(prefix=".intake-zspy-probe-", dir=parent)
            os.close(fd)
            os.remove(probe)
            return
        probe = f"{self.path}.intake-zspy-probe-{uuid.uuid4().hex[:8]}"
        self.fs.pipe_file(probe, b"")
        self.fs.rm_file(probe)

    def _swap_local(self, staging: str) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        old = None
        if os.path.lexists(self.path):
            old = self._sibling("old")
            os.rename(self.path, old)
        os.rename(staging, self.path)
        if old is not None:
            if os.path.isdir(old) and not os.path.islink(old):
                shutil.rmtree(old)
            else:
                os.remove(old)

    def _replace_prefix(self, staging: str, last: Sequence[str]) -> None:
        """Copy a complete staged store over the old one, the ``last`` keys last (and
        removed first from the old one, which then reads as incomplete)."""
        tail = [f"{staging}/{k}" for k in last]
        keys = [k for k in self.fs.find(staging) if self.fs._strip_protocol(k) not in tail]
        gone = [f"{self.path}/{k}" for k in last if self.fs.exists(f"{self.path}/{k}")]
        if gone:  # s3fs refuses an empty list (an interrupted store lacks these keys)
            self.fs.rm(gone)
        self.fs.rm(self.path, recursive=True)
        rel = len(self.fs._strip_protocol(staging).rstrip("/")) + 1
        dest = [f"{self.path}/{self.fs._strip_protocol(k)[rel:]}" for k in keys]
        self.fs.copy(keys, dest)
        present = [k for k in last if self.fs.exists(f"{staging}/{k}")]
        self.fs.copy([f"{staging}/{k}" for k in present], [f"{self.path}/{k}" for k in present])
        self.fs.rm(staging, recursive=True)

    def _publish_zip(self, directory: str, last: Sequence[str]) -> None:
        """Zip a finished directory store and put it in place in one rename or one upload."""
        if isinstance(self.fs, LocalFileSystem):
            parent = os.path.dirname(self.path) or "."
            os.makedirs(parent, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", dir=parent)
            os.close(fd)
        else:
            fd, tmp = tempfile.mkstemp(suffix=".zip")
            os.close(fd)
        try:
            _zip_directory(directory, tmp, last)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private
            if isinstance(self.fs, LocalFileSystem):
                if os.path.isdir(self.path):
                    shutil.rmtree(self.path)
                os.replace(tmp, self.path)
            else:
                self.fs.put_file(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def _zip_directory(directory: str, dest: str, last: Sequence[str]) -> None:
    """Members stored uncompressed (chunks are already compressed), ``last`` ones last."""
    members = []
    for parent, _, files in os.walk(directory):
        for name in files:
            full = os.path.join(parent, name)
            members.append((os.path.relpath(full, directory).replace(os.sep, "/"), full))
    members.sort(key=lambda m: (m[0] in last, last.index(m[0]) if m[0] in last else 0, m[0]))
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for arcname, full in members:
            zf.write(full, arcname)
