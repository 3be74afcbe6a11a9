#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export CESAGRAM_CACHE_DIR="${CESAGRAM_CACHE_DIR:-$PWD/.cache/cesagram}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check --quiet .
# Two workers (CESAGRAM_TEST_WORKERS=0: a single process). Tests marked xdist_group("ray")
# stay on one worker: never two Ray instances side by side.
exec python -m pytest -q --durations=25 -n "${CESAGRAM_TEST_WORKERS:-2}" --dist loadgroup "$@"
