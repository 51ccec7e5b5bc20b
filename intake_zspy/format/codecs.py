"""The codecs a zspy store may use: an allow-list, validated parameters, the decode pipeline.

A ``.zarray`` names its compressor and filters by id. Handing that id to
``numcodecs.get_codec`` would let the file choose any registered codec, including
``pickle`` (which runs code while decoding) and whatever third-party packages register.
Instead, each allowed id maps to a known numcodecs class, and every parameter is checked
for type and range before the class is instantiated. Anything else raises
:class:`~intake_zspy.errors.UnsupportedCodecError`, whatever the environment says.

The allow-list is what HyperSpy and zarr 2 write:

==============  =========================================================
compressors     ``blosc``, ``zstd``, ``gzip``, ``zlib``, ``bz2``, ``lzma``, ``lz4``
filters         ``shuffle``, ``delta``
object codecs   ``vlen-array``, ``vlen-utf8``, ``vlen-bytes``, ``msgpack2``, ``json2``
==============  =========================================================

:class:`Pipeline` decodes the chunks of one array with its codecs, compressor then
filters. Decoding is bounded: a chunk never decompresses into more bytes than the array
declares for it, and the object codecs ``msgpack2`` and ``json2`` are decoded without
trusting the chunk's own shape (:mod:`~intake_zspy.format.decompress`).
"""

from __future__ import annotations

import codecs
import lzma
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numcodecs
import numpy as np
from numcodecs.abc import Codec

from intake_zspy.errors import UnsupportedCodecError
from intake_zspy.format.decompress import decode_objects, decompress

# Chunks are decoded and encoded by intake-zspy's own thread pools (and dask's), so
# blosc must not start threads of its own: its global threaded mode serialises callers
# and oversubscribes the cores. zarr sets the same when it is imported; setting it here
# keeps speed independent of whether zarr happens to be imported.
numcodecs.blosc.use_threads = False

__all__ = [
    "COMPRESSORS",
    "FILTERS",
    "OBJECT_CODECS",
    "Pipeline",
    "make_codec",
]

COMPRESSORS = ("blosc", "zstd", "gzip", "zlib", "bz2", "lzma", "lz4")
FILTERS = ("shuffle", "delta")
OBJECT_CODECS = ("vlen-array", "vlen-utf8", "vlen-bytes", "msgpack2", "json2")

Validator = Callable[[Any], Any]
#: The default of a parameter that must be given.
_REQUIRED = object()


class _Invalid(ValueError):
    """A parameter failed validation (turned into UnsupportedCodecError by the caller)."""


def _int(lo: int, hi: int) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _Invalid(f"must be an integer in [{lo}, {hi}], not {value!r}")
        return value

    return check


def _optional(check: Validator) -> Validator:
    return lambda value: None if value is None else check(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, not {value!r}")
    return value


def _choice(*allowed: Any) -> Validator:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in allowed:
            raise _Invalid(f"must be one of {list(allowed)}, not {value!r}")
        return value

    return check


def _numeric_dtype(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 8:
        raise _Invalid(f"must be a numeric dtype string, not {value!r}")
    try:
        dtype = np.dtype(value)
    except TypeError as exc:
        raise _Invalid(f"{value!r} is not a dtype") from exc
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
        raise _Invalid(f"must be a numeric dtype, not {value!r}")
    return value


def _text_encoding(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 32:
        raise _Invalid(f"must be a text encoding name, not {value!r}")
    try:
        info = codecs.lookup(value)
    except LookupError as exc:
        raise _Invalid(f"unknown text encoding {value!r}") from exc
    if not getattr(info, "_is_text_encoding", True):
        raise _Invalid(f"{value!r} is not a text encoding")
    return value


def _separators(value: Any) -> tuple[str, str]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, str) and len(v) <= 8 for v in value)
    ):
        raise _Invalid(f"must be two short strings, not {value!r}")
    return (value[0], value[1])


def _lzma_filters(value: Any) -> list[dict[str, int]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= 4:
        raise _Invalid(f"must be null or a list of 1 to 4 filter objects, not {value!r}")
    checked = []
    for item in value:
        if not isinstance(item, dict) or "id" not in item:
            raise _Invalid(f"each filter must be an object with an 'id', not {item!r}")
        if not all(isinstance(k, str) for k in item) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in item.values()
        ):
            raise _Invalid(f"filter options must be non-negative integers: {item!r}")
        checked.append(dict(item))
    return checked


