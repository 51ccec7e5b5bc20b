"""One conformance suite for every :class:`~intake_zspy.storage.KeyValueStore` kind.

In the spirit of zarr-python's ``zarr.testing.store.StoreTests``: the tests are written once,
in :class:`StoreConformance` (reading, keys, listings), :class:`WritableStoreConformance`
(``put_many``), :class:`ReadOnlyStoreConformance` (refused writes) and
:class:`TargetConformance` (a store written through :func:`~intake_zspy.storage.open_target`
reopens as the same kind). A test module subclasses them once per kind of storage, with a
``backend`` fixture returning a :class:`Backend`: what puts keys on that storage with the
storage's own tools (never through the store under test, and without checking the names,
so hostile names can be planted) and opens the store over them.

Where a kind legitimately differs (no sizes in a zarr listing, digests only where the
storage computes them, a listing made when the store is opened), a class attribute says
so; no test is skipped for a kind. A known bug of a kind is a class attribute too (the
``*_bug`` ones): the reason of a strict xfail of the tests it breaks, for that kind only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import random
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest

from intake_zspy.errors import UnsafePathError
from intake_zspy.storage import (
    STORE_KINDS,
    KeyInfo,
    KeyValueStore,
    StoreKind,
    open_store,
    open_target,
)

#: What every store under test holds: documents, chunks, nested and deep keys, unicode,
#: characters that URLs and object stores treat specially, empty values.
ITEMS: dict[str, bytes] = {
    ".zgroup": b'{"zarr_format": 2}',
    ".zattrs": b'{"file_format": "ZSpy"}',
    "Experiments/sig/data/.zarray": b'{"shape": [4]}',
    "Experiments/sig/data/0": bytes(range(256)) * 3,
    "Experiments/sig/data/1": b"\x00" * 17,
    "a/b/c/d/e/f/g": b"deep",
    "a/b/sibling": b"beside a directory",
    "ünïcødé/名前/ключ": "値".encode(),
    "with space/plus+eq=pct%25 tilde~ at@ comma,": b"odd characters",
    "empty": b"",
    "dir/empty-value": b"",
}

#: Keys no store may accept, hand out or list: each could address something outside it.
UNSAFE_KEYS: list[Any] = [
    "",
    ".",
    "..",
    "../x",
    "a/../b",
    "a/..",
    "./a",
    "a/./b",
    "a/.",
    "/abs",
    "/",
    "a//b",
    "a/",
    "a\\b",
    "..\\x",
    "a\0b",
    "C:x",
    "c:/x",
    "Z:\\x",
    b"a",
    None,
    1,
]

#: A name a store may hold on any storage and still be refused: a backslash (a separator
#: on Windows).
HOSTILE_NAME = "sub/a\\b"

#: Keys that are not there: absent, under an absent directory, a directory that holds
#: keys, below a key (a file on a filesystem).
MISSING_KEYS = ["missing", "nope/deeper/key", "a", "a/b", "Experiments/sig/data", "empty/below"]


def md5(value: bytes) -> str:
    return f"md5:{hashlib.md5(value).hexdigest()}"


def crc32(value: bytes) -> str:
    return f"crc32:{zlib.crc32(value) & 0xFFFFFFFF:08x}"


DIGESTS = {"md5": md5, "crc32": crc32}


class Backend(ABC):
    """One kind of storage: where the store is, how to put keys there and open it."""

    #: The store's ``url`` once opened, and the storage options it is opened with.
    url: str
    options: dict[str, Any] | None = None

    @abstractmethod
    def plant(self, items: Mapping[str, bytes]) -> None:
        """Add ``items`` with the storage's own tools (names unchecked, as given)."""

    @abstractmethod
    def plant_directory(self, name: str) -> None:
        """Add what the storage uses for an (empty) directory ``name``, if it has one."""

    def open(self, prefetch: Sequence[str] = ()) -> KeyValueStore:
        """Open the store as a reader does: by URL (``prefetch`` only where opened so)."""
        return open_store(self.url, self.options, prefetch=prefetch)

    @abstractmethod
    def snapshot(self) -> object:
        """Everything the storage holds for the store, to prove it unchanged."""

    def open_files(self) -> list[str]:
        """The local files of the storage this process holds open (none if not local)."""
        return []

    def fresh(self) -> KeyValueStore:
        """A new, empty store to write into (writable kinds only)."""
        raise NotImplementedError

    def target(self) -> tuple[str, dict[str, Any], StoreKind | None]:
        """A new URL, storage options and ``store_type`` to write a store to (target kinds
        only)."""
        raise NotImplementedError


