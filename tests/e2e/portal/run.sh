#!/usr/bin/env bash
# Real-browser end-to-end tests of careseal-portal: Debian's chromium
# (headless) driven by playwright-core, against a real careseal-server and
# careseal-portal on loopback. Each flow is one file in flows/ (node's test
# runner); lib/stack.mjs starts and sets up the services, lib/browser.mjs
# the browser and the per-screen checks and screenshots.
#
# Usage: run.sh BUILD_DIR [--screenshots DIR] [flows/NAME.test.mjs ...]
#   Installs what is missing first (install.sh: chromium, playwright-core).
#   Screenshots of every screen at 360 and 1280 px go to DIR (default
#   BUILD_DIR/portal-e2e/screenshots, emptied first; a given DIR is not
#   emptied, its files of the same names are replaced).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR [--screenshots DIR] [flows...]}" && pwd)
shift
SHOTS=""
FLOWS=()
while (( $# > 0 )); do
  case "$1" in
    --screenshots) mkdir -p "$2"; SHOTS=$(cd "$2" && pwd); shift 2 ;;
    *) FLOWS+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
  esac
done
if (( ${#FLOWS[@]} == 0 )); then FLOWS=("$HERE"/flows/*.test.mjs); fi

for bin in services/server/careseal-server clients/cli/careseal clients/portal/careseal-portal; do
  [[ -x "$BUILD/$bin" ]] || { echo "portal e2e: $BUILD/$bin is not built" >&2; exit 1; }
done
bash "$HERE/install.sh"

WORK=$(mktemp -d)
SERVE_PID=""
cleanup() {
  if [[ -n "$SERVE_PID" ]]; then kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
bash "$ROOT/certs-example/gen-certs.sh" "$WORK/certs" >/dev/null
if [[ -z "$SHOTS" ]]; then
  SHOTS="$BUILD/portal-e2e/screenshots"
  rm -rf "$SHOTS"
fi
mkdir -p "$SHOTS"

cd "$HERE"
export CARESEAL_BUILD="$BUILD" CARESEAL_E2E_CERTS="$WORK/certs" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# One careseal-server + careseal-portal + chromium for all flows; each flow
# makes its own patients and browser contexts.
node lib/serve.mjs "$WORK/stack.json" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 300); do
  [[ -s "$WORK/stack.json" ]] && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log"; echo "portal e2e: the stack did not start" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$WORK/stack.json" ]] || { cat "$WORK/serve.log"; echo "portal e2e: the stack did not start in 30 s" >&2; exit 1; }
status=0
CARESEAL_E2E_STACK="$WORK/stack.json" CARESEAL_E2E_SCREENSHOTS="$SHOTS" \
  node --test --test-concurrency="${PORTAL_E2E_JOBS:-2}" --test-reporter=spec "${FLOWS[@]}" || status=$?
if (( status != 0 )); then
  echo "---- careseal-server log"; cat "$(sed -n 's/.*"serverLog":"\([^"]*\)".*/\1/p' "$WORK/stack.json")" || true
  echo "---- careseal-portal log"; cat "$(sed -n 's/.*"portalLog":"\([^"]*\)".*/\1/p' "$WORK/stack.json")" || true
  exit "$status"
fi
echo "portal e2e: screenshots in $SHOTS ($(ls "$SHOTS" | wc -l) files)"
