#!/usr/bin/env bash
# Regenerates docs/screenshots/portal/: builds what the portal browser tests
# need, runs them (tests/e2e/portal/run.sh; installs chromium and
# playwright-core when missing) and writes the screenshot of every screen at
# 360 and 1280 px there. Extra arguments: flow files to run (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
bash scripts/build.sh --target careseal-server careseal careseal-portal
OUT=docs/screenshots/portal
if (( $# == 0 )); then rm -rf "$OUT"; fi
bash tests/e2e/portal/run.sh "$BUILD_DIR" --screenshots "$OUT" "$@"
