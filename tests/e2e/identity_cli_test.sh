#!/usr/bin/env bash
# Identity through the real binaries: an admin registers a tenant, an EHR
# token issuer (an Ed25519 JWK Set made here with openssl) and a clinician
# with `careseal admin ...`; the EHR registers a patient and a DOB link the
# portal redeems (`careseal admin link ...`); then the EHR's
# clinician acts through `careseal --token JWT` with JWTs minted here
# (EdDSA signed by `openssl pkeyutl`): accepted once, refused when replayed,
# tampered, or after the issuer is revoked; and under a break-glass grant
# (`careseal break-glass ...`, `--break-glass`).
# Usage: identity_cli_test.sh BUILD_DIR
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
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

bash "$ROOT/certs-example/gen-certs.sh" "$WORK/certs" >/dev/null
mkdir -p "$WORK/keys" && head -c 32 /dev/urandom >"$WORK/keys/master.key" && chmod 600 "$WORK/keys/master.key"
C="$WORK/certs"

"$BUILD/services/server/careseal-server" --listen=127.0.0.1:0 \
  --tls-ca="$C/ca.crt" --tls-cert="$C/server.crt" --tls-key="$C/server.key" \
  --db="$WORK/careseal.db" --key-dir="$WORK/keys" --shutdown_grace_seconds=1 \
  >"$WORK/server.log" 2>&1 &
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

# The EHR's signing key and its public JWK Set.
openssl genpkey -algorithm ed25519 -out "$WORK/ehr.pem" 2>/dev/null
X=$(openssl pkey -in "$WORK/ehr.pem" -pubout -outform DER | tail -c 32 | b64url)
printf '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"%s","kid":"ehr-1","alg":"EdDSA","use":"sig"}]}' \
  "$X" >"$WORK/jwks.json"
