#!/usr/bin/env bash
# Command 1: install what is missing, build, make development certificates and
# run careseal-server on the embedded SQLite store with a demo clinic.
# Idempotent: a second run skips what is installed, built or made.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LISTEN=${CARESEAL_LISTEN:-127.0.0.1:7443}
STATE=${CARESEAL_STATE:-$ROOT/var}

bash scripts/install-deps.sh
bash scripts/build.sh
bash certs-example/gen-certs.sh certs-example/out
mkdir -p "$STATE"

C=certs-example/out
cat <<MSG

CareSeal is starting on $LISTEN (mutual TLS, SQLite at $STATE/careseal.db).
Demo clinic: tenant demo-clinic. Stop with Ctrl-C.

Try it from another shell:
  build/clients/cli/careseal --target $LISTEN --ca $C/ca.crt \\
      --cert $C/ehr-demo.crt --key $C/ehr-demo.key health

MSG
exec build/services/server/careseal-server \
  --listen="$LISTEN" \
  --tls_ca=$C/ca.crt --tls_cert=$C/server.crt --tls_key=$C/server.key \
  --db="$STATE/careseal.db" --key_dir="$STATE/keys" \
  --demo_tenant=demo-clinic
