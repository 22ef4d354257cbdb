#!/usr/bin/env bash
# Builds and runs every test: the optimised build, then the ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
for preset in dev asan; do
  echo "== $preset: configure, build, test"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