ISS=https://ehr.demo.example
mint() {  # mint SUB -> a 5-minute EdDSA JWT from the EHR's key
  local now; now=$(date +%s)
  local h p
  h=$(printf '{"alg":"EdDSA","kid":"ehr-1","typ":"JWT"}' | b64url)
  p=$(printf '{"iss":"%s","sub":"%s","aud":"careseal","iat":%d,"nbf":%d,"exp":%d,"jti":"%s"}' \
    "$ISS" "$1" "$now" "$now" $((now + 300)) "$(date +%s%N)-$RANDOM" | b64url)
  printf '%s' "$h.$p" >"$WORK/input"
  local s
  s=$(openssl pkeyutl -sign -rawin -inkey "$WORK/ehr.pem" -in "$WORK/input" | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}

cli admin admin tenant create --id demo-clinic --display-name "Demo clinic" \
  --time-zone America/Chicago | json 'd["tenant"]["name"]' | grep -qx tenants/demo-clinic \
  || fail "tenant create"
ISSUER=$(cli admin admin issuer register tenants/demo-clinic --id demo-ehr \
  --issuer-uri "$ISS" --kind ehr \
  --peer spiffe://careseal.local/tenant/demo-clinic/ehr/demo-ehr \
  --jwks-file "$WORK/jwks.json" | json 'd["issuer"]["name"]')
[[ "$ISSUER" == tenants/demo-clinic/issuers/demo-ehr ]] || fail "issuer: $ISSUER"
cli admin admin clinician create tenants/demo-clinic --id dr-token \
  --display-name "Dr Token" --issuer "$ISSUER" --subject u-1 --care-team true >/dev/null \
  || fail "clinician create"
TEAM=$(cli admin admin clinician list tenants/demo-clinic --care-team-only | json 'len(d["clinicians"])')
[[ "$TEAM" == 1 ]] || fail "care team: $TEAM"
ON_CALL=$(cli admin admin clinician update tenants/demo-clinic/clinicians/dr-token \
  --on-call true | json 'd["clinician"]["on_call"]')
[[ "$ON_CALL" == True ]] || fail "on call: $ON_CALL"

# Patients: the date of birth goes in and never comes out.
PATIENT=$(cli ehr-demo admin patient create tenants/demo-clinic --external-id MRN-9 \
  --display-name "Pat Demo" --dob 1980-05-17 | json 'd["patient"]["name"]')
GOT=$(cli ehr-demo admin patient get "$PATIENT")
echo "$GOT" | grep -q MRN-9 || fail "patient get: $GOT"
if echo "$GOT" | grep -q 1980; then fail "date of birth returned"; fi
if grep -q "1980-05-17\|MRN-9" "$WORK/server.log"; then fail "PII in the server log"; fi
# Bad input: exit 2 naming the field.
if OUT=$(cli ehr-demo admin patient create tenants/demo-clinic --external-id MRN-10 \
  --dob 1980-02-30 2>&1); then fail "bad date accepted"; fi
echo "$OUT" | grep -q "INVALID_DATE" || fail "bad date: $OUT"

# A DOB link: the wrong date counts a try, the right one opens a session
# once; the link token is single use.
LINK=$(cli ehr-demo admin link create "$PATIENT" --factor dob)
LTOKEN=$(echo "$LINK" | json 'd["link_token"]')
if OUT=$(cli portal admin link redeem --token "$LTOKEN" --dob 1980-05-18 2>&1); then fail "wrong dob"; fi
echo "$OUT" | grep -q "SECOND_FACTOR_MISMATCH.*4 attempts remaining" || fail "wrong dob: $OUT"
SESSION=$(cli portal admin link redeem --token "$LTOKEN" --dob 1980-05-17 | json 'd["session"]["state"]')
[[ "$SESSION" == PATIENT_SESSION_STATE_ACTIVE ]] || fail "session: $SESSION"
if OUT=$(cli portal admin link redeem --token "$LTOKEN" --dob 1980-05-17 2>&1); then fail "reuse"; fi
echo "$OUT" | grep -q "LINK_ALREADY_USED" || fail "reuse: $OUT"

# A thread (opened by a clinician tool's own certificate). The EHR alone may
# not message in it; with its clinician's token it may. Tokens are single
# use: one token per call (a command making two calls needs two).
THREAD=$(cli clinician-demo messages send --patient "$PATIENT" --subject Hi --text Hello \
  | json 'd["message"]["name"].split("/messages/")[0]')
if OUT=$(cli ehr-demo messages send --thread "$THREAD" --text Again 2>&1); then
  fail "EHR without token sent a message"
fi
echo "$OUT" | grep -q ROLE_NOT_ALLOWED || fail "no token: $OUT"
TOKEN=$(mint u-1)
SENT=$(cli ehr-demo --token "$TOKEN" messages send --thread "$THREAD" --text "From Dr Token")
SENDER=$(echo "$SENT" | json 'd["message"]["sender"]["name"]')
[[ "$SENDER" == tenants/demo-clinic/clinicians/dr-token ]] || fail "sender: $SENDER"
# Replayed, tampered, unknown subject.
if OUT=$(cli ehr-demo --token "$TOKEN" messages list --patient "$PATIENT" 2>&1); then fail "replay accepted"; fi
echo "$OUT" | grep -q "UNAUTHENTICATED TOKEN_REPLAYED" || fail "replay: $OUT"
T2=$(mint u-1); BAD="${T2%?}"; [[ "${T2: -1}" == A ]] && BAD+=B || BAD+=A
if OUT=$(cli ehr-demo --token "$BAD" messages list --patient "$PATIENT" 2>&1); then fail "tampered accepted"; fi
echo "$OUT" | grep -q "TOKEN_INVALID" || fail "tampered: $OUT"
if OUT=$(cli ehr-demo --token "$(mint u-404)" messages list --patient "$PATIENT" 2>&1); then fail "unknown sub"; fi
echo "$OUT" | grep -q "PRINCIPAL_NOT_FOUND" || fail "unknown sub: $OUT"

# Break-glass (`careseal break-glass ...`, global --break-glass): Dr Token
# opens a grant for the patient with a reason; calls under it act as role
# break_glass for that patient only, are audited with the grant, and are
# refused once the grant is ended.
if OUT=$(cli ehr-demo --token "$(mint u-1)" break-glass start tenants/demo-clinic/clinicians/dr-token \
  --patient "$PATIENT" --reason "short" 2>&1); then fail "short reason accepted"; fi
echo "$OUT" | grep -q "INVALID_ARGUMENT REASON_TOO_SHORT" || fail "short reason: $OUT"
if OUT=$(cli ehr-demo --token "$(mint u-1)" break-glass start tenants/demo-clinic/clinicians/dr-token \
  --patient "$PATIENT" --reason "Unresponsive after infusion, chart needed" --minutes 1 2>&1); then
  fail "1-minute grant accepted"
fi
echo "$OUT" | grep -q "DURATION_OUT_OF_RANGE" || fail "1-minute grant: $OUT"
GRANT_JSON=$(cli ehr-demo --token "$(mint u-1)" break-glass start tenants/demo-clinic/clinicians/dr-token \
  --patient "$PATIENT" --reason "Unresponsive after infusion, chart needed" --minutes 30)
GRANT=$(echo "$GRANT_JSON" | json 'd["grant"]["name"]')
[[ "$GRANT" == tenants/demo-clinic/clinicians/dr-token/breakGlassGrants/* ]] || fail "grant: $GRANT_JSON"
[[ $(echo "$GRANT_JSON" | json 'd["grant"]["state"]') == BREAK_GLASS_STATE_ACTIVE ]] || fail "grant state"
LISTED=$(cli ehr-demo --token "$(mint u-1)" break-glass list tenants/demo-clinic/clinicians/dr-token \
  --patient "$PATIENT" | json '[g["name"] for g in d["grants"]]')
[[ "$LISTED" == "['$GRANT']" ]] || fail "grant list: $LISTED"
cli ehr-demo --token "$(mint u-1)" --break-glass "$GRANT" messages list --patient "$PATIENT" \
  | grep -q "$THREAD" || fail "the grant's patient under break-glass"
OTHER=$(cli ehr-demo admin patient create tenants/demo-clinic --external-id MRN-11 \
  --display-name "Other Patient" --dob 1975-01-02 | json 'd["patient"]["name"]')
if OUT=$(cli ehr-demo --token "$(mint u-1)" --break-glass "$GRANT" messages list --patient "$OTHER" 2>&1); then
  fail "break-glass reached another patient"
fi
echo "$OUT" | grep -q "NOT_FOUND" || fail "another patient: $OUT"
FLAGGED=$(cli auditor-demo audit events --tenant demo-clinic --category BREAK_GLASS \
  | json 'sorted({e["action"].split("/")[-1] for e in d["events"] if e["actor"].get("break_glass_grant") == "'"$GRANT"'"})')
echo "$FLAGGED" | grep -q "ListThreads" || fail "break-glass use not audited with its grant: $FLAGGED"
ENDED=$(cli ehr-demo --token "$(mint u-1)" break-glass end "$GRANT" | json 'd["grant"]["state"]')
[[ "$ENDED" == BREAK_GLASS_STATE_ENDED ]] || fail "end: $ENDED"
if OUT=$(cli ehr-demo --token "$(mint u-1)" --break-glass "$GRANT" messages list --patient "$PATIENT" 2>&1); then
  fail "ended grant accepted"
fi
echo "$OUT" | grep -q "PERMISSION_DENIED BREAK_GLASS_EXPIRED" || fail "ended grant: $OUT"

# Revoked issuer: its tokens are refused from now on.
cli admin admin issuer revoke "$ISSUER" | json 'd["issuer"]["state"]' | grep -qx ISSUER_STATE_REVOKED \
  || fail "revoke"
if OUT=$(cli ehr-demo --token "$(mint u-1)" messages list --patient "$PATIENT" 2>&1); then fail "revoked accepted"; fi
echo "$OUT" | grep -q "ISSUER_NOT_ALLOWED" || fail "revoked: $OUT"
echo "identity CLI: tenant, issuer, clinician, patient, tokens (ok, replay, tamper, unknown, revoked), break-glass (start, list, use, other patient, audit, end): PASS"
