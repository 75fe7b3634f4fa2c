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
    --screenshots) SHOTS=$2; shift 2 ;;
    *) FLOWS+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
  esac
done
if (( ${#FLOWS[@]} == 0 )); then FLOWS=("$HERE"/flows/*.test.mjs); fi

for bin in services/server/careseal-server clients/cli/careseal clients/portal/careseal-portal; do
  [[ -x "$BUILD/$bin" ]] || { echo "portal e2e: $BUILD/$bin is not built" >&2; exit 1; }
done
bash "$HERE/install.sh"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
bash "$ROOT/certs-example/gen-certs.sh" "$WORK/certs" >/dev/null
if [[ -z "$SHOTS" ]]; then
  SHOTS="$BUILD/portal-e2e/screenshots"
  rm -rf "$SHOTS"
fi
mkdir -p "$SHOTS"

cd "$HERE"
CARESEAL_BUILD="$BUILD" CARESEAL_E2E_CERTS="$WORK/certs" CARESEAL_E2E_SCREENSHOTS="$SHOTS" \
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  node --test --test-concurrency="${PORTAL_E2E_JOBS:-1}" --test-reporter=spec "${FLOWS[@]}"
echo "portal e2e: screenshots in $SHOTS ($(ls "$SHOTS" | wc -l) files)"
