#!/usr/bin/env bash
# Builds and runs every test, in three builds:
#   asan  ASan+UBSan: every test (unit, io, sim, e2e, chaos, ops, then the secrets audit)
#   tsan  ThreadSanitizer: the concurrent code: client (io), executor and daemon (e2e), loader
#   fuzz  libFuzzer targets (clang-14), 30 s each (FUZZ_SECONDS) over a copy of the seed corpora
#   package  not a preset: a plain Release build (no presets) and the Debian package, then lintian,
#         its file list, `cmake --install`'s tree, a throwaway root (scripts/package.sh)
# The optimised build (preset dev) is the one the demo and the benchmarks use; to run every test
# on it as well: THINGSYNC_TEST_PRESETS="dev asan tsan fuzz" scripts/test.sh.
#
# Both cores stay busy: while the tests of one build run (much of their time is spent waiting on
# timers and sockets), the next build compiles at the lowest CPU priority (nice 19), so the tests
# get the CPU whenever they want it and the compiler gets the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a presets <<<"${THINGSYNC_TEST_PRESETS:-asan tsan fuzz package}"
[[ ${#presets[@]} -gt 0 ]] || { echo "test.sh: no presets" >&2; exit 64; }
logs="$(mktemp -d "${TMPDIR:-/tmp}/thingsync-test.XXXXXX")"
background=""
cleanup() {
  if [[ -n "$background" ]]; then kill -- -"$background" 2>/dev/null || true; fi
  rm -rf "$logs"
}
trap cleanup EXIT
start_all=$SECONDS

build() {  # build PRESET: configure and build (prints cmake's output)
  if [[ "$1" == package ]]; then
    scripts/package.sh build
    return
  fi
  scripts/configure.sh "$1"
  cmake --build --preset "$1"
}

run_tests() {  # run_tests PRESET
  if [[ "$1" == fuzz ]]; then
    fuzz/run.sh build/fuzz "${FUZZ_SECONDS:-30}"
  elif [[ "$1" == package ]]; then
    scripts/package.sh check
  else
    ctest --preset "$1"
  fi
}

echo "== ${presets[0]}: configure and build"
t=$SECONDS
build "${presets[0]}"
echo "== ${presets[0]}: built in $((SECONDS - t)) s"

for i in "${!presets[@]}"; do
  preset="${presets[$i]}"
  next="${presets[$((i + 1))]:-}"
  if [[ -n "$next" ]]; then
    echo "== $next: configure and build in the background (nice 19), log shown when done"
    set -m  # its own process group, so that cleanup can stop the whole build
    (
      t=$SECONDS
      nice -n 19 bash -c "$(declare -f build); build $next" >"$logs/$next.log" 2>&1
      echo "== $next: built in $((SECONDS - t)) s (in the background)" >>"$logs/$next.log"
    ) &
    background=$!
    set +m
  fi
  echo "== $preset: tests"
  t=$SECONDS
  run_tests "$preset"
  echo "== $preset: tests done in $((SECONDS - t)) s"
  if [[ -n "$next" ]]; then
    status=0
    wait "$background" || status=$?
    background=""
    tail -n 5 "$logs/$next.log"
    if [[ $status -ne 0 ]]; then
      cat "$logs/$next.log"
      echo "== $next: the build failed" >&2
      exit 1
    fi
  fi
done
echo "== all done in $((SECONDS - start_all)) s: ${presets[*]}"
