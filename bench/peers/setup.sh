#!/usr/bin/env bash
# Create .venv-peers: the serving frameworks the benchmark compares against (LitServe, BentoML,
# Ray Serve), in their own virtual environment so that their pins never touch the service's .venv.
# They are benchmark extras, never runtime dependencies of lstm-serve. The project itself is
# installed without its dependencies (no torch: peers serve model.onnx through ONNX Runtime) plus
# exactly what its preprocessing imports, so peers tokenise with the project's own code.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-peers/bin/python ]; then
  py="$(command -v python3.11 || command -v python3)"
  "$py" -m venv .venv-peers
fi
pip_install() { .venv-peers/bin/python -m pip install --no-input --progress-bar off "$@"; }
pip_install --no-deps -e .
pip_install -r bench/peers/requirements.txt
