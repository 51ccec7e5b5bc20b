"""``intake-zspy check`` of a HyperSpy ``.hspy`` (HDF5) file.

The file is opened like any reader opens it (its metadata walked and checked as a
HyperSpy file), then every dataset is read chunk by chunk through
:class:`~intake_zspy.format.h5.H5Array`: a chunk that HDF5 or the direct path cannot
read or inflate is reported as corrupted, by dataset and chunk grid index. Memory stays
at one chunk per dataset read. ``bytes_read`` counts decoded bytes (HDF5 hides the
stored ones).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

from intake_zspy._progress import progress_bar
from intake_zspy.errors import ZspyError
from intake_zspy.format import names
from intake_zspy.ops._report import ArrayCheck

if TYPE_CHECKING:
    from intake_zspy.ops._report import Report
    from intake_zspy.storage import HDF5File

__all__ = ["verify_hdf5"]


def verify_hdf5(store: HDF5File, report: Report, *, progress: bool = False) -> None:
    """Check every document and chunk of ``store`` into ``report``."""
    from intake_zspy.format.decode import ZspyFile
    from intake_zspy.format.h5 import load_h5_hierarchy

    try:
        file = ZspyFile(load_h5_hierarchy(store))
    except ZspyError as exc:
        report.problems.append(str(exc))
        return
    h = file.hierarchy
    report.signals = file.signal_names()
    report.format_version = file.format_version
    report.documents = len(h.docs)
    paths = sorted(k[: -len(names.ZARRAY) - 1] for k in h.docs if k.endswith(names.ZARRAY))
    arrays = [h.array(p) for p in paths]
    total = sum(math.prod(a.meta.grid) for a in arrays)
    bar = progress_bar(total, "checking", "chunk", progress)
    for array in arrays:
        meta = array.meta
        check = ArrayCheck(array.path, list(meta.shape), list(meta.chunks), str(meta.dtype), None)
        check.expected = math.prod(meta.grid)
        report.arrays.append(check)
        for index in itertools.product(*(range(n) for n in meta.grid)):
            box = tuple(
                slice(i * c, min((i + 1) * c, n))
                for i, c, n in zip(index, meta.chunks, meta.shape, strict=True)
            )
            try:
                report.bytes_read += array.read(box).nbytes
                check.present += 1
                report.chunks_read += 1
            except ZspyError as exc:
                check.corrupted[f"{array.path}/{'.'.join(map(str, index)) or '0'}"] = str(exc)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
