#!/usr/bin/env bash
# Messaging and events through the real binaries: careseal-server with
# development certificates, a clinician sending with `careseal messages`, and
# the EHR following with `careseal events watch --from CURSOR`, which must
# print every event after the cursor once (also across a server restart on
# the same port and database).
# Usage: messaging_cli_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
SERVER_PID=""
WATCH_PID=""
cleanup() {
  if [[ -n "$WATCH_PID" ]]; then kill "$WATCH_PID" 2>/dev/null || true; fi
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f "$WORK/server.log" ]] && cat "$WORK/server.log"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

bash "$ROOT/certs-example/gen-certs.sh" "$WORK/certs" >/dev/null
mkdir -p "$WORK/keys" && head -c 32 /dev/urandom >"$WORK/keys/master.key" && chmod 600 "$WORK/keys/master.key"
C="$WORK/certs"

start_server() {  # start_server LISTEN
  "$BUILD/services/server/careseal-server" --listen="$1" \
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
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

cli() {  # cli IDENTITY args...
  local who=$1; shift
  "$BUILD/clients/cli/careseal" --target "localhost:$PORT" --ca "$C/ca.crt" \
    --cert "$C/$who.crt" --key "$C/$who.key" "$@"
}

start_server 127.0.0.1:0
SENT=$(cli clinician-demo messages send --patient tenants/demo-clinic/patients/p-1 \
  --subject "After your infusion" --category follow-up --text "How are you feeling?")
THREAD=$(echo "$SENT" | json 'd["message"]["name"].split("/messages/")[0]')
FIRST=$(echo "$SENT" | json 'd["message"]["name"]')
cli clinician-demo messages send --thread "$THREAD" --text "No driving for 24 h." --urgent >/dev/null
LISTED=$(cli clinician-demo messages list --thread "$THREAD" | json 'len(d["messages"])')
[[ "$LISTED" == 2 ]] || fail "list: $LISTED"
THREADS=$(cli clinician-demo messages list --patient tenants/demo-clinic/patients/- | json 'd["threads"][0]["name"]')
[[ "$THREADS" == "$THREAD" ]] || fail "threads: $THREADS"
# Reading as a clinician marks nothing (the messages are the clinician's own).
cli clinician-demo messages read "$FIRST" | json 'd["thread"]["name"]' >/dev/null

# Empty messages are bad input (exit 2) naming the field.
if OUT=$(cli clinician-demo messages send --thread "$THREAD" --text "" 2>&1); then fail "empty accepted"; fi
echo "$OUT" | grep -q "EMPTY_MESSAGE" || fail "empty: $OUT"

# The EHR follows from cursor 1: it must see cursor 2 first, then live ones.
cli ehr-demo events watch --tenant demo-clinic --from 1 --hours 0.05 >"$WORK/events.jsonl" 2>"$WORK/watch.err" &
WATCH_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/events.jsonl" ]] && break; sleep 0.1; done
cli clinician-demo messages send --thread "$THREAD" --text "Third" >/dev/null

# Restart on the same port and database; the watcher reconnects by itself.
stop_server
start_server "127.0.0.1:$PORT"
cli clinician-demo messages send --thread "$THREAD" --text "Fourth" >/dev/null
for _ in $(seq 1 200); do
  [[ $(wc -l <"$WORK/events.jsonl") -ge 3 ]] && break; sleep 0.1
done
kill "$WATCH_PID" 2>/dev/null || true; WATCH_PID=""
CURSORS=$(python3 -c "
import json
print(' '.join(str(json.loads(l)['cursor']) for l in open('$WORK/events.jsonl')))")
[[ "$CURSORS" == "2 3 4" ]] || fail "events after cursor 1: '$CURSORS' ($(cat "$WORK/watch.err"))"
echo "messaging CLI: send, list, read, events watch --from across a restart: OK"
