#!/usr/bin/env bash
# The consent flow through the real binaries, as an integrator would run it:
# development certificates from certs-example/gen-certs.sh, careseal-server on
# a free loopback port, and the careseal CLI for every step, ending with an
# offline receipt verification (and a tampered receipt that must fail).
# Usage: consent_cli_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f "$WORK/server.log" ]] && cat "$WORK/server.log"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

bash "$ROOT/certs-example/gen-certs.sh" "$WORK/certs" >/dev/null
mkdir -p "$WORK/keys" && head -c 32 /dev/urandom >"$WORK/keys/master.key" && chmod 600 "$WORK/keys/master.key"
C="$WORK/certs"

"$BUILD/services/server/careseal-server" --listen=127.0.0.1:0 \
  --tls-ca="$C/ca.crt" --tls-cert="$C/server.crt" --tls-key="$C/server.key" \
  --db="$WORK/careseal.db" --key-dir="$WORK/keys" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  grep -q "listening" "$WORK/server.log" 2>/dev/null && break
  sleep 0.1
done
PORT=$(sed -n 's/.*(port \([0-9]*\),.*/\1/p' "$WORK/server.log")
[[ -n "$PORT" ]] || fail "server did not start"

cli() {  # cli IDENTITY args...
  local who=$1; shift
  "$BUILD/clients/cli/careseal" --target "localhost:$PORT" --ca "$C/ca.crt" \
    --cert "$C/$who.crt" --key "$C/$who.key" "$@"
}

[[ $(cli ehr-demo health) == SERVING ]] || fail "health"
cli ehr-demo consent template create --tenant demo-clinic --id ketamine \
  --display-name "IV ketamine" >/dev/null
VERSION=$(cli ehr-demo consent template publish \
  --template tenants/demo-clinic/consentTemplates/ketamine \
  --file "$ROOT/scripts/demo/ketamine-consent-v1.json" | json 'd["version"]["name"]')
[[ "$VERSION" == tenants/demo-clinic/consentTemplates/ketamine/versions/1 ]] || fail "publish: $VERSION"

REQ=$(cli ehr-demo consent request --patient tenants/demo-clinic/patients/p-1 \
  --procedure ketamine-iv-induction)
NAME=$(echo "$REQ" | json 'd["consent"]["name"]')
TOKEN=$(echo "$REQ" | json 'd["signing_token"]')
CHECK=$(cli ehr-demo consent check --patient tenants/demo-clinic/patients/p-1 \
  --procedure ketamine-iv-induction | json 'd["reason"]')
[[ "$CHECK" == CONSENT_CHECK_REASON_PENDING_SIGNATURE ]] || fail "check pending: $CHECK"

# The portal's identity signs with the patient's token.
cli portal consent sign --token "$TOKEN" --printed-name "Alex Q. Patient" >/dev/null
# A second use of the same link is refused with a clear reason.
if OUT=$(cli portal consent sign --token "$TOKEN" --printed-name "Alex Q. Patient" 2>&1); then
  fail "a used link signed again"
fi
echo "$OUT" | grep -q "SIGNING_TOKEN_USED" || fail "reused link: $OUT"

VALID=$(cli ehr-demo consent check --patient tenants/demo-clinic/patients/p-1 \
  --procedure ketamine-iv-induction | json 'd.get("valid", False)')
[[ "$VALID" == True ]] || fail "check valid: $VALID"

cli ehr-demo consent show "$NAME" --receipt-out "$WORK/receipt.json" >/dev/null
mkdir -p "$WORK/pub"
cli ehr-demo consent keys --out-dir "$WORK/pub" >/dev/null
KEY=$(ls "$WORK/pub"/*.pem | head -1)

# Offline: stop the server first, so nothing but the files is involved.
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || fail "server did not exit cleanly on SIGTERM"
SERVER_PID=""
grep -q "shutting down" "$WORK/server.log" || fail "no graceful shutdown"

"$BUILD/clients/cli/careseal" consent verify "$WORK/receipt.json" --public-key "$KEY" \
  | tee "$WORK/verify.txt" | grep -q "^VALID" || fail "verify: $(cat "$WORK/verify.txt")"
grep -q "printed name:      Alex Q. Patient" "$WORK/verify.txt" || fail "printed name not shown"
grep -q "meaning:           Consent to treatment" "$WORK/verify.txt" || fail "meaning not shown"

sed 's/Alex Q. Patient/Alex Q. Patiens/' "$WORK/receipt.json" >"$WORK/tampered.json"
if "$BUILD/clients/cli/careseal" consent verify "$WORK/tampered.json" --public-key "$KEY" >"$WORK/bad.txt"; then
  fail "a tampered receipt verified"
fi
grep -q "INVALID: SIGNATURE_INVALID" "$WORK/bad.txt" || fail "tamper reason: $(cat "$WORK/bad.txt")"
echo "consent CLI flow: publish, request, sign, reuse refused, check, show, keys, verify offline, tamper detected"
