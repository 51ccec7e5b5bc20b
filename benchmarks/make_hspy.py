"""Write the ``.hspy`` twins of the 4D-STEM benchmark store with HyperSpy (HyperSpy venv).

Run as ``$PY benchmarks/make_hspy.py [--data-dir DIR]`` (``PY=$(python tests/hyperspy/env.py)``)
after ``benchmarks/make_data.py``: ``hs.load("stem_4d.zspy", lazy=True).save(...)`` twice, with
HyperSpy's defaults (chunks chosen by RosettaSciIO, gzip: ``stem_4d.hspy``, about 160 MB for
1.07 GB of data) and with ``compression=None`` (``stem_4d_raw.hspy``, 1.07 GB on disk). Skips
files that exist. Prints one JSON line per file: path, bytes, seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / ".cache" / "bench-data")
    args = parser.parse_args()
    for name, kwargs in (("stem_4d.hspy", {}), ("stem_4d_raw.hspy", {"compression": None})):
        out = args.data_dir / name
        seconds = 0.0
        if not out.exists():
            import hyperspy.api as hs

            hs.set_log_level("ERROR")
            logging.getLogger("rsciio").setLevel(logging.ERROR)
            start = time.perf_counter()
            s = hs.load(args.data_dir / "stem_4d.zspy", lazy=True)
            s.save(out, show_progressbar=False, **kwargs)
            seconds = time.perf_counter() - start
        print(json.dumps({"path": str(out), "bytes": out.stat().st_size, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
