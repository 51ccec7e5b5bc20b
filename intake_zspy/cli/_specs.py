"""Parse ``--chunks`` into a :class:`~intake_zspy.ops.ChunkRule` and ``--compressor`` into
a codec."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from intake_zspy.cli._common import CliError, parse_size

if TYPE_CHECKING:
    from intake_zspy.ops import ChunkRule

__all__ = ["parse_chunks", "parse_compressor"]

#: Default budget of ``auto-signal``: the writer's default chunks
#: (:data:`intake_zspy.format.layout.TARGET_CHUNK_BYTES`).
AUTO_SIGNAL_BYTES = 32 * 2**20
_WHOLE = {"-1", "all", "full", "whole"}
_SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2, "0": 0, "1": 1, "2": 2}
_LEVELLED = {"zstd": "level", "zlib": "level", "gzip": "level", "bz2": "level", "lzma": "preset"}

CHUNKS_HELP = (
    "rechunk the data: 'DIM=N,...' by dim name (N or -1/all for the whole dim; other dims "
    "keep their stored chunks), 'N,N,N' one size per dim in array order, or "
    "'auto-signal[:SIZE]' whole signals per chunk, navigation dims tiled evenly up to SIZE "
    f"(default {AUTO_SIGNAL_BYTES // 2**20}MiB). Default: keep the stored chunks"
)
COMPRESSOR_HELP = (
    "compressor of the written arrays: 'blosc[:CNAME[:LEVEL[:SHUFFLE]]]' (e.g. blosc:zstd:5, "
    "blosc:lz4:5:bitshuffle), 'zstd[:LEVEL]', 'zlib[:LEVEL]', 'gzip[:LEVEL]', 'bz2[:LEVEL]', "
    "'lzma[:PRESET]', 'lz4[:ACCELERATION]', 'none', or a numcodecs JSON config such as "
    '\'{"id": "zstd", "level": 3}\'. Default: the source\'s data compressor'
)


def _size(text: str, what: str) -> int | None:
    t = text.strip().lower()
    if t in _WHOLE:
        return None
    try:
        value = int(t)
    except ValueError:
        raise CliError(
            f"--chunks: {what} {text!r} is not a chunk size (an integer or -1)"
        ) from None
    if value < 1:
        raise CliError(f"--chunks: {what} {text!r} must be at least 1 (or -1 for the whole dim)")
    return value


def parse_chunks(text: str | None) -> ChunkRule | None:
    """Parse ``--chunks`` (see :data:`CHUNKS_HELP`); ``None`` keeps the stored chunks.

    Raises
    ------
    CliError
        The text is not a chunk specification.
    """
    from intake_zspy.ops import ChunkRule

    if text is None or text.strip().lower() in ("", "keep", "stored"):
        return None
    t = text.strip()
    if t.lower().startswith("auto-signal"):
        rest = t[len("auto-signal") :]
        if rest and not rest.startswith(":"):
            raise CliError(f"--chunks {text!r}: write auto-signal or auto-signal:SIZE")
        return ChunkRule(auto_bytes=parse_size(rest[1:]) if rest else AUTO_SIGNAL_BYTES)
    parts = [p.strip() for p in t.split(",") if p.strip()]
    if all("=" in p for p in parts):
        by_dim: dict[str, int | None] = {}
        for part in parts:
            name, _, value = part.partition("=")
            by_dim[name.strip()] = _size(value, f"dim {name.strip()!r}:")
        return ChunkRule(by_dim=by_dim)
    if any("=" in p for p in parts):
        raise CliError(f"--chunks {text!r}: use either DIM=N,... or N,N,... , not both")
    return ChunkRule(by_position=tuple(_size(p, "size") for p in parts))


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise CliError(f"--compressor: {what} {value!r} is not an integer") from None


def parse_compressor(text: str) -> Any:
    """A numcodecs codec (or ``None``) from ``--compressor`` (see :data:`COMPRESSOR_HELP`).

    Raises
    ------
    CliError
        Unknown codec or bad parameters.
    """
    import numcodecs

    from intake_zspy.errors import UnsupportedCodecError
    from intake_zspy.format.codecs import COMPRESSORS, make_codec

    def allowed(config: Any) -> Any:
        try:
            return make_codec(config, "--compressor", COMPRESSORS)
        except UnsupportedCodecError as exc:
            raise CliError(str(exc)) from exc

    t = text.strip()
    if t.startswith("{"):
        try:
            return allowed(json.loads(t))
        except ValueError as exc:
            raise CliError(f"--compressor {text!r}: not a numcodecs config: {exc}") from exc
    name, *params = [p.strip() for p in t.lower().split(":")]
    if name == "none" and not params:
        return None
    if name == "blosc":
        from numcodecs.blosc import list_compressors

        if len(params) > 3:
            raise CliError(f"--compressor {text!r}: write blosc:CNAME:LEVEL:SHUFFLE")
        cname = params[0] if params else "zstd"
        if cname not in list_compressors():
            raise CliError(f"--compressor {text!r}: blosc compressors are {list_compressors()}")
        level = _int(params[1], "level") if len(params) > 1 else 1
        shuffle = params[2] if len(params) > 2 else "shuffle"
        if shuffle not in _SHUFFLES:
            raise CliError(f"--compressor {text!r}: shuffle is noshuffle, shuffle or bitshuffle")
        if not 0 <= level <= 9:
            raise CliError(f"--compressor {text!r}: blosc levels are 0 to 9")
        return numcodecs.Blosc(cname=cname, clevel=level, shuffle=_SHUFFLES[shuffle])
    if name in _LEVELLED or name == "lz4":
        if len(params) > 1:
            raise CliError(f"--compressor {text!r}: write {name}[:LEVEL]")
        key = _LEVELLED.get(name, "acceleration")
        config: dict[str, Any] = {"id": name}
        if params:
            config[key] = _int(params[0], key)
        return allowed(config)
    raise CliError(
        f"--compressor {text!r}: unknown; use blosc, zstd, zlib, gzip, bz2, lzma, lz4 or none"
    )
