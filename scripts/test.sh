#!/usr/bin/env bash
# The whole test suite. Creates .venv (test extras) and, on first use, the HyperSpy
# reference venv in .cache/hyperspy-venv; starts its own S3 server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
# The browser tests (tests/test_83_browse_chromium.py) need headless Chromium: install
# Debian's package when missing, if we may (root, apt); otherwise those tests skip.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing chromium for the browser tests" >&2
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } >/dev/null \
        || echo "scripts/test.sh: could not install chromium; the browser tests will skip" >&2
fi
.venv/bin/python -m ruff check
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
