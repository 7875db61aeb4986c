#!/usr/bin/env bash
# README command 2: install (into .venv) with the dev tools, then lint, type-check and test.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
EDITABLE=1 bash scripts/install.sh dev
echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== pip-audit (report only: known vulnerabilities of the installed set)"
# Report, don't gate: a new advisory for a pinned dependency should be read by a person, not
# turn every unrelated commit red. Where the advisory service can't be reached it says so.
timeout 180 pip-audit --progress-spinner off --skip-editable 2>&1 | grep -v "could not be audited" || true
# The image test (tests/test_image.py) builds and runs the container image when a Docker engine
# answers, and is skipped otherwise: say which, before and after the run, so a skip is never
# mistaken for a pass. .ci/run starts an engine.
docker_cli="${DOCKER:-}"
[ -n "$docker_cli" ] || { [ -x /usr/bin/docker ] && docker_cli=/usr/bin/docker; } || docker_cli=$(command -v docker || true)
if [ -n "$docker_cli" ] && timeout 30 "$docker_cli" info >/dev/null 2>&1; then
  image_test="runs: a Docker engine answers ($docker_cli); it builds the image (minutes on a cold cache)"
else
  image_test="SKIPPED: no Docker engine answers, the container image was NOT built or tested (start one; .ci/run does)"
fi
echo "== image test: $image_test"
echo "== pytest"
set +e
python -m pytest "$@"
status=$?
set -e
echo "== image test: $image_test"
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: the test setup is broken" >&2
  exit 1
fi
exit "$status"
