"""Read-ahead for arrays read one chunk at a time (a dask graph: one task per chunk).

A dask task reads one stored chunk: on object storage that is one round trip per task,
and a threaded scheduler runs as many tasks as there are cores, so only that many
requests are in flight. When the chunks of an array are read in order (two neighbouring
chunks asked for), :class:`ReadAhead` starts fetching the chunks that follow, in C order
or backwards (the order dask often runs a graph in), while the tasks decode: up to :data:`~intake_zspy.format.fetch.FETCH_BYTES` of stored
bytes at a time, in a thread pool shared by every array of the process. A task finds its
chunk already fetched or on its way.

Only stores whose reads are round trips (keys under a prefix of an asynchronous fsspec
filesystem, such as S3) read ahead, and not inside a ``dask.distributed`` worker: the
scheduler hands neighbouring chunks to different workers, so a worker reading ahead
fetches chunks another worker reads (28 requests instead of 18 for the 16-chunk
4D-STEM store on 2 workers). Chunks fetched ahead and never asked for are held (within
the budget) until the array is garbage collected.
"""

from __future__ import annotations

import math
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from intake_zspy.format.fetch import FETCH_BYTES

if TYPE_CHECKING:
    from intake_zspy.format.arrays import V2Array
    from intake_zspy.storage import KeyValueStore

__all__ = ["ReadAhead", "in_distributed_worker", "reads_are_round_trips"]

#: Chunks fetched ahead at once, across all arrays of the process.
AHEAD_THREADS = 8

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(AHEAD_THREADS, thread_name_prefix="zspy-read-ahead")
        return _pool


def reads_are_round_trips(store: KeyValueStore) -> bool:
    """Whether reading a key of ``store`` is a network round trip worth overlapping."""
    fs = getattr(store, "fs", None)
    return getattr(store, "kind", None) == "prefix" and bool(getattr(fs, "async_impl", False))


def in_distributed_worker() -> bool:
    """Whether this thread runs a task of a ``dask.distributed`` worker."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


class ReadAhead:
    """Hands out the chunks of one array, fetching ahead of sequential readers.

    Parameters
    ----------
    array
        The array whose chunks are read.
    max_bytes
        Budget of chunks fetched ahead and not yet asked for (stored sizes when the store
        was listed, else the largest chunk seen so far).
    """

    def __init__(self, array: V2Array, max_bytes: int = FETCH_BYTES) -> None:
        meta = array.meta
        self.array = array
        self.max_bytes = max_bytes
        self.grid = tuple(math.ceil(s / c) for s, c in zip(meta.shape, meta.chunks, strict=True))
        self.count = math.prod(self.grid)
        self._lock = threading.Lock()
        self._ahead: dict[int, tuple[Future[bytes | None], int]] = {}
        self._asked: set[int] = set()
        # per direction of reading (C order up, or down as dask often runs a graph):
        # the last position fetched ahead or asked for
        self._front = {1: -1, -1: self.count}
        self._held = 0
        self._largest = 0  # the largest chunk seen: the estimate of unlisted sizes

    def _position(self, idx: tuple[int, ...]) -> int:
        pos = 0
        for i, n in zip(idx, self.grid, strict=True):
            pos = pos * n + i
        return pos

    def _index(self, pos: int) -> tuple[int, ...]:
        idx = []
        for n in reversed(self.grid):
            pos, i = divmod(pos, n)
            idx.append(i)
        return tuple(reversed(idx))

    def _key(self, pos: int) -> str:
        return f"{self.array.path}/{self.array.meta.chunk_key(self._index(pos))}"

    def _size(self, key: str) -> int:
        listing = self.array.store.sizes()
        info = listing.get(key) if listing is not None else None
        if info is not None and info.size is not None:
            return int(info.size)
        if self._largest:
            return self._largest
        meta = self.array.meta
        return math.prod(meta.chunks) * (64 if meta.is_object else int(meta.dtype.itemsize))

    def get(self, idx: tuple[int, ...], key: str) -> bytes | None:
        """The stored bytes of chunk ``idx`` (``None`` if missing)."""
        pos = self._position(idx)
        with self._lock:
            entry = self._ahead.pop(pos, None)
            if entry is not None:
                self._held -= entry[1]
            self._asked.add(pos)
            if pos - 1 in self._asked:
                self._fetch_ahead(pos, 1)
            elif pos + 1 in self._asked:
                self._fetch_ahead(pos, -1)
        raw = entry[0].result() if entry is not None else self.array.store.get(key)
        if raw is not None and len(raw) > self._largest:
            self._largest = len(raw)
        return raw

    def _fetch_ahead(self, pos: int, step: int) -> None:
        """Start fetching the chunks past ``pos`` (or past the front) in the direction
        ``step``, within the budget."""
        store = self.array.store
        front = self._front[step]
        nxt = (max(front, pos) if step > 0 else min(front, pos)) + step
        while 0 <= nxt < self.count:
            if nxt not in self._asked and nxt not in self._ahead:
                key = self._key(nxt)
                size = self._size(key)
                if self._ahead and self._held + size > self.max_bytes:
                    break
                self._ahead[nxt] = (_shared_pool().submit(store.get, key), size)
                self._held += size
            self._front[step] = nxt
            nxt += step
