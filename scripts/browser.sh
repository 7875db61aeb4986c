#!/usr/bin/env bash
# The browser tests (tests/test_browser.py) drive the system's Chromium, headless, through
# Playwright's Python package; nothing is downloaded by Playwright itself. This makes sure a
# Chromium is there: Debian's `chromium` package is installed with apt when it is missing and this
# runs as root; otherwise it says how and fails, because a missing browser must fail the test run
# rather than skip those tests. CHROMIUM=/path/to/chrome points at another Chromium build.
set -euo pipefail
find_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then [ -x "$CHROMIUM" ] && echo "$CHROMIUM"; return; fi
  command -v chromium || command -v chromium-browser || true
}
if [ -z "$(find_chromium)" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing chromium (apt) for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  fi
fi
browser="$(find_chromium)"
if [ -z "$browser" ]; then
  echo "the browser tests need Chromium: apt-get install chromium (as root), or set CHROMIUM" >&2
  exit 1
fi
echo "== browser for the tests: $browser ($("$browser" --version 2>/dev/null | head -1))"
