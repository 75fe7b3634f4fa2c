#!/usr/bin/env bash
# Installs the Debian 12 packages CareSeal needs, skipping what is installed.
#   scripts/install-deps.sh            build + run dependencies
#   scripts/install-deps.sh --test     also what the test suite needs
set -euo pipefail

packages=(
  build-essential cmake pkg-config git openssl ca-certificates
  protobuf-compiler libprotobuf-dev protobuf-compiler-grpc libgrpc++-dev
  golang-github-gogo-googleapis-dev grpc-proto libabsl-dev libssl-dev
  libsqlite3-dev sqlite3 libpq-dev libcli11-dev libcjose-dev libjansson-dev
  nlohmann-json3-dev libcpp-httplib-dev libjemalloc-dev
  libcmark-dev
)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(libgtest-dev libgmock-dev libbenchmark-dev clang-format)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if (( ${#missing[@]} == 0 )); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
