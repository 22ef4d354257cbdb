#!/usr/bin/env bash
# Proves that the simulation catches real bugs (docs/reliability.md, "Simulation"): each patch
# here plants one bug the engine once had or could have. For each: apply it, build the
# explorer, play seeds from 1 until one fails, print that history shrunk, take the bug out.
# The patches are never applied in a commit. Builds build/${THINGSYNC_SIM_PRESET:-dev}.
set -euo pipefail
cd "$(dirname "$0")/../../.."
preset=${THINGSYNC_SIM_PRESET:-dev}
bin="build/$preset/tests/simulation/thingsync-simulate"
applied=""
restore() { if [[ -n "$applied" ]]; then git apply -R "$applied"; fi; }
trap restore EXIT
for patch in tests/simulation/planted/*.patch; do
  [[ $# -eq 0 || "$patch" == *"$1"* ]] || continue
  echo "== $(head -1 "$patch")"
  git apply "$patch"
  applied="$patch"
  nice -n 10 cmake --build "build/$preset" --target thingsync-simulate >/dev/null
  "$bin" --count "${SEEDS:-2000}" --from 1 --first || true
  git apply -R "$patch"
  applied=""
done
nice -n 10 cmake --build "build/$preset" --target thingsync-simulate >/dev/null
