#!/usr/bin/env bash
# Install lstm-serve into the active Python environment. The Dockerfile runs this same script,
# so the image and a local install cannot drift apart.
#   scripts/install.sh            runtime only (what the image has)
#   scripts/install.sh dev        + training and test tools
# Environment: TORCH_INDEX_URL  extra index for the torch wheel (the image uses the CPU index)
#              ORT_GPU=1        swap onnxruntime for onnxruntime-gpu (CUDA image)
#              EDITABLE=1       editable install (local development)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
pip_install() { python -m pip install --no-input --progress-bar off "$@"; }
# torch first and on its own: from a plain index a bare `torch` resolves to a multi-GB CUDA build.
pip_install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "torch==2.13.0"
target="."
[ -n "$extras" ] && target=".[$extras]"
if [ "${EDITABLE:-0}" = 1 ]; then pip_install -e "$target"; else pip_install "$target"; fi
if [ "${ORT_GPU:-0}" = 1 ]; then
  python -m pip uninstall -y onnxruntime
  pip_install onnxruntime-gpu
fi
