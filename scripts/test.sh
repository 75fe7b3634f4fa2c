#!/usr/bin/env bash
# Command 2: install what is missing, build, and run every test.
# Extra arguments go to ctest (e.g. -L consent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"
