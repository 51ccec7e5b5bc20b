"""Any zarr 3 ``Store`` as a :class:`~intake_zspy.storage.KeyValueStore` (zarr's own I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from intake_zspy.errors import DamagedStoreError, StoreReadError
from intake_zspy.storage._keys import KeyInfo, check_key, checked_listing
from intake_zspy.storage._kinds import StoreKind
from intake_zspy.storage._stores import ZIP_ERRORS, KeyValueStore

__all__ = ["ZarrStoreAdapter"]


class ZarrStoreAdapter(KeyValueStore):
    """Adapt any :class:`zarr.abc.store.Store` (zarr's own I/O) to :class:`KeyValueStore`."""

    kind: StoreKind = "zarr"

    def __init__(self, store: Any) -> None:
        self.store = store
        self.url = str(store)
        self._listing: dict[str, KeyInfo] | None = None

    def _run(self, coro: Any) -> Any:
        from zarr.core.sync import sync

        return sync(coro)

    async def _opened(self) -> Any:
        if not self.store._is_open:
            await self.store._open()
        return self.store

    def list(self) -> dict[str, KeyInfo]:
        if self._listing is None:

            async def collect() -> list[str]:
                store = await self._opened()
                return [key async for key in store.list()]

            listing = {k: KeyInfo(None) for k in self._run(collect())}
            self._listing = checked_listing(listing, self.url)
        return self._listing

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        from zarr.core.buffer import default_buffer_prototype

        keys = [check_key(k, self.url) for k in keys]
        proto = default_buffer_prototype()

        async def fetch() -> list[Any]:
            store = await self._opened()
            return await asyncio.gather(*(store.get(k, prototype=proto) for k in keys))

        try:
            values = self._run(fetch())
        except ZIP_ERRORS as exc:
            raise DamagedStoreError(f"{self.url}: a key cannot be read: {exc}") from exc
        except OSError as exc:
            raise StoreReadError(f"{self.url}: reading failed: {exc}") from exc
        return {k: (None if v is None else v.to_bytes()) for k, v in zip(keys, values, strict=True)}

    def put_many(self, items: Mapping[str, bytes]) -> None:
        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()

        for key in items:
            check_key(key, self.url)

        async def put() -> None:
            store = await self._opened()
            await asyncio.gather(
                *(store.set(k, proto.buffer.from_bytes(v)) for k, v in items.items())
            )

        self._run(put())
        self._listing = None