def known_bug(request: pytest.FixtureRequest, reason: str | None) -> None:
    """Expect the test to fail with an assertion, for ``reason``, when a kind has the bug."""
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason))


def files_open_under(root: Path) -> list[str]:
    """The files under ``root`` this process holds open."""
    prefix = f"{os.path.realpath(root)}{os.sep}"
    if os.path.isdir("/proc/self/fd"):
        paths = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                paths.append(os.readlink(f"/proc/self/fd/{fd}"))
    else:  # pragma: no cover - not Linux
        import psutil

        paths = [f.path for f in psutil.Process().open_files()]
    return sorted(p for p in paths if p.startswith(prefix))


def refused(call: Any, keys: Sequence[Any]) -> list[Any]:
    """The keys for which ``call(key)`` did not raise :class:`UnsafePathError`."""
    accepted = []
    for key in keys:
        try:
            call(key)
        except UnsafePathError:
            continue
        accepted.append(key)
    return accepted


class StoreConformance:
    """Reading: listings, values, missing keys, unsafe keys, pickling, closing."""

    #: The :data:`~intake_zspy.storage.StoreKind` of the store.
    kind: ClassVar[StoreKind]
    #: Whether the listing gives sizes (``KeyInfo.size``) and ``sizes()`` hands it out.
    sizes_known: ClassVar[bool] = True
    #: The content hash the listing carries (``"md5"``, ``"crc32"``), if any.
    digest: ClassVar[str | None] = None
    #: Whether the store is listed when opened (``sizes()`` is not ``None`` at once).
    listed_on_open: ClassVar[bool] = False
    #: Whether the store is opened from a URL (``open_store(url, prefetch=...)``).
    by_url: ClassVar[bool] = True
    #: Known bugs of the kind (``None``: none), each the ``reason`` of a strict xfail: unsafe
    #: ``prefetch`` keys not refused; "folder" entries listed as keys; files left open by
    #: ``close()``.
    prefetch_bug: ClassVar[str | None] = None
    directory_bug: ClassVar[str | None] = None
    close_bug: ClassVar[str | None] = None

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("each kind defines its backend fixture")

    @pytest.fixture
    def store(self, backend: Backend) -> Iterator[KeyValueStore]:
        backend.plant(ITEMS)
        with backend.open() as store:
            yield store

    # -- what the store is -----------------------------------------------------------------

    def test_kind(self, store: KeyValueStore) -> None:
        assert store.kind in STORE_KINDS
        assert store.kind == self.kind

    def test_url(self, store: KeyValueStore, backend: Backend) -> None:
        assert isinstance(store.url, str)
        assert store.url == backend.url

    def test_is_a_key_value_store(self, store: KeyValueStore) -> None:
        assert isinstance(store, KeyValueStore)

    # -- listing ---------------------------------------------------------------------------

    def test_list_is_what_was_written(self, store: KeyValueStore) -> None:
        listing = store.list()
        assert sorted(listing) == sorted(ITEMS)
        assert all(isinstance(info, KeyInfo) for info in listing.values())

    def test_directories_are_not_keys(
        self, backend: Backend, request: pytest.FixtureRequest
    ) -> None:
        known_bug(request, self.directory_bug)
        backend.plant(ITEMS)
        for name in ("emptydir", "nested/emptydir", "a/b", "Experiments"):
            backend.plant_directory(name)
        with backend.open() as store:
            assert sorted(store.list()) == sorted(ITEMS)

    def test_list_is_made_once(self, store: KeyValueStore, backend: Backend) -> None:
        first = store.list()
        backend.plant({"late": b"written behind the store's back"})
        assert store.list() == first  # documented: one listing, cached

    def test_sizes_before_listing(self, store: KeyValueStore) -> None:
        sizes = store.sizes()
        if self.listed_on_open:
            assert sizes is not None
            assert sorted(sizes) == sorted(ITEMS)
        else:
            assert sizes is None  # never lists on its own

    def test_sizes_are_byte_lengths(self, store: KeyValueStore) -> None:
        listing = store.list()
        if self.sizes_known:
            assert {k: info.size for k, info in listing.items()} == {
                k: len(v) for k, v in ITEMS.items()
            }
            assert store.sizes() == listing
        else:
            assert {info.size for info in listing.values()} == {None}
            assert store.sizes() is None

    def test_digests(self, store: KeyValueStore) -> None:
        digests = {k: info.digest for k, info in store.list().items()}
        if self.digest is None:
            assert set(digests.values()) == {None}
        else:
            expected = DIGESTS[self.digest]
            assert digests == {k: expected(v) for k, v in ITEMS.items()}

    def test_stored_hostile_name_is_refused(self, backend: Backend) -> None:
        backend.plant({**ITEMS, HOSTILE_NAME: b"x"})
        with pytest.raises(UnsafePathError, match="not a safe relative path"):
            backend.open().list()

    # -- reading ---------------------------------------------------------------------------

    def test_get_returns_each_value(self, store: KeyValueStore) -> None:
        for key, value in ITEMS.items():
            got = store.get(key)
            assert type(got) is bytes, key
            assert got == value, key

    def test_get_missing_is_none(self, store: KeyValueStore) -> None:
        assert {k: store.get(k) for k in MISSING_KEYS} == dict.fromkeys(MISSING_KEYS)

    def test_get_many_returns_every_key(self, store: KeyValueStore) -> None:
        keys = [*ITEMS, *MISSING_KEYS]
        random.Random(0).shuffle(keys)
        got = store.get_many(keys)
        assert set(got) == set(keys)
        assert got == {**ITEMS, **dict.fromkeys(MISSING_KEYS)}
        assert all(type(v) is bytes for k, v in got.items() if k in ITEMS)

    def test_get_many_of_nothing(self, store: KeyValueStore) -> None:
        assert store.get_many([]) == {}

    def test_get_many_takes_any_iterable(self, store: KeyValueStore) -> None:
        keys = ["a/b/c/d/e/f/g", "missing", "empty"]
        assert store.get_many(k for k in keys) == {
            "a/b/c/d/e/f/g": b"deep",
            "missing": None,
            "empty": b"",
        }

    def test_get_many_with_a_repeated_key(self, store: KeyValueStore) -> None:
        assert store.get_many([".zgroup", ".zgroup", "missing", "missing"]) == {
            ".zgroup": ITEMS[".zgroup"],
            "missing": None,
        }

    def test_large_values_and_many_keys(self, backend: Backend) -> None:
        rng = random.Random(41)
        big = {f"big/{i}": rng.randbytes(3 * 2**20 + i) for i in range(2)}
        small = {f"small/{i // 10}/{i % 10}": rng.randbytes(i) for i in range(120)}
        backend.plant({**big, **small})
        with backend.open() as store:
            assert store.get_many(big) == big  # large: read concurrently by some kinds
            assert store.get_many(small) == small
            listing = store.list()
            assert sorted(listing) == sorted({**big, **small})

    def test_concurrent_readers(self, store: KeyValueStore) -> None:
        keys = [*ITEMS, "missing"]
        barrier = threading.Barrier(4)

        def read(_: int) -> tuple[list[str], dict[str, bytes | None]]:
            barrier.wait(timeout=10)
            return sorted(store.list()), store.get_many(keys)

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(read, range(4)))
        for listed, values in results:
            assert listed == sorted(ITEMS)
            assert values == {**ITEMS, "missing": None}

    # -- unsafe keys -----------------------------------------------------------------------

    def test_get_refuses_unsafe_keys(self, store: KeyValueStore) -> None:
        assert refused(store.get, UNSAFE_KEYS) == []

    def test_get_many_refuses_unsafe_keys(self, store: KeyValueStore) -> None:
        assert refused(lambda k: store.get_many([".zgroup", k]), UNSAFE_KEYS) == []

    def test_put_many_refuses_unsafe_keys_first(
        self, store: KeyValueStore, backend: Backend
    ) -> None:
        """Checked before anything is written, on read-only kinds too."""
        before = backend.snapshot()
        assert refused(lambda k: store.put_many({"fine": b"1", k: b"2"}), UNSAFE_KEYS) == []
        assert backend.snapshot() == before

    def test_prefetch_refuses_unsafe_keys(
        self, backend: Backend, request: pytest.FixtureRequest
    ) -> None:
        known_bug(request, self.prefetch_bug)
        backend.plant(ITEMS)
        handed_out = {}
        for key in ["../x", "a/../b", "a//b", "a\\b", "/abs"]:
            try:
                store = backend.open(prefetch=[key]) if self.by_url else backend.open()
                handed_out[key] = store.get(key)
            except UnsafePathError:
                continue
        assert handed_out == {}

    # -- the store as an object ------------------------------------------------------------

    def test_pickles(self, store: KeyValueStore) -> None:
        listing = store.list()
        clone = pickle.loads(pickle.dumps(store))
        try:
            assert type(clone) is type(store)
            assert clone.kind == store.kind
            assert clone.url == store.url
            assert clone.list() == listing
            assert clone.get_many(ITEMS) == ITEMS
        finally:
            clone.close()
        assert store.get_many(ITEMS) == ITEMS  # the original is untouched

    def test_close_is_idempotent(self, backend: Backend) -> None:
        backend.plant(ITEMS)
        store = backend.open()
        assert store.get(".zgroup") == ITEMS[".zgroup"]
        store.close()
        store.close()

    def test_close_releases_files(self, backend: Backend, request: pytest.FixtureRequest) -> None:
        known_bug(request, self.close_bug)
        backend.plant(ITEMS)
        store = backend.open()
        assert store.get_many(ITEMS) == ITEMS
        store.list()
        store.close()
        assert backend.open_files() == []  # released by close(), not by the garbage collector

    def test_context_manager(self, backend: Backend) -> None:
        backend.plant(ITEMS)
        opened = backend.open()
        with opened as store:
            assert store is opened
            assert store.get(".zgroup") == ITEMS[".zgroup"]
        store.close()  # closing again after the block is harmless


