#!/usr/bin/env bash
# Installs what the portal browser tests need, skipping what is there:
#   - Debian's chromium (apt-get, as root or through `sudo -n`), and a font
#     so that pages render text in screenshots;
#   - playwright-core, pinned in package-lock.json (`npm ci` into
#     node_modules/ here; it never downloads a browser of its own).
# Idempotent; safe to run on every test run.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CARESEAL_CHROMIUM:-/usr/bin/chromium}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in chromium fonts-dejavu-core; do
  installed "$p" || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! sudo -n true 2>/dev/null; then
      echo "portal e2e: ${missing[*]} missing; run as root or: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    SUDO=(sudo -n)
  fi
  echo "portal e2e: installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs may hold the dpkg lock for a while: wait for it.
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ -x "$CHROMIUM" ]] || { echo "portal e2e: no browser at $CHROMIUM" >&2; exit 1; }

# node_modules is made from the lock file; redone when the lock changes.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "portal e2e: node and npm are missing: install Node.js 20 or newer with npm" >&2
  exit 1
fi
STAMP="$HERE/node_modules/.careseal-lock.sha256"
WANT=$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$STAMP" || $(cat "$STAMP") != "$WANT" ]]; then
  echo "portal e2e: npm ci (playwright-core, no browser download)"
  (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$WANT" >"$STAMP"
fi
