#!/usr/bin/env bash
# cmake --preset PRESET, starting afresh when build/PRESET was made by another generator
# (the presets moved from Makefiles to Ninja; cmake refuses to switch generators in place).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="build/$1"
if [[ -f "$dir/CMakeCache.txt" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
  rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
fi
cmake --preset "$1" >/dev/null
