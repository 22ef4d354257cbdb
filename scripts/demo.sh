#!/usr/bin/env bash
# The demo: build thingsync and thingsync-sim, start the simulator, and run the main job on the
# example fleet (examples/desired-state/): validate, plan, apply, plan again (nothing to do).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/configure.sh dev
cmake --build --preset dev --target thingsync thingsync-sim
bin=build/dev/src

work=$(mktemp -d)
sim_pid=
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$work"
  rm -f examples/.demo-config.yaml
}
trap cleanup EXIT

# The simulator on a free port, with 5 bindings that are not in the example fleet.
"$bin/sim/thingsync-sim" --listen 127.0.0.1:0 --token "$(cat examples/secrets/api-token)" \
  --seed 5 >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 100); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/sim.out")
[ -n "$url" ] || { echo "thingsync-sim did not start:"; cat "$work/sim.err"; exit 1; }
echo "== thingsync-sim listening on $url"

# The example config, pointed at this simulator, with a fresh state file and change journal.
sed -e "s#http://127.0.0.1:8080#$url#" -e "s#thingsync-state.json#$work/state.json#" \
  -e "s#thingsync-changes.jsonl#$work/changes.jsonl#" \
  examples/config.yaml >examples/.demo-config.yaml
export THINGSYNC_FLEET_KEY_FILE=examples/secrets/fleet-key
ts() { echo; echo "== thingsync $*"; "$bin/cli/thingsync" "$@" --config examples/.demo-config.yaml; }

ts validate
ts plan || [ $? -eq 2 ]         # exit 2: changes to make
ts apply --yes
ts plan                          # exit 0: nothing to do
ts history --since 1h            # the writes apply made, from the change journal
echo
echo "== demo done: the simulator holds the example fleet; 'thingsync plan' finds nothing to change"
