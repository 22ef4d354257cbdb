#!/usr/bin/env bash
# The deterministic simulation of the reconciler (docs/reliability.md, "Simulation"): builds
# thingsync-simulate and runs it with the arguments given.
#   scripts/simulate.sh --seconds 600          new seeds for ten minutes; failures shrunk
#   scripts/simulate.sh --seed 1234            one seed's history, printed as a story
#   scripts/simulate.sh --replay 'CODE'        a shrunk history, from the line its story gives
# THINGSYNC_SIM_PRESET picks the build (default dev; asan for sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${THINGSYNC_SIM_PRESET:-dev}
[[ -f "build/$preset/CMakeCache.txt" ]] || scripts/configure.sh "$preset"
cmake --build "build/$preset" --target thingsync-simulate >&2
exec "build/$preset/tests/simulation/thingsync-simulate" "$@"
