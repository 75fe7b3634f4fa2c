#!/usr/bin/env bash
# Command 1: install what is missing, build, make development certificates and
# keys, run careseal-server on the embedded SQLite store and set up a demo
# clinic (tenant demo-clinic with the IV ketamine consent published), then run
# the patient portal (careseal-portal) and print a demo patient's consent link.
# Idempotent: a second run skips what is installed, built or made.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LISTEN=${CARESEAL_LISTEN:-127.0.0.1:7443}
PORTAL_LISTEN=${CARESEAL_PORTAL_LISTEN:-127.0.0.1:8443}
PORTAL_ISSUER=https://portal.careseal.example
STATE=${CARESEAL_STATE:-$ROOT/var}
C=certs-example/out
CLI=build/clients/cli/careseal

bash scripts/install-deps.sh
bash scripts/build.sh --target careseal-server careseal careseal-portal
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
PORTAL=""
trap 'kill -TERM $SERVER $PORTAL 2>/dev/null; wait' INT TERM

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

# The portal: the clinic in identity, the portal as its patients' token
# issuer (a key made once and kept in $STATE), then careseal-portal itself.
admin() { "$CLI" --target "$LISTEN" --ca $C/ca.crt --cert $C/admin.crt --key $C/admin.key "$@"; }
admin admin tenant create --id demo-clinic --display-name "Demo clinic" \
  --time-zone America/Chicago >/dev/null 2>&1 || true
if [[ ! -f "$STATE/portal-token.key" ]]; then
  build/clients/portal/careseal-portal --generate_token_key "$STATE/portal-token.key" \
    --token_kid portal-1 >"$STATE/portal-jwks.json"
  admin admin issuer register tenants/demo-clinic --id portal \
    --issuer-uri "$PORTAL_ISSUER" --kind portal \
    --peer spiffe://careseal.local/portal --jwks-file "$STATE/portal-jwks.json" >/dev/null
  echo "dev-up: registered the portal as demo-clinic's patient token issuer"
fi
build/clients/portal/careseal-portal --listen "$PORTAL_LISTEN" \
  --tls_cert $C/server.crt --tls_key $C/server.key \
  --target "$LISTEN" --ca $C/ca.crt --cert $C/portal.crt --key $C/portal.key \
  --token_issuer "$PORTAL_ISSUER" --token_kid portal-1 \
  --token_key "$STATE/portal-token.key" --time_zone America/Chicago &
PORTAL=$!

# A demo patient with a pending consent: its signing token is the link.
patient=$(ehr admin patient create tenants/demo-clinic \
  --external-id "MRN-DEMO-$(date +%s)" --display-name "Demo Patient" \
  --dob 1984-02-29 | sed -n 's/.*"name": *"\(tenants\/demo-clinic\/patients\/[^"]*\)".*/\1/p' | head -1)
token=$(ehr consent request --patient "$patient" --procedure ketamine-iv-induction |
  sed -n 's/.*"signing_token": *"\([^"]*\)".*/\1/p')

cat <<MSG

CareSeal is running on $LISTEN (mutual TLS, SQLite at $STATE/careseal.db).
Demo clinic: tenant demo-clinic, consent template ketamine-infusion.
Patient portal: https://${PORTAL_LISTEN/127.0.0.1/localhost}/ (development
certificate: tell the browser to trust $C/ca.crt, or accept the warning).
A demo patient's consent link (date of birth 1984-02-29, single use):
  https://${PORTAL_LISTEN/127.0.0.1/localhost}/l/$token
Stop with Ctrl-C.

Try it from another shell (the demo EHR's certificate):
  $CLI --target $LISTEN --ca $C/ca.crt \\
      --cert $C/ehr-demo.crt --key $C/ehr-demo.key health
  $CLI --target $LISTEN --ca $C/ca.crt \\
      --cert $C/ehr-demo.crt --key $C/ehr-demo.key \\
      consent request --patient tenants/demo-clinic/patients/p-1 --procedure ketamine-iv-induction

MSG
wait $SERVER
