#!/usr/bin/env bash
# README command 1: install (into .venv) and serve the bundles in models/ on $PORT (default 8000).
set -euo pipefail
source "$(dirname "$0")/venv.sh"
EDITABLE=1 bash scripts/install.sh
exec python -m app
