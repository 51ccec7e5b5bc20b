"""Build small zspy stores for tests with the library's own encoder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from intake_zspy.format.dicts import encode_dictionary, encode_signal_dict
from intake_zspy.format.hierarchy import ItemEncoder
from intake_zspy.storage import KeyInfo, KeyValueStore


def uniform_axis(
    size: int,
    name: str | None = None,
    units: str | None = None,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    navigate: bool = True,
    is_binned: bool = False,
) -> dict[str, Any]:
    return {
        "_type": "UniformDataAxis",
        "name": name,
        "units": units,
        "navigate": navigate,
        "is_binned": is_binned,
        "size": size,
        "scale": scale,
        "offset": offset,
    }


def signal_dict(
    data: np.ndarray,
    axes: list[dict[str, Any]] | None = None,
    title: str = "test",
    signal_type: str = "",
    **extra: Any,
) -> dict[str, Any]:
    if axes is None:
        axes = [uniform_axis(n, navigate=i < data.ndim - 1) for i, n in enumerate(data.shape)]
    metadata = {"General": {"title": title}, "Signal": {"signal_type": signal_type}}
    metadata.update(extra.pop("metadata", {}))
    return {
        "data": data,
        "axes": axes,
        "metadata": metadata,
        "original_metadata": extra.pop("original_metadata", {}),
        "attributes": extra.pop("attributes", {"ragged": False}),
        "package": "hyperspy",
        "package_version": "2.5.0",
        **extra,
    }


def encode_store(
    signals: Mapping[str, Mapping[str, Any]],
    *,
    consolidated: bool = True,
    root_attrs: Mapping[str, Any] | None = None,
    models: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> dict[str, bytes]:
    """Every key of a zspy store holding ``signals`` (``{group name: signal dict}``)."""
    enc = ItemEncoder()
    attrs = (
        {"file_format": "ZSpy", "file_format_version": "3.3"} if root_attrs is None else root_attrs
    )
    enc.group("", attrs)
    enc.group("Experiments")
    for name, sig in signals.items():
        encode_signal_dict(enc, f"Experiments/{name}", sig)
    for name, (owner, model) in (models or {}).items():
        encode_dictionary(enc, f"Analysis/models/{name}", model, attrs={"_signal": owner})
    if models:
        enc.group("Analysis")
        enc.group("Analysis/models")
    items = dict(enc.items)
    if consolidated:
        items[".zmetadata"] = enc.consolidated()
    return items


def write_dir(items: Mapping[str, bytes], path: Path) -> Path:
    for key, value in items.items():
        target = path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


class CountingStore(KeyValueStore):
    """Wraps a real store and records every key requested (to prove reads are lazy)."""

    def __init__(self, inner: KeyValueStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.requested: list[str] = []

    def list(self) -> dict[str, KeyInfo]:
        return self.inner.list()

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        keys = list(keys)
        self.requested.extend(keys)
        return self.inner.get_many(keys)

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self.inner.put_many(items)

    def chunk_reads(self) -> list[str]:
        """The data chunk keys read so far, sorted."""
        return sorted(k for k in self.requested if "/data/" in k and not k.endswith(".zarray"))
