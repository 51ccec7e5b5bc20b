"""``python -m intake_zspy``: the ``intake-zspy`` command line."""

from __future__ import annotations

from intake_zspy.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
