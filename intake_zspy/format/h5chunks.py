"""Read HDF5 chunks without HDF5's serial pipeline: concurrent byte ranges, parallel inflate.

h5py holds one global lock around every HDF5 call, and HDF5 reads a selection chunk by
chunk, inflating each on the calling thread: a dask graph over an ``.hspy`` file then
decompresses on one core, and a remote file is read one block at a time. For the
datasets HyperSpy writes (chunked; gzip or no filter; optionally byte shuffle) the chunk
index is read once through h5py (:class:`ChunkIndex`), and a box is then filled by
fetching its chunks' byte ranges concurrently (``pread`` locally, one ``cat_ranges``
call on remote filesystems) and inflating them with :mod:`zlib`, which releases the GIL,
on the reading thread. Other datasets go through h5py as usual.
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numcodecs
import numpy as np

if TYPE_CHECKING:
    from intake_zspy.storage import HDF5File

__all__ = ["ChunkIndex"]

#: Filters the direct path decodes itself (h5py's names); anything else goes through HDF5.
_FILTERS = frozenset({"gzip", "shuffle"})


class ChunkIndex:
    """Where each stored chunk of one dataset is: ``{chunk origin: (mask, offset, size)}``.

    Use :meth:`of`, which returns ``None`` for datasets the direct path cannot read.
    """

    def __init__(self, dataset: Any) -> None:
        self.dtype: np.dtype[Any] = dataset.dtype
        self.chunks: tuple[int, ...] = tuple(dataset.chunks)
        self.shape: tuple[int, ...] = tuple(dataset.shape)
        filters = dict(dataset._filters)
        self.gzip = "gzip" in filters
        self.shuffle = "shuffle" in filters
        self.fill = dataset.fillvalue
        self.where: dict[tuple[int, ...], tuple[int, int, int]] = {}
        dsid = dataset.id

        def take(info: Any) -> None:
            self.where[tuple(info.chunk_offset)] = (
                int(info.filter_mask),
                int(info.byte_offset),
                int(info.size),
            )

        if hasattr(dsid, "chunk_iter"):
            dsid.chunk_iter(take)
        else:  # pragma: no cover - HDF5 < 1.12.3
            for i in range(dsid.get_num_chunks()):
                take(dsid.get_chunk_info(i))

    @classmethod
    def of(cls, dataset: Any) -> ChunkIndex | None:
        """The index of ``dataset``, or ``None`` when HDF5 itself must read it."""
        if dataset.chunks is None or dataset.dtype.kind in "OV" or dataset.dtype.fields:
            return None
        if not set(dict(dataset._filters)) <= _FILTERS or dataset.fletcher32:
            return None
        if dataset.external or not hasattr(dataset.id, "get_chunk_info"):
            return None
        return cls(dataset)

    def _decode(self, raw: bytes, mask: int, into: np.ndarray | None = None) -> np.ndarray:
        """One stored chunk, decoded (into ``into``, a C-contiguous chunk, when given)."""
        # filter_mask bit i set: filter i of the pipeline was skipped for this chunk
        order = [f for f in ("shuffle", "gzip") if getattr(self, f)]
        data = raw
        count = int(np.prod(self.chunks))
        if "gzip" in order and not mask & (1 << order.index("gzip")):
            # the whole output size up front: zlib would otherwise grow its buffer by copies
            data = zlib.decompress(data, bufsize=count * self.dtype.itemsize)
        if "shuffle" in order and not mask & (1 << order.index("shuffle")):
            shuffled = numcodecs.Shuffle(elementsize=self.dtype.itemsize)
            target = np.empty(self.chunks, self.dtype) if into is None else into
            shuffled.decode(data, out=target.view(np.uint8).reshape(-1))
            return target
        chunk = np.frombuffer(data, dtype=self.dtype, count=count).reshape(self.chunks)
        if into is None:
            return chunk
        into[...] = chunk
        return into

    def read(self, container: HDF5File, selection: Sequence[slice]) -> np.ndarray:
        """The box ``selection`` (slices with step 1, within the shape)."""
        starts = [s.start for s in selection]
        stops = [s.stop for s in selection]
        out = np.empty([b - a for a, b in zip(starts, stops, strict=True)], dtype=self.dtype)
        grid = [
            range(a // c * c, b, c) if b > a else range(0)
            for a, b, c in zip(starts, stops, self.chunks, strict=True)
        ]
        origins = list(itertools.product(*grid))
        stored = [o for o in origins if o in self.where]
        raws = dict(
            zip(stored, _fetch(container, [self.where[o][1:] for o in stored]), strict=True)
        )
        whole = out.shape == self.chunks and len(origins) == 1 and starts == list(origins[0])
        if whole and origins[0] in raws:  # one whole chunk: decoded straight into the output
            return self._decode(raws[origins[0]], self.where[origins[0]][0], into=out)
        for origin in origins:
            raw = raws.pop(origin, None)
            chunk = None if raw is None else self._decode(raw, self.where[origin][0])
            src, dst = [], []
            for o, a, b, c in zip(origin, starts, stops, self.chunks, strict=True):
                lo, hi = max(o, a), min(o + c, b)
                src.append(slice(lo - o, hi - o))
                dst.append(slice(lo - a, hi - a))
            out[tuple(dst)] = self.fill if chunk is None else chunk[tuple(src)]
        return out


def _fetch(container: HDF5File, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The bytes of ``(offset, size)`` ranges of the file: ``pread`` locally, else one
    concurrent ``cat_ranges`` call."""
    if not ranges:
        return []
    path = container.local_path
    if path is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            out = [os.pread(fd, size, offset) for offset, size in ranges]
        finally:
            os.close(fd)
    else:
        out = container.fs.cat_ranges(
            [container.path] * len(ranges),
            [offset for offset, _ in ranges],
            [offset + size for offset, size in ranges],
        )
    for raw, (offset, size) in zip(out, ranges, strict=True):
        if len(raw) != size:
            raise OSError(f"{size} bytes expected at offset {offset}, {len(raw)} read")
    return list(out)
