#!/usr/bin/env bash
# Install lstm-serve into the active Python environment. The Dockerfile runs this same script,
# so the image and a local install cannot drift apart.
#   scripts/install.sh            runtime only: serves with ONNX Runtime, no torch (what the image has)
#   scripts/install.sh torch      + PyTorch for BACKEND=torchscript
#   scripts/install.sh dev        + torch, training and test tools, and Chromium for the browser tests
# Extras combine with commas (`torch,bulk`).
# Environment: TORCH_INDEX_URL  where torch comes from when it is needed (default: the CPU-only
#                               index; a wheel already on this machine is used first)
#              ORT_GPU=1        swap onnxruntime for onnxruntime-gpu (CUDA image)
#              EDITABLE=1       editable install (local development)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
TORCH_VERSION=2.13.0
CPU_INDEX=https://download.pytorch.org/whl/cpu
pip_install() { python -m pip install --no-input --progress-bar off "$@"; }

wants() { [[ ",$extras," == *",$1,"* ]]; }

install_torch() {
  # From a plain index a bare `torch` resolves to the CUDA build (a 0.5 GB wheel plus several GB
  # of nvidia-* packages), so torch is installed first, on its own, from the CPU-only index,
  # unless TORCH_INDEX_URL asks for another build. A torch==$TORCH_VERSION wheel this machine
  # already has (pip's find-links) is taken without going to the network.
  if [ -z "${TORCH_INDEX_URL:-}" ] && python -m pip install --no-input -q --no-index --no-deps \
      "torch==$TORCH_VERSION" 2>/dev/null; then
    return
  fi
  pip_install --index-url "${TORCH_INDEX_URL:-$CPU_INDEX}" --extra-index-url https://pypi.org/simple \
    "torch==$TORCH_VERSION"
}

if wants torch || wants training || wants dev; then
  install_torch
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
if [ "${EDITABLE:-0}" = 1 ]; then pip_install -e "$target"; else pip_install "$target"; fi
if [ "${ORT_GPU:-0}" = 1 ]; then
  python -m pip uninstall -y onnxruntime
  pip_install onnxruntime-gpu
fi
if wants dev; then
  bash scripts/browser.sh
fi
