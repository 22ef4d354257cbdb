#!/usr/bin/env bash
# apply throughput against thingsync-sim (issue 5's benchmark):
#   1. 5,000 creates at rateLimit 200: wall time against the ideal 25 s (target: within 5%)
#   2. sim --latency 20ms, concurrency 8 and 32: bindings/s against concurrency/latency (>= 90%)
#   3. unthrottled, no latency, 20,000 creates: bindings/s (>= 10,000/s), journal and state
#      file included
# Usage: bench/engine/apply_bench.sh [BUILD_DIR]   (default build/dev; RelWithDebInfo)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/dev}
ts=$build/src/cli/thingsync
sim=$build/src/sim/thingsync-sim
[ -x "$ts" ] && [ -x "$sim" ] || { echo "build thingsync and thingsync-sim in $build first"; exit 1; }

work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_sim() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
  # The simulator gets core 0, thingsync core 1: neither slows the other.
  taskset -c 0 "$sim" --listen 127.0.0.1:0 --token bench --max-page-size 1000 "$@" \
    >"$work/sim.out" 2>"$work/sim.err" &
  sim_pid=$!
  for _ in $(seq 200); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^listening on //p' "$work/sim.out")
}

fleet() {  # N: desired state of N imei devices with derive passwords
  rm -rf "$work/fleet" "$work/state.json" "$work/state.json.journal"
  mkdir -p "$work/fleet"
  python3 - "$1" "$work/fleet/fleet.yaml" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
with open(out, "w") as f:
    f.write("defaults:\n  password:\n    derive:\n      keyFile: ../key\nbindings:\n")
    for i in range(n):
        f.write(f"  - deviceId: imei:35{i:013d}\n")
PY
}

config() {  # RATE CONCURRENCY
  printf 'bench-fleet-key-0123456789abcdefghijklmnopqrstuvwxyz\n' >"$work/key"
  echo bench >"$work/token"
  cat >"$work/config.yaml" <<EOC
api: {baseUrl: "$url", timeout: 10s}
auth: {tokenFile: token}
desiredState: {path: fleet}
state: {path: state.json}
sync: {rateLimit: $1, concurrency: $2}
EOC
}

run_apply() {  # prints the wall time in seconds
  local t0 t1
  t0=$(date +%s.%N)
  taskset -c 1 "$ts" apply --yes --config "$work/config.yaml" --log-level warn >"$work/apply.out" 2>"$work/apply.err" \
    || { echo "apply failed:"; tail -n 5 "$work/apply.out" "$work/apply.err"; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}

echo "== 1. 5,000 creates at rateLimit 200 (ideal 25.0 s)"
start_sim
fleet 5000
config 200 8
wall=$(run_apply)
python3 -c "w=$wall; print(f'wall {w:.2f} s, {5000/w:.1f} creates/s, {100*(w-25)/25:+.1f}% against ideal')"
grep -o "Apply complete.*" "$work/apply.out"

for c in 8 32; do
  n=$((c * 250))  # 5 s of ideal work, so that start-up is a small part of the run
  echo "== 2. sim --latency 20ms, concurrency $c, $n creates (ideal $((c * 50))/s)"
  start_sim --latency 20ms
  fleet "$n"
  config 1000000 "$c"
  wall=$(run_apply)
  python3 -c "w=$wall; i=$c*50; print(f'wall {w:.2f} s, {$n/w:.0f} creates/s = {100*$n/w/i:.1f}% of {i}/s (whole run: load, list, plan included)')"
  grep -o "Apply complete.*" "$work/apply.out"
done

echo "== 3. unthrottled, no latency, 20,000 creates"
start_sim
fleet 20000
config 1000000 32
wall=$(run_apply)
python3 -c "w=$wall; print(f'wall {w:.2f} s, {20000/w:.0f} creates/s (whole run)')"
grep -o "Apply complete.*" "$work/apply.out"
