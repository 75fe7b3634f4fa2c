#!/usr/bin/env bash
# CPU of each server thread (grouped by thread name) over a window of a
# careseal-bench scenario: shows which thread bounds a scenario (e.g. the
# store's sql-writer against gRPC's nexting_thread).
#
#   bench/thread-cpu.sh SCENARIO [careseal-bench flags]
#   bench/thread-cpu.sh check-consent --inflight=64
#
# careseal-bench measures the echo ceiling first (warm-up 2 s + 8 s), then
# the scenario; the window (default 3 s) starts DELAY seconds in (default 15,
# inside the scenario for scenarios without set-up; sign-consent and
# clinic-day first request their pool, so give them a later DELAY).
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
sleep "${DELAY:-15}"
server=$(pgrep -P "$parent" | head -1)
ticks() {  # tid name utime+stime (clock ticks) of every thread of the server
  for t in /proc/"$server"/task/*; do
    echo "$(basename "$t") $(tr ' ' _ <"$t/comm") $(awk '{print $14 + $15}' "$t/stat")"
  done | sort
}
before=$(ticks)
sleep "$window"
after=$(ticks)
hz=$(getconf CLK_TCK)
echo "server CPU by thread name over ${window} s:"
join <(echo "$before") <(echo "$after") |
  awk -v hz="$hz" '{ms[$2] += ($5 - $3) * 1000 / hz; n[$2]++}
    END {for (k in ms) if (ms[k] > 0) printf "  %-16s %2d threads %6.0f ms\n", k, n[k], ms[k]}' |
  sort -k4 -nr
wait "$parent"
grep -E "calls_per_s" "$out" | tail -1
rm -f "$out"
