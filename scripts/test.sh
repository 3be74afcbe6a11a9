#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export CESAGRAM_CACHE_DIR="${CESAGRAM_CACHE_DIR:-$PWD/.cache/cesagram}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check --quiet .
exec python -m pytest -q --durations=25 "$@"
