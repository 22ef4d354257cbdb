#!/usr/bin/env bash
# Builds and runs every test:
#   dev   optimised build, every test (unit, io, sim, e2e, chaos, ops, secrets audit)
#   asan  ASan+UBSan build, every test except the chaos suite (it runs in dev; see docs/reliability.md)
#   tsan  ThreadSanitizer build of the concurrent code: client (io), executor and daemon (e2e), loader
#   fuzz  libFuzzer targets (clang-14), 30 s each over a copy of the seed corpora (FUZZ_SECONDS)
# Set THINGSYNC_TEST_PRESETS to run a subset, e.g. THINGSYNC_TEST_PRESETS="dev asan".
set -euo pipefail
cd "$(dirname "$0")/.."
presets="${THINGSYNC_TEST_PRESETS:-dev asan tsan}"

for preset in $presets; do
  start=$SECONDS
  echo "== $preset: configure, build, test"
  scripts/configure.sh "$preset"
  cmake --build --preset "$preset"
  if [[ "$preset" == fuzz ]]; then
    fuzz/run.sh build/fuzz "${FUZZ_SECONDS:-30}"
  else
    ctest --preset "$preset"
  fi
  echo "== $preset: done in $((SECONDS - start)) s"
done
