#!/usr/bin/env bash
# Command 1: install what is missing, build, make development certificates and
# keys, run careseal-server on the embedded SQLite store and set up a demo
# clinic (tenant demo-clinic with the IV ketamine consent published).
# Idempotent: a second run skips what is installed, built or made.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LISTEN=${CARESEAL_LISTEN:-127.0.0.1:7443}
STATE=${CARESEAL_STATE:-$ROOT/var}
C=certs-example/out
CLI=build/clients/cli/careseal

bash scripts/install-deps.sh
bash scripts/build.sh --target careseal-server careseal
bash certs-example/gen-certs.sh "$C"
mkdir -p "$STATE/keys"
if [[ ! -f "$STATE/keys/master.key" ]]; then
  head -c 32 /dev/urandom >"$STATE/keys/master.key"
  chmod 600 "$STATE/keys/master.key"
  echo "dev-up: made a development master key at $STATE/keys/master.key"
fi

build/services/server/careseal-server \
  --listen="$LISTEN" \
  --tls_ca=$C/ca.crt --tls_cert=$C/server.crt --tls_key=$C/server.key \
  --db="$STATE/careseal.db" --key_dir="$STATE/keys" &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER' INT TERM

ehr() { "$CLI" --target "$LISTEN" --ca $C/ca.crt --cert $C/ehr-demo.crt --key $C/ehr-demo.key "$@"; }
for _ in $(seq 1 50); do
  ehr health >/dev/null 2>&1 && break
  sleep 0.2
done
ehr health >/dev/null

# The demo clinic's consent document (once).
if ! ehr consent template list --tenant demo-clinic | grep -q '"latest_version"'; then
  ehr consent template create --tenant demo-clinic --id ketamine-infusion \
    --display-name "IV ketamine infusion therapy" >/dev/null 2>&1 || true
  ehr consent template publish \
    --template tenants/demo-clinic/consentTemplates/ketamine-infusion \
    --file scripts/demo/ketamine-consent-v1.json >/dev/null
  echo "dev-up: published the demo clinic's IV ketamine consent (version 1)"
fi

cat <<MSG

CareSeal is running on $LISTEN (mutual TLS, SQLite at $STATE/careseal.db).
Demo clinic: tenant demo-clinic, consent template ketamine-infusion.
The patient portal is not built yet (issue 9); the services answer on $LISTEN.
Stop with Ctrl-C.

Try it from another shell (the demo EHR's certificate):
  $CLI --target $LISTEN --ca $C/ca.crt \\
      --cert $C/ehr-demo.crt --key $C/ehr-demo.key health
  $CLI --target $LISTEN --ca $C/ca.crt \\
      --cert $C/ehr-demo.crt --key $C/ehr-demo.key \\
      consent request --patient tenants/demo-clinic/patients/p-1 --procedure ketamine-iv-induction

MSG
wait $SERVER