class WritableStoreConformance(StoreConformance):
    """``put_many``: what is written is listed and read back, at once."""

    #: ``None``, or the reason why a prefetched value outlives a write (a known bug).
    prefetch_stale_bug: ClassVar[str | None] = None

    def test_put_many_into_a_fresh_store(self, backend: Backend) -> None:
        with backend.fresh() as store:
            store.put_many(ITEMS)
            assert sorted(store.list()) == sorted(ITEMS)
            assert store.get_many(ITEMS) == ITEMS
            if self.sizes_known:
                assert {k: i.size for k, i in store.list().items()} == {
                    k: len(v) for k, v in ITEMS.items()
                }

    def test_put_many_replaces_and_relists(self, store: KeyValueStore) -> None:
        store.list()
        store.put_many({".zgroup": b"{}", "new/key": b"new", "empty": b"now full"})
        assert store.get_many([".zgroup", "new/key", "empty"]) == {
            ".zgroup": b"{}",
            "new/key": b"new",
            "empty": b"now full",
        }
        assert sorted(store.list()) == sorted([*ITEMS, "new/key"])
        if self.sizes_known:
            assert store.list()[".zgroup"].size == 2

    def test_put_many_of_nothing(self, store: KeyValueStore, backend: Backend) -> None:
        before = backend.snapshot()
        store.put_many({})
        assert backend.snapshot() == before

    def test_written_keys_reopen(self, store: KeyValueStore, backend: Backend) -> None:
        store.put_many({"written/by/put_many": b"\x00\xff", "empty-too": b""})
        with backend.open() as again:
            assert again.get_many(["written/by/put_many", "empty-too"]) == {
                "written/by/put_many": b"\x00\xff",
                "empty-too": b"",
            }
            assert sorted(again.list()) == sorted([*ITEMS, "written/by/put_many", "empty-too"])

    def test_prefetched_value_does_not_outlive_a_write(
        self, backend: Backend, request: pytest.FixtureRequest
    ) -> None:
        known_bug(request, self.prefetch_stale_bug)
        backend.plant(ITEMS)
        prefetch = [".zattrs"] if self.by_url else []
        with backend.open(prefetch=prefetch) as store:
            store.put_many({".zattrs": b'{"rewritten": true}'})
            assert store.get(".zattrs") == b'{"rewritten": true}'


class ReadOnlyStoreConformance(StoreConformance):
    """A store that cannot be written refuses ``put_many`` and is left as it was."""

    #: What ``put_many`` raises (no error is documented for read-only stores).
    read_only_error: ClassVar[type[Exception]]

    def test_put_many_is_refused(self, store: KeyValueStore, backend: Backend) -> None:
        before = backend.snapshot()
        with pytest.raises(self.read_only_error):
            store.put_many({"new": b"1", ".zgroup": b"{}"})
        assert backend.snapshot() == before
        assert store.get("new") is None
        assert store.get(".zgroup") == ITEMS[".zgroup"]


class TargetConformance:
    """A store written through :meth:`WriteTarget.staging` reopens as this kind."""

    kind: ClassVar[StoreKind]

    def test_written_through_a_target_reopens(self, backend: Backend) -> None:
        url, options, store_type = backend.target()
        target = open_target(url, options, store_type)
        with target.staging(last=[".zgroup"]) as staging:
            staging.put_many(ITEMS)
        assert target.exists()
        with open_store(url, options) as store:
            assert store.kind == self.kind
            assert sorted(store.list()) == sorted(ITEMS)
            assert store.get_many(ITEMS) == ITEMS