#: Every allowed codec: its numcodecs class and a validator (with default) per parameter.
_SPECS: dict[str, tuple[type[Codec], dict[str, tuple[Validator, Any]]]] = {
    "blosc": (
        numcodecs.Blosc,
        {
            "cname": (_choice("blosclz", "lz4", "lz4hc", "zlib", "zstd", "snappy"), "lz4"),
            "clevel": (_int(0, 9), 5),
            "shuffle": (_choice(-1, 0, 1, 2), 1),
            "blocksize": (_int(0, 2**31 - 1), 0),
            "typesize": (_optional(_int(1, 255)), None),
        },
    ),
    "zstd": (numcodecs.Zstd, {"level": (_int(-131072, 22), 0), "checksum": (_bool, False)}),
    "gzip": (numcodecs.GZip, {"level": (_int(0, 9), 1)}),
    "zlib": (numcodecs.Zlib, {"level": (_int(-1, 9), 1)}),
    "bz2": (numcodecs.BZ2, {"level": (_int(1, 9), 1)}),
    "lzma": (
        numcodecs.LZMA,
        {
            "format": (_choice(lzma.FORMAT_AUTO, lzma.FORMAT_XZ, lzma.FORMAT_ALONE, 3), 1),
            "check": (_int(-1, 15), -1),
            "preset": (_optional(_int(0, 2**31 + 9)), None),
            "filters": (_lzma_filters, None),
        },
    ),
    "lz4": (numcodecs.LZ4, {"acceleration": (_int(1, 2**16), 1)}),
    "shuffle": (numcodecs.Shuffle, {"elementsize": (_int(1, 2**16), 4)}),
    "delta": (
        numcodecs.Delta,
        {"dtype": (_numeric_dtype, _REQUIRED), "astype": (_optional(_numeric_dtype), None)},
    ),
    "vlen-array": (numcodecs.VLenArray, {"dtype": (_numeric_dtype, _REQUIRED)}),
    "vlen-utf8": (numcodecs.VLenUTF8, {}),
    "vlen-bytes": (numcodecs.VLenBytes, {}),
    "msgpack2": (
        numcodecs.MsgPack,
        {
            "raw": (_bool, False),
            "use_single_float": (_bool, False),
            "use_bin_type": (_bool, True),
        },
    ),
    "json2": (
        numcodecs.JSON,
        {
            "encoding": (_text_encoding, "utf-8"),
            "skipkeys": (_bool, False),
            "ensure_ascii": (_bool, True),
            "check_circular": (_bool, True),
            "allow_nan": (_bool, True),
            "indent": (_optional(_int(0, 64)), None),
            "separators": (_separators, (",", ":")),
            "sort_keys": (_bool, True),
            "strict": (_bool, True),
        },
    ),
}


