#!/usr/bin/env bash
# CPU of each server thread (grouped by thread name) over a window of a
# careseal-bench scenario, and how long those threads were runnable but
# waiting for a core (the scheduler's run-queue delay, from
# /proc/PID/task/TID/schedstat): shows which thread bounds a scenario (e.g.
# the store's sql-writer against gRPC's nexting_thread), and whether it is
# busy or starved of a core. Also the bytes each group of threads wrote
# (`wchar` of /proc/PID/task/TID/io: the writer's WAL writes, the
# checkpointer's copies); divided by the window's calls, the WAL bytes per
# call.
#
#   bench/thread-cpu.sh SCENARIO [careseal-bench flags]
#   bench/thread-cpu.sh check-consent --inflight=64
#
# careseal-bench measures the echo ceiling first (warm-up 2 s + 8 s), then
# the scenario; the window (default 3 s) starts DELAY seconds in (default 12,
# inside the scenario for scenarios without set-up). sign-consent and
# clinic-day first request their pool, which takes a varying time: for them
# the window starts DELAY seconds (default 3, past the warm-up) after the
# bench says it is running the scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=$1
shift
bench=${BENCH:-build/bench/careseal-bench}
window=${WINDOW:-3}
out=$(mktemp)
"$bench" --scenario="$scenario" --seconds=8 --warmup_seconds=2 \
  --spawn_server "$@" >"$out" 2>&1 &
parent=$!
case $scenario in
  sign-consent | clinic-day)
    until grep -q "running $scenario" "$out"; do
      kill -0 "$parent" 2>/dev/null || { cat "$out" >&2; exit 1; }
      sleep 0.2
    done
    sleep "${DELAY:-3}"
    ;;
  *) sleep "${DELAY:-12}" ;;
esac
# The server is the child with the store's writer thread (the bench may
# have other children, short-lived ones included).
server=""
for pid in $(pgrep -P "$parent" -x "$(basename "$bench" | cut -c1-15)"); do
  if grep -qx sql-writer /proc/"$pid"/task/*/comm 2>/dev/null; then
    server=$pid
    break
  fi
done
if [ -z "$server" ]; then
  echo "no server process with a sql-writer thread when the window began" >&2
  wait "$parent" || true
  exit 1
fi
ticks() {  # tid name on-CPU-ns run-queue-wait-ns bytes-written per thread
  local t comm stat wchar
  for t in /proc/"$server"/task/*; do
    # gRPC starts and ends threads as it goes: skip one that just ended.
    comm=$(tr ' ' _ 2>/dev/null <"$t/comm") || continue
    stat=$(awk '{print $1, $2}' "$t/schedstat" 2>/dev/null) || continue
    wchar=$(awk '$1 == "wchar:" {print $2}' "$t/io" 2>/dev/null) || continue
    echo "$(basename "$t") $comm $stat $wchar"
  done | sort
}
before=$(ticks)
sleep "$window"
after=$(ticks)
echo "server threads by name over ${window} s (on a core / runnable, waiting for one / written):"
join <(echo "$before") <(echo "$after") |
  awk '{run[$2] += ($7 - $3) / 1e6; wait[$2] += ($8 - $4) / 1e6;
      wrote[$2] += ($9 - $5) / 1e6; n[$2]++}
    END {for (k in run) if (run[k] > 0) printf "  %-16s %2d threads %6.0f ms on CPU %6.0f ms waiting %7.1f MB written\n", k, n[k], run[k], wait[k], wrote[k]}' |
  sort -k4 -nr
wait "$parent"
grep -E "calls_per_s" "$out" | tail -1
rm -f "$out"
