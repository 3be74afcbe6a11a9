#!/usr/bin/env bash
# The test suite (the README's test command runs this after setup).
set -euo pipefail
cd "$(dirname "$0")/.."
export CESAGRAM_CACHE_DIR="${CESAGRAM_CACHE_DIR:-$PWD/.cache/cesagram}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec python -m pytest -q "$@"
