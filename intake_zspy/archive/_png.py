"""Small thumbnails drawn with numpy alone: a line for 1-D sums, grey levels for 2-D ones.

A page of a thousand stores needs a thousand thumbnails: matplotlib takes about half a
second for each (layout, ticks, text), these take a millisecond. They carry no axes or
text; the page's row beside them says what they show.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["encode_png", "panel", "thumbnail_png"]

_BACKGROUND = 255
_LINE = np.array([31, 83, 153], dtype=np.uint8)
_GAP = 8
_FRAME = 215


def encode_png(rgb: NDArray[np.uint8]) -> bytes:
    """An 8-bit RGB image (rows, columns, 3) as PNG bytes."""
    height, width, _ = rgb.shape
    raw = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = rgb.reshape(height, 3 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def _scaled(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Values mapped to [0, 1] between their 0.5 and 99.5 percentiles (NaN -> 0)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros_like(values)
    lo, hi = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    span = hi - lo if hi > lo else 1.0
    scaled: NDArray[np.float64] = np.nan_to_num(np.clip((values - lo) / span, 0.0, 1.0))
    return scaled


def _line(values: NDArray[np.float64], width: int, height: int) -> NDArray[np.uint8]:
    out = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    if values.size == 0:
        return out
    x = np.linspace(0, values.size - 1, width)
    y = _scaled(np.interp(x, np.arange(values.size), values))
    rows = np.round((1 - y) * (height - 3)).astype(int) + 1
    for col in range(width):  # a continuous line: fill between neighbouring points
        a = rows[col]
        b = rows[col - 1] if col else a
        out[min(a, b) : max(a, b) + 1, col] = _LINE
    return out


def _image(values: NDArray[np.float64], width: int, height: int) -> NDArray[np.uint8]:
    out = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    rows, cols = values.shape
    if rows == 0 or cols == 0:
        return out
    scale = min(width / cols, height / rows)
    h, w = max(1, int(rows * scale)), max(1, int(cols * scale))
    yi = np.minimum((np.arange(h) / scale).astype(int), rows - 1)
    xi = np.minimum((np.arange(w) / scale).astype(int), cols - 1)
    grey = (_scaled(values)[np.ix_(yi, xi)] * 255).astype(np.uint8)
    top, left = (height - h) // 2, (width - w) // 2
    out[top : top + h, left : left + w] = grey[..., None]
    return out


def panel(values: NDArray[np.float64], width: int, height: int) -> NDArray[np.uint8]:
    """One panel: a line for 1-D values, an image (aspect kept) for 2-D ones."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        values = values.reshape(1)
    if values.ndim == 1:
        return _line(values, width, height)
    return _image(values.reshape(values.shape[-2:]) if values.ndim > 2 else values, width, height)


def thumbnail_png(panels: Sequence[NDArray[np.float64]], size: tuple[int, int]) -> bytes:
    """PNG of the panels side by side, ``size`` = (width, height) in pixels overall."""
    width, height = size
    n = max(1, len(panels))
    each = (width - _GAP * (n - 1)) // n
    out = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    for i, values in enumerate(panels):
        left = i * (each + _GAP)
        out[:, left : left + each] = panel(values, each, height)
        frame = out[:, left : left + each]  # a light frame around each panel
        frame[[0, -1], :] = _FRAME
        frame[:, [0, -1]] = _FRAME
    return encode_png(out)
