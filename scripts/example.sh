#!/usr/bin/env bash
# The main job on a local default: build a sample store, catalog it, stream it, write back.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python examples/quickstart.py "$@"
