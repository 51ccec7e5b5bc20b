"""Bounded decoding of chunk bytes: decompression and object codecs.

A chunk never decompresses into more bytes than its array declares for it (or
:attr:`~intake_zspy.format.limits.Limits.max_chunk_bytes` for object arrays), so a small
hostile chunk cannot allocate gigabytes, and a chunk that decodes into fewer bytes than
declared is an error rather than an uninitialised buffer (:func:`decompress`). The
stdlib compressors are streamed with an output bound; blosc, zstd and lz4, whose decoders
trust a size in the chunk's header, have that size checked first.

The object codecs ``msgpack2`` and ``json2`` are decoded here (:func:`decode_objects`),
not by numcodecs, whose decoders take the output shape and dtype from the chunk's own
bytes; the variable-length codecs have their item count checked.

The codecs themselves come from :func:`~intake_zspy.format.codecs.make_codec` (allow-list
and validated parameters); :class:`~intake_zspy.format.codecs.Pipeline` calls this module.
"""

from __future__ import annotations

import bz2
import json
import lzma
import math
import struct
import zlib
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
from numcodecs.abc import Codec

from intake_zspy.format.limits import get_limits

__all__ = ["decode_objects", "decompress"]


class _Overflow(ValueError):
    """A chunk decodes into more bytes than it may."""


def _stream(decompressor_factory: Callable[[], Any], raw: bytes, bound: int, multi: bool) -> bytes:
    """Decompress with a stdlib decompressor, never producing more than ``bound`` bytes.

    ``multi``: concatenated streams (gzip members, bz2 streams) are decoded in turn.
    """
    parts: list[bytes] = []
    size = 0
    data = raw
    while True:
        d = decompressor_factory()
        out = d.decompress(data, bound - size + 1)
        size += len(out)
        parts.append(out)
        if size > bound:
            raise _Overflow(f"decompresses to more than the {bound} bytes declared")
        if not d.eof:
            raise ValueError("compressed stream is truncated")
        data = d.unused_data
        if not data:
            return b"".join(parts)
        if not multi:
            raise ValueError(f"{len(data)} bytes after the end of the compressed stream")


def _zstd_content_size(raw: bytes) -> int:
    """The decoded size a zstd frame header announces (numcodecs always writes it)."""
    if len(raw) < 6 or raw[:4] != b"\x28\xb5\x2f\xfd":
        raise ValueError("not a zstd frame")
    descriptor = raw[4]
    fcs_flag, single = descriptor >> 6, (descriptor >> 5) & 1
    offset = 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0:
        raise ValueError("zstd frame without a content size")
    if len(raw) < offset + size:
        raise ValueError("truncated zstd frame header")
    value = int.from_bytes(raw[offset : offset + size], "little")
    return value + 256 if size == 2 else value


def _blosc_sizes(raw: bytes) -> int:
    """Blosc trusts its 16-byte header: check it against the buffer, return ``nbytes``."""
    if len(raw) < 16:
        raise ValueError(f"{len(raw)} bytes, shorter than a blosc header")
    nbytes, _, cbytes = struct.unpack_from("<III", raw, 4)
    if cbytes != len(raw):
        raise ValueError(f"blosc header announces {cbytes} bytes, found {len(raw)}")
    return int(nbytes)


def _announced(codec: Codec, raw: bytes) -> int | None:
    """The decoded size the compressed bytes announce, for codecs whose decoder trusts it."""
    codec_id = codec.codec_id
    if codec_id == "blosc":
        return _blosc_sizes(raw)
    if codec_id == "zstd":
        return _zstd_content_size(raw)
    if codec_id == "lz4":
        if len(raw) < 4:
            raise ValueError("lz4 chunk shorter than its header")
        return int(struct.unpack_from("<I", raw)[0])
    return None


