# Sourced by serve.sh and test.sh: create (once) and activate the project's virtual environment.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  py="$(command -v python3.11 || command -v python3)"
  "$py" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
