#!/usr/bin/env bash
# README command 2: install (into .venv) with the dev tools, then lint, type-check and test.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
EDITABLE=1 bash scripts/install.sh dev
echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== pytest"
set +e
python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: the test setup is broken" >&2
  exit 1
fi
exit "$status"
