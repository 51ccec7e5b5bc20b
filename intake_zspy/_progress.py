"""Progress bars (tqdm, an optional dependency) for long writes, copies and checks."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool = True) -> Any:
    """A tqdm bar on stderr, or ``None`` when ``enabled`` is false.

    Raises
    ------
    ImportError
        tqdm is not installed; the message says how to install it.
    """
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError("progress bars need tqdm: pip install intake-zspy[progress]") from exc
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
