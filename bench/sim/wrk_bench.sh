#!/usr/bin/env bash
# Requests/s thingsync-sim serves on one core (taskset -c 0), measured with wrk -t1 -c8, and
# the simulator's CPU time per request (user + system, from /proc/<pid>/task/*/schedstat), a
# figure that stays meaningful when other processes share the machine.
#   bench/sim/wrk_bench.sh [path/to/thingsync-sim]     (default: build/dev/src/sim/thingsync-sim)
# Environment: DURATION (default 10s), SEED (bindings preloaded, default 10000),
#              DELETE_SEED (bindings preloaded for the DELETE run, default 800000:
#              more than 10 s of DELETEs take),
#              SIM_CPU / WRK_CPU (cores for the simulator and for wrk, default 0 and 1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sim="${1:-$here/../../build/dev/src/sim/thingsync-sim}"
duration="${DURATION:-10s}"
seed="${SEED:-10000}"
delete_seed="${DELETE_SEED:-800000}"
sim_cpu="${SIM_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"
work="$(mktemp -d)"
sim_pid=""
cleanup() {
  if [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

start_sim() {  # start_sim SEED -> sets sim_pid and port
  taskset -c "$sim_cpu" "$sim" --listen 127.0.0.1:0 --token bench --seed "$1" --random-seed 1 \
    --next-links relative >"$work/out" 2>"$work/err" &
  sim_pid=$!
  for _ in $(seq 1 600); do
    if [[ -s "$work/out" ]]; then break; fi
    sleep 0.1
  done
  port="$(sed -n '1s/.*:\([0-9]*\)$/\1/p' "$work/out")"
  [[ -n "$port" ]] || { echo "simulator did not start" >&2; cat "$work/err" >&2; exit 1; }
}
stop_sim() { kill "$sim_pid"; wait "$sim_pid" || true; sim_pid=""; }

cpu_ns() {  # CPU nanoseconds the simulator has used so far, all threads
  cat /proc/"$sim_pid"/task/*/schedstat | awk '{ns += $1} END {printf "%.0f", ns}'
}

run_wrk() {  # run_wrk LABEL ARGS...
  local label="$1"; shift
  local out before after
  before="$(cpu_ns)"
  out="$(taskset -c "$wrk_cpu" wrk -t1 -c8 -d"$duration" -H 'Authorization: Bearer bench' "$@")"
  after="$(cpu_ns)"
  local rps errors requests
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  errors="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  printf '%-28s %12s req/s %8s us CPU/req%s\n' "$label" "$rps" \
    "$(awk -v ns="$((after - before))" -v n="$requests" 'BEGIN {printf "%.2f", n ? ns / n / 1000 : 0}')" \
    "${errors:+   (non-2xx: $errors)}"
}

ids_of() {  # ids_of FILE: every binding id, by walking the list
  python3 - "$port" "$1" <<'PY'
import json, sys, urllib.request
port, path = sys.argv[1], sys.argv[2]
target, ids = "/mqtt/bindings?limit=1000", []
while target:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{target}", headers={"Authorization": "Bearer bench"})
    page = json.load(urllib.request.urlopen(req))
    ids += [i["id"] for i in page["items"]]
    target = page.get("next")
open(path, "w").write("\n".join(ids) + "\n")
PY
}

echo "thingsync-sim on core $sim_cpu, wrk -t1 -c8 -d$duration on core $wrk_cpu"
start_sim "$seed"
ids_of "$work/ids"
one_id="$(head -1 "$work/ids")"
run_wrk "GET /mqtt/bindings/{id}" "http://127.0.0.1:$port/mqtt/bindings/$one_id"
run_wrk "GET /mqtt/bindings?limit=50" "http://127.0.0.1:$port/mqtt/bindings?limit=50"
run_wrk "POST /mqtt/bindings" -s "$here/post.lua" "http://127.0.0.1:$port"
stop_sim

start_sim "$delete_seed"
ids_of "$work/ids"
IDS_FILE="$work/ids" run_wrk "DELETE /mqtt/bindings/{id}" -s "$here/delete.lua" "http://127.0.0.1:$port"
stop_sim
