#!/usr/bin/env bash
# The audit log through the real binaries, as an auditor would use it:
# careseal-server on a free loopback port, a few consent calls (one denied),
# then `careseal audit events | checkpoint | proof | keys | export` with the
# auditor's certificate, and `careseal audit verify` offline after the server
# is gone: VALID for the export, INVALID naming the place for a tampered copy.
# Usage: audit_cli_test.sh BUILD_DIR
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
  --db="$WORK/careseal.db" --key-dir="$WORK/keys" \
  --audit-checkpoint-interval-seconds=0 >"$WORK/server.log" 2>&1 &
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

cli ehr-demo consent template create --tenant demo-clinic --id ketamine \
  --display-name "IV ketamine" >/dev/null
cli ehr-demo consent check --patient tenants/demo-clinic/patients/p-1 \
  --procedure ketamine-iv-induction >/dev/null
# The EHR may not read the audit log: refused, and that refusal is audited.
if cli ehr-demo audit events --tenant demo-clinic >/dev/null 2>&1; then
  fail "the EHR read the audit log"
fi

EVENTS=$(cli auditor-demo audit events --tenant demo-clinic)
COUNT=$(echo "$EVENTS" | json 'len(d["events"])')
[[ "$COUNT" == 3 ]] || fail "events: $COUNT"
DENIED=$(cli auditor-demo audit events --tenant demo-clinic --category AUTHORIZATION \
  | json 'd["events"][0]["action"]')
[[ "$DENIED" == /careseal.v1.AuditService/ListAuditEvents ]] || fail "denied: $DENIED"

SIZE=$(cli auditor-demo audit checkpoint --tenant demo-clinic --create \
  | json 'd["checkpoint"]["tree_size"]')
[[ "$SIZE" -ge 4 ]] || fail "checkpoint size: $SIZE"
cli auditor-demo audit proof --tenant demo-clinic --leaf 1 | tail -1 \
  | grep -q "^VALID: leaf 1 is in the tree" || fail "inclusion proof"
cli auditor-demo audit checkpoint --tenant demo-clinic --create >/dev/null
cli auditor-demo audit proof --tenant demo-clinic --from-size "$SIZE" | tail -1 \
  | grep -q "^VALID: the tree of size $SIZE is a prefix" || fail "consistency proof"

mkdir -p "$WORK/pub"
cli auditor-demo audit keys --out-dir "$WORK/pub" >/dev/null
KEY=$(ls "$WORK/pub"/*.pem | head -1)
cli auditor-demo audit export --tenant demo-clinic --out "$WORK/log.jsonl" \
  | grep -q "^exported" || fail "export"

# Offline: stop the server first, so nothing but the files is involved.
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || fail "server did not exit cleanly"
SERVER_PID=""

"$BUILD/clients/cli/careseal" audit verify "$WORK/log.jsonl" --key "$KEY" \
  | tee "$WORK/verify.txt" | grep -q "^VALID audit log of tenants/demo-clinic" \
  || fail "verify: $(cat "$WORK/verify.txt")"

# One character of one event changed: refused, naming the event.
python3 - "$WORK/log.jsonl" "$WORK/tampered.jsonl" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = next(n for n, l in enumerate(lines) if '"leaf_index":2,' in l)
line = lines[i]
at = line.index('"leaf":"') + 20
lines[i] = line[:at] + ("A" if line[at] != "A" else "B") + line[at + 1:]
open(sys.argv[2], "w").write("\n".join(lines))
PY
if OUT=$("$BUILD/clients/cli/careseal" audit verify "$WORK/tampered.jsonl" --key "$KEY"); then
  fail "a tampered export verified"
fi
echo "$OUT" | grep -q "^INVALID: LEAF_HASH_MISMATCH: event at leaf 2 " || fail "tampered: $OUT"
echo "audit CLI: OK"
