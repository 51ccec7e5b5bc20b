"""The one fetch-ahead pipeline: many keys in bounded batches, the next batch in flight
while the current one is used.

Reading arrays, verifying a store and copying one all need the same thing: every chunk
of a store, fetched in concurrent batches (one round trip each on remote storage),
bounded in stored bytes so that memory stays near two batches, with transfer and CPU
overlapping. :func:`batched` cuts the work into batches; :func:`fetch_ahead` fetches
them one step ahead of their use; :func:`fetch_window` keeps several smaller batches in
flight and hands each one over as soon as it lands, so that decoding starts with the
first chunks instead of waiting for a whole batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

__all__ = [
    "FETCHERS",
    "FETCH_BATCH",
    "FETCH_BYTES",
    "THREADS",
    "batched",
    "fetch_ahead",
    "fetch_window",
]

#: Keys fetched per round trip when reading many of them ...
FETCH_BATCH = 256
#: ... as long as their stored size stays within this budget. Chunks decode straight
#: into the result, so fetched bytes are what a read holds beyond it (two batches).
FETCH_BYTES = 64 * 2**20
#: Threads decoding (or otherwise using) fetched values.
THREADS = max(2, os.cpu_count() or 2)
#: Batches in flight at once in :func:`fetch_window` (each one is a round trip on
#: remote storage; the filesystem runs the keys of a batch concurrently).
FETCHERS = 4

T = TypeVar("T")
R = TypeVar("R")


def batched(
    items: Iterable[T],
    size_of: Callable[[T], int],
    count: int = FETCH_BATCH,
    max_bytes: int = FETCH_BYTES,
) -> Iterator[list[T]]:
    """Consecutive runs of ``items``: at most ``count`` items and ``max_bytes`` each.

    An item larger than ``max_bytes`` makes a batch of its own.
    """
    batch: list[T] = []
    size = 0
    for item in items:
        nbytes = size_of(item)
        if batch and (len(batch) >= count or size + nbytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += nbytes
    if batch:
        yield batch


def fetch_ahead(
    fetch: Callable[[list[str]], R],
    batches: Iterable[list[T]],
    key_of: Callable[[T], str],
) -> Iterator[tuple[list[T], R]]:
    """Yield each batch with what ``fetch`` returned for its keys, fetching the next
    batch meanwhile (in one background thread).

    Parameters
    ----------
    fetch
        Fetches a batch of keys, usually ``store.get_many``; a verifier passes one that
        records failures instead of raising.
    batches
        Batches of work items (see :func:`batched`); consumed one batch ahead.
    key_of
        The key of a work item.
    """
    todo = iter(batches)
    current = next(todo, None)
    if current is None:
        return
    with ThreadPoolExecutor(1) as fetcher:
        pending: Future[R] = fetcher.submit(fetch, [key_of(i) for i in current])
        while current is not None:
            fetched = pending.result()
            following = next(todo, None)
            if following is not None:
                pending = fetcher.submit(fetch, [key_of(i) for i in following])
            yield current, fetched
            current = following


def fetch_window(
    fetch: Callable[[list[str]], R],
    batches: Iterable[list[T]],
    key_of: Callable[[T], str],
    size_of: Callable[[T], int],
    max_bytes: int = FETCH_BYTES,
    fetchers: int = FETCHERS,
) -> Iterator[tuple[list[T], R]]:
    """Yield each batch with what ``fetch`` returned for its keys, in the order the
    fetches complete, with up to ``fetchers`` batches in flight.

    A batch is only started while the stored bytes of the batches in flight (or handed
    over and not yet given back by asking for the next one) stay within ``max_bytes``;
    one batch is always allowed. Small batches (see :func:`batched`) let the consumer
    start on the first values while the following ones are still on their way.

    Parameters
    ----------
    fetch
        Fetches a batch of keys, usually ``store.get_many``.
    batches
        Batches of work items; consumed as the byte budget allows.
    key_of
        The key of a work item.
    size_of
        The (estimated) stored size of a work item.
    max_bytes
        Budget of fetched but not yet consumed bytes.
    fetchers
        Most batches in flight at once.
    """
    todo = iter(batches)
    following = next(todo, None)
    if following is None:
        return
    pending: dict[Future[R], tuple[list[T], int]] = {}
    held = 0
    with ThreadPoolExecutor(max(1, fetchers)) as pool:
        while True:
            while following is not None and len(pending) < fetchers:
                nbytes = sum(size_of(item) for item in following)
                if pending and held + nbytes > max_bytes:
                    break
                future = pool.submit(fetch, [key_of(item) for item in following])
                pending[future] = (following, nbytes)
                held += nbytes
                following = next(todo, None)
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                batch, nbytes = pending.pop(future)
                try:
                    yield batch, future.result()
                finally:
                    held -= nbytes