def decompress(codec: Codec, raw: bytes, expected: int | None, out: np.ndarray | None) -> Any:
    """Decompress ``raw``: exactly ``expected`` bytes when known, else at most the limit.

    ``out`` (a C-contiguous array of ``expected`` bytes) receives the bytes directly when
    the codec can decode in place.
    """
    bound = expected if expected is not None else get_limits().max_chunk_bytes
    announced = _announced(codec, raw)
    if announced is not None:
        if expected is not None and announced != expected:
            raise ValueError(f"decodes to {announced} bytes, expected {expected}")
        if announced > bound:
            raise _Overflow(f"announces {announced} bytes, more than the limit of {bound}")
        if out is not None:
            codec.decode(raw, out=out.reshape(-1).view(np.uint8))
            return out
        return codec.decode(raw)
    codec_id = codec.codec_id
    if codec_id == "zlib":
        data = _stream(zlib.decompressobj, raw, bound, multi=False)
    elif codec_id == "gzip":
        data = _stream(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), raw, bound, multi=True)
    elif codec_id == "bz2":
        data = _stream(bz2.BZ2Decompressor, raw, bound, multi=True)
    elif codec_id == "lzma":
        fmt, filters = codec.format, codec.filters
        if fmt == lzma.FORMAT_RAW:
            d = lzma.LZMADecompressor(format=fmt, filters=filters)
            data = d.decompress(raw, bound + 1)
            if len(data) > bound:
                raise _Overflow(f"decompresses to more than the {bound} bytes declared")
        else:
            data = _stream(lambda: lzma.LZMADecompressor(format=fmt), raw, bound, multi=True)
    else:  # pragma: no cover - every compressor is handled above
        raise AssertionError(codec_id)
    if expected is not None and len(data) != expected:
        raise ValueError(f"decodes to {len(data)} bytes, expected {expected}")
    return data


# -- object codecs -----------------------------------------------------------------------------


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


def _items_with_trailer(items: Any, count: int) -> list[Any]:
    """The elements of a msgpack2/json2 chunk ``[*items, dtype, shape]``, in C order.

    The items are nested lists following the chunk's shape (one level per dimension);
    each level must have exactly the declared length.
    """
    if not isinstance(items, list) or len(items) < 2:
        raise ValueError("not a list of items followed by dtype and shape")
    dtype, shape = items[-2], items[-1]
    if dtype not in ("|O", b"|O"):
        raise ValueError(f"object chunk declares dtype {dtype!r}, expected '|O'")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise ValueError(f"object chunk declares shape {shape!r}")
    if math.prod(shape) != count:
        raise ValueError(f"object chunk declares shape {shape}, expected {count} items")
    body = items[:-2]
    if not shape:
        if len(body) != 1:
            raise ValueError(f"{len(body)} items for a 0-d chunk")
        return body
    leaves: list[Any] = []
    _flatten(body, shape, leaves)
    return leaves


def _flatten(level: Any, shape: list[int], leaves: list[Any]) -> None:
    if not isinstance(level, list) or len(level) != shape[0]:
        found = len(level) if isinstance(level, list) else type(level).__name__
        raise ValueError(f"object chunk has {found} items where its shape needs {shape[0]}")
    if len(shape) == 1:
        leaves.extend(level)
        return
    for item in level:
        _flatten(item, shape[1:], leaves)


def decode_objects(codec: Codec, buf: Any, count: int) -> np.ndarray:
    codec_id = codec.codec_id
    data = bytes(memoryview(buf).cast("B")) if not isinstance(buf, bytes) else buf
    if codec_id in ("vlen-array", "vlen-utf8", "vlen-bytes"):
        if len(data) < 4:
            raise ValueError("variable-length chunk shorter than its header")
        announced = struct.unpack_from("<I", data)[0]
        if announced != count:
            raise ValueError(f"chunk holds {announced} items, expected {count}")
        return np.asarray(codec.decode(data), dtype=object).reshape(-1)
    config = codec.get_config()
    if codec_id == "msgpack2":
        items = msgpack.unpackb(data, raw=config["raw"], use_list=True, ext_hook=_refuse_ext)
    else:  # json2
        items = json.loads(data.decode(config["encoding"]), strict=config["strict"])
    items = _items_with_trailer(items, count)
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):  # element by element: lists must stay lists
        out[i] = item
    return out
