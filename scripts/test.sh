#!/usr/bin/env bash
# The whole test suite. Creates .venv (test extras) and, on first use, the HyperSpy
# reference venv in .cache/hyperspy-venv; starts its own S3 server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
.venv/bin/python -m ruff check
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
