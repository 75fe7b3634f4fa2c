#!/usr/bin/env bash
# Pre-session through the real binaries: careseal-server (its scheduler loop
# on the real clock) and `careseal sessions`: publish instructions, make them
# the tenant default, schedule an induction series, list, move, cancel, book
# a session at short notice whose T-48 h instructions the loop delivers into
# the inbox at once, ask readiness, and refuse bad input (exit 2).
# Usage: presession_cli_test.sh BUILD_DIR
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
at() {  # at HOURS_FROM_NOW -> RFC 3339, on the hour
  python3 -c "import datetime as d; t=d.datetime.now(d.timezone.utc).replace(minute=0,second=0,microsecond=0)+d.timedelta(hours=$1); print(t.strftime('%Y-%m-%dT%H:%M:%SZ'))"
}

bash "$ROOT/certs-example/gen-certs.sh" "$WORK/certs" >/dev/null
mkdir -p "$WORK/keys" && head -c 32 /dev/urandom >"$WORK/keys/master.key" && chmod 600 "$WORK/keys/master.key"
C="$WORK/certs"

"$BUILD/services/server/careseal-server" --listen=127.0.0.1:0 \
  --tls-ca="$C/ca.crt" --tls-cert="$C/server.crt" --tls-key="$C/server.key" \
  --db="$WORK/careseal.db" --key-dir="$WORK/keys" --shutdown_grace_seconds=1 \
  --presession_scheduler_interval_seconds=1 >"$WORK/server.log" 2>&1 &
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
P=tenants/demo-clinic/patients/p-1

cat >"$WORK/version.json" <<'JSON'
{"title": "Before your ketamine infusion",
 "bodyMarkdown": "Wear comfortable clothes.",
 "solidsCutoff": "21600s", "clearLiquidsCutoff": "7200s",
 "escortRequired": true,
 "medicationHolds": [{"id": "benzodiazepines",
   "text": "Take or hold benzodiazepines only as your clinician directed."}],
 "whatToBring": ["photo ID"], "arrivalLead": "1800s",
 "dischargeAcknowledgements": [{"id": "no-driving",
   "text": "No driving, machinery or legal decisions for 24 hours.",
   "required": true}]}
JSON
VERSION=$(cli ehr-demo sessions instructions --tenant demo-clinic --id pre-infusion \
  --file "$WORK/version.json" | json 'd["version"]["name"]')
[[ "$VERSION" == tenants/demo-clinic/instructionTemplates/pre-infusion/versions/1 ]] || fail "version: $VERSION"
cli admin sessions settings --tenant demo-clinic \
  --default-template tenants/demo-clinic/instructionTemplates/pre-infusion >/dev/null

SERIES=$(cli ehr-demo sessions schedule --patient "$P" --procedure ketamine-iv-induction \
  --first-start "$(at 168)" --weeks 3 2 1 --location "Suite 2")
COUNT=$(echo "$SERIES" | json 'len(d["sessions"])')
[[ "$COUNT" == 6 ]] || fail "series: $COUNT sessions"
S2=$(echo "$SERIES" | json 'd["sessions"][1]["name"]')
S3=$(echo "$SERIES" | json 'd["sessions"][2]["name"]')
LISTED=$(cli clinician-demo sessions list --patient "$P" | json 'len(d["sessions"])')
[[ "$LISTED" == 6 ]] || fail "list: $LISTED"
MOVED=$(cli ehr-demo sessions move "$S2" --start "$(at 240)" --reason "patient request" \
  | json 'd["session"]["start_time"]')
[[ "$MOVED" == "$(at 240)" ]] || fail "move: $MOVED"
cli ehr-demo sessions cancel "$S3" --reason "unwell" >/dev/null
CANCELLED=$(cli ehr-demo sessions list --patient "$P" --state cancelled | json 'len(d["sessions"])')
[[ "$CANCELLED" == 1 ]] || fail "cancelled: $CANCELLED"

# Booked 30 h ahead: T-48 h has passed, so the loop delivers at once.
SOON=$(cli ehr-demo sessions schedule --patient "$P" --procedure ketamine-iv-induction \
  --start "$(at 30)" | json 'd["session"]["name"]')
MESSAGES=0
for _ in $(seq 1 100); do
  THREAD=$(cli clinician-demo messages list --patient "$P" | json 'd.get("threads", [{}])[0].get("name", "")')
  if [[ -n "$THREAD" ]]; then
    MESSAGES=$(cli clinician-demo messages list --thread "$THREAD" | json 'len(d.get("messages", []))')
    [[ "$MESSAGES" -ge 1 ]] && break
  fi
  sleep 0.1
done
[[ "$MESSAGES" == 1 ]] || fail "inbox: $MESSAGES messages"
cli clinician-demo messages list --thread "$THREAD" | json 'd["messages"][0]["text"]' \
  | grep -q "Before your ketamine infusion" || fail "instruction text"

READINESS=$(cli clinician-demo sessions readiness "$SOON")
STATE=$(echo "$READINESS" | json 'd["readiness"]["state"]')
REASONS=$(echo "$READINESS" | json '" ".join(i["reason"] for i in d["readiness"]["issues"])')
[[ "$STATE" == READINESS_STATE_NOT_READY ]] || fail "readiness: $STATE"
[[ "$REASONS" == "READINESS_REASON_CONSENT_MISSING READINESS_REASON_INSTRUCTIONS_NOT_ACKNOWLEDGED" ]] \
  || fail "reasons: $REASONS"

# Bad input: exit 2, the reason and the field named, nothing stored.
set +e
OUT=$(cli ehr-demo sessions schedule --patient "$P" --procedure ketamine-iv-induction \
  --start 2001-01-01T09:00:00Z 2>&1)
RC=$?
set -e
[[ $RC == 2 ]] || fail "past start: exit $RC"
echo "$OUT" | grep -q "START_TIME_IN_PAST" || fail "past start: $OUT"
TOTAL=$(cli ehr-demo sessions list --patient "$P" | json 'len(d["sessions"])')
[[ "$TOTAL" == 7 ]] || fail "total: $TOTAL"
echo "presession CLI: instructions, settings, schedule, list, move, cancel, delivery, readiness: OK"