def make_codec(config: Any, where: str, allowed: Sequence[str] = (*_SPECS,)) -> Codec:
    """Instantiate the codec a ``.zarray`` entry describes, if it is on the allow-list.

    Parameters
    ----------
    config
        The ``compressor`` entry or one ``filters`` entry (``{"id": ..., ...}``).
    where
        Names the store and array in error messages.
    allowed
        The ids acceptable at this position (compressors, or filters and object codecs).

    Raises
    ------
    UnsupportedCodecError
        The id is not allowed here, a parameter is unknown, missing or out of range.
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("id"), str):
        raise UnsupportedCodecError(
            f"{where}: a codec must be an object with an 'id', not {config!r}"
        )
    codec_id = config["id"]
    if codec_id not in allowed:
        raise UnsupportedCodecError(
            f"{where}: codec {codec_id!r} is not allowed here (allowed: {', '.join(allowed)}); "
            "intake-zspy never loads codecs named by a file outside this list"
        )
    cls, params = _SPECS[codec_id]
    unknown = sorted(set(config) - {"id", *params})
    if unknown:
        raise UnsupportedCodecError(f"{where}: codec {codec_id!r} has unknown parameters {unknown}")
    kwargs = {}
    for name, (check, default) in params.items():
        if name not in config:
            if default is _REQUIRED:
                raise UnsupportedCodecError(f"{where}: codec {codec_id!r} needs {name!r}")
            if default is not None:
                kwargs[name] = default
            continue
        try:
            kwargs[name] = check(config[name])
        except _Invalid as exc:
            raise UnsupportedCodecError(
                f"{where}: codec {codec_id!r} parameter {name!r} {exc}"
            ) from exc
    if codec_id == "blosc" and kwargs["cname"] not in numcodecs.blosc.list_compressors():
        raise UnsupportedCodecError(f"{where}: blosc was built without {kwargs['cname']!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # pragma: no cover - validated above
        raise UnsupportedCodecError(f"{where}: codec {codec_id!r}: {exc}") from exc


class Pipeline:
    """Decodes the chunks of one array: compressor, then filters in reverse order.

    Parameters
    ----------
    compressor, filters
        The ``.zarray`` entries (codec configurations, checked by :func:`make_codec`).
    dtype, chunks
        The array's dtype and chunk shape.
    where
        Names the store and array in error messages.

    Raises
    ------
    UnsupportedCodecError
        A codec is not allowed, its parameters are invalid, or the codecs do not fit the
        dtype (object arrays need exactly one object codec, as the first filter).
    """

    __slots__ = ("compressor", "count", "encoded", "filters", "is_object", "itemsize")

    def __init__(
        self,
        compressor: Mapping[str, Any] | None,
        filters: Sequence[Mapping[str, Any]],
        dtype: np.dtype[Any],
        chunks: Sequence[int],
        where: str,
    ) -> None:
        self.compressor = None if compressor is None else make_codec(compressor, where, COMPRESSORS)
        self.filters = tuple(make_codec(f, where, (*FILTERS, *OBJECT_CODECS)) for f in filters)
        self.is_object = dtype.kind == "O"
        self.count = math.prod(chunks)
        self.itemsize = dtype.itemsize
        ids = [f.codec_id for f in self.filters]
        object_at = [i for i, codec_id in enumerate(ids) if codec_id in OBJECT_CODECS]
        if self.is_object and object_at != [0]:
            raise UnsupportedCodecError(
                f"{where}: an object array needs one object codec ({', '.join(OBJECT_CODECS)}) "
                f"as its first filter; filters are {ids}"
            )
        if not self.is_object and object_at:
            raise UnsupportedCodecError(
                f"{where}: filter {ids[object_at[0]]!r} is for object arrays, but the dtype "
                f"is {dtype}"
            )
        self.encoded = None if self.is_object else self._encoded_nbytes(where)

    def _encoded_nbytes(self, where: str) -> int:
        """The size of a chunk as the compressor sees it (filters may change it)."""
        nbytes = self.count * self.itemsize
        for codec in self.filters:
            if codec.codec_id == "delta":
                itemsize = codec.dtype.itemsize
                if nbytes % itemsize:
                    raise UnsupportedCodecError(
                        f"{where}: delta dtype {codec.dtype} does not divide the chunk"
                    )
                nbytes = nbytes // itemsize * codec.astype.itemsize
        return nbytes

    @property
    def plain(self) -> bool:
        """No filters: the compressor's output is the chunk's bytes."""
        return not self.filters

    def decode(self, raw: bytes, into: np.ndarray | None = None) -> Any:
        """The decoded bytes of a chunk (a buffer), or its flat object items.

        ``into`` receives the bytes directly when the pipeline is plain and the
        compressor decodes in place; the returned object is then ``into`` itself.
        """
        buf: Any = raw
        if self.compressor is not None:
            target = into if (into is not None and self.plain) else None
            buf = decompress(self.compressor, raw, self.encoded, target)
            if target is not None and buf is target:
                return buf
        elif self.encoded is not None and len(raw) != self.encoded:
            raise ValueError(f"{len(raw)} bytes stored, expected {self.encoded}")
        for codec in reversed(self.filters):
            if codec.codec_id in OBJECT_CODECS:
                return decode_objects(codec, buf, self.count)
            buf = codec.decode(buf)
        return buf
