#!/usr/bin/env bash
# Set up (if needed) and run the main job: the default simulated federation.
# Extra arguments are Hydra overrides, e.g. privacy.epsilon=3 strategy=fedprox
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec cesagram simulate "$@"
