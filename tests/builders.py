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


# -- the EELS spectrum image of the command line and preview tests ---------------------

EELS = "EELS SI - core-loss"
SHAPE = (6, 8, 32)
CHUNKS = (2, 4, 32)  # 3 x 2 chunks of whole spectra
X = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0])  # a non-uniform axis: a vector array


def eels_data() -> np.ndarray:
    energy = 280.0 + 0.5 * np.arange(SHAPE[2])
    spectrum = 1000 * np.exp(-(energy - 280) / 8) + 300 * (energy >= 290) * np.exp(
        -(energy - 290) / 10
    )
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    weight = 1 + 0.5 * np.sin(x / 2) * np.cos(y / 3)
    return (weight[..., None] * spectrum).astype("<f4")


def ragged_data() -> np.ndarray:
    data = np.empty((2, 3), dtype=object)
    for i, j in np.ndindex(2, 3):
        data[i, j] = np.arange(i + j + 1, dtype="<f8")
    return data


def build_store(path: Path, *, with_ragged: bool = True) -> Path:
    """A two-signal directory store: chunked EELS data (with a non-uniform axis, metadata
    arrays and a ragged metadata array) and a ragged signal."""
    hot = np.empty(3, dtype=object)
    hot[:] = [np.array([1, 2]), np.array([3]), np.array([4, 5, 6])]
    eels = signal_dict(
        eels_data(),
        [
            uniform_axis(SHAPE[0], "y", "nm", scale=0.5),
            {
                "_type": "DataAxis",
                "name": "x",
                "units": "nm",
                "navigate": True,
                "is_binned": False,
                "axis": X,
            },
            uniform_axis(
                SHAPE[2],
                "Energy loss",
                "eV",
                scale=0.5,
                offset=280.0,
                navigate=False,
                is_binned=True,
            ),
        ],
        title="EELS SI / core-loss",
        signal_type="EELS",
        metadata={
            "Signal": {"signal_type": "EELS", "quantity": "Intensity (counts)"},
            "Acquisition_instrument": {
                "TEM": {"beam_energy": 200.0, "tilts": np.array([0.0, 1.5])}
            },
        },
        original_metadata={"Detector": {"hot_pixels": hot, "names": ["a", "b"]}},
    )
    enc = ItemEncoder()
    enc.group("", {"file_format": "ZSpy", "file_format_version": "3.3"})
    enc.group("Experiments")
    encode_signal_dict(enc, f"Experiments/{EELS}", eels)
    enc.array(f"Experiments/{EELS}/data", eels_data(), chunks=CHUNKS)  # replaces the 1 chunk
    if with_ragged:
        axes = [uniform_axis(2, "y"), uniform_axis(3, "x")]
        encode_signal_dict(
            enc,
            "Experiments/ragged",
            signal_dict(ragged_data(), axes, title="ragged", attributes={"ragged": True}),
        )
    items = dict(enc.items)
    items[".zmetadata"] = enc.consolidated()
    return write_dir(items, path)


def image_store(path: Path) -> Path:
    """A stack of 3 images of 16 x 16 pixels: one navigation dim, a 2-D signal."""
    y, x = np.mgrid[0:16, 0:16]
    data = np.stack([np.exp(-((x - 8) ** 2 + (y - 5 - k) ** 2) / 20) for k in range(3)])
    axes = [
        uniform_axis(3, "time", "s", scale=2.0),
        uniform_axis(16, "y", "nm", scale=0.1, navigate=False),
        uniform_axis(16, "x", "nm", scale=0.1, navigate=False),
    ]
    sig = signal_dict(data.astype("<f4"), axes, title="spot drift", signal_type="")
    return write_dir(encode_store({"spot drift": sig}), path)


def read_png(png: Path | bytes) -> np.ndarray:
    """A PNG (file or bytes) as grey levels in [0, 1] (rows, columns)."""
    import io

    from matplotlib.image import imread

    rgba = imread(io.BytesIO(png) if isinstance(png, bytes) else png)
    assert rgba.dtype == np.float32
    return np.asarray(rgba[..., :3].mean(axis=-1))


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
