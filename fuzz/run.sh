#!/usr/bin/env bash
# Runs every libFuzzer target for a while over a copy of its seed corpus (the corpus in the
# repository never grows) and fails when any target finds a crash, a leak, a timeout or an
# invariant violation. Builds nothing: build the targets first (see fuzz/README.md).
#
#   fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]      (default 30)
#
# Environment: FUZZ_TARGETS="config api_decode" runs only those; FUZZ_JOBS=N runs N targets at
# a time (default: the number of cores); FUZZ_WORK_DIR=DIR keeps the
# grown corpora and logs in DIR (default: a temporary directory, removed at the end); FUZZ_SEED=N
# seeds libFuzzer's random choices (default 1, so that a CI run can be repeated on the same
# machine; 0 picks a new seed each run: use that, and more seconds, to look for new findings).
# Crashing inputs are kept in BUILD_DIR/fuzz-artifacts/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 BUILD_DIR [SECONDS_PER_TARGET]" >&2
  exit 64
fi
build="$(cd "$1" && pwd)"
seconds="${2:-30}"
case "$seconds" in '' | *[!0-9]*) echo "run.sh: seconds must be a whole number" >&2; exit 64 ;; esac
read -r -a targets <<<"${FUZZ_TARGETS:-device_id config desired_state api_decode}"
seed="${FUZZ_SEED:-1}"
case "$seed" in '' | *[!0-9]*) echo "run.sh: FUZZ_SEED must be a whole number" >&2; exit 64 ;; esac

# Dictionaries per target (libFuzzer takes one file: the parts are joined).
dict_parts() {
  case "$1" in
    device_id) echo device_id ;;
    config) echo yaml config ;;
    desired_state) echo yaml desired_state device_id ;;
    api_decode) echo api_decode ;;
  esac
}

for t in "${targets[@]}"; do
  if [ ! -x "$build/fuzz/fuzz_$t" ]; then
    echo "run.sh: $build/fuzz/fuzz_$t is missing; build it first:" >&2
    echo "  cmake --build $build --target fuzz_targets" >&2
    exit 1
  fi
done

if [ -n "${FUZZ_WORK_DIR:-}" ]; then
  work="$FUZZ_WORK_DIR"
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/thingsync-fuzz.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

# Findings must stop the run: UBSan aborts on its first report (also when the build forgot
# -fno-sanitize-recover), ASan checks leaks at exit.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

# Runs one target; its summary line goes to $work/$t.summary, its exit code to $work/$t.rc.
run_target() {
  local t="$1"
  local corpus="$work/corpus/$t"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts/$t"
  cp "$here/corpus/$t"/* "$corpus"/
  local dict="$work/$t.dict"
  : >"$dict"
  for part in $(dict_parts "$t"); do cat "$here/dict/$part.dict" >>"$dict"; done
  local log="$work/$t.log"

  echo "== fuzz_$t: ${seconds}s over $(find "$corpus" -type f | wc -l) seeds, seed $seed"
  local rc=0
  "$build/fuzz/fuzz_$t" -seed="$seed" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="$dict" -artifact_prefix="$artifacts/$t/" \
    "$corpus" >"$log" 2>&1 || rc=$?

  # "#1234 DONE cov: 567 ft: 890 corp: ..." (or the last status line, if it stopped early).
  local status cov ft corp execs rate result
  status="$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -n 1 || true)"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$status")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$status")"
  corp="$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$status")"
  execs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  rate="$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc)"
    {
      echo "-- fuzz_$t failed; the end of its log:"
      tail -n 60 "$log"
      for a in "$artifacts/$t"/*; do
        [ -f "$a" ] || continue
        echo "-- input $a ($(wc -c <"$a") bytes), reproduce with: $build/fuzz/fuzz_$t $a"
        head -c 512 "$a" | od -An -c | head -n 20
      done
    } >"$work/$t.failure"
  fi
  printf '%-14s %8s execs %7s exec/s  cov %6s  ft %6s  corpus %5s  %s\n' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result" >"$work/$t.summary"
  echo "$rc" >"$work/$t.rc"
}

# FUZZ_JOBS targets at a time (default: one per core).
jobs="${FUZZ_JOBS:-$(nproc)}"
case "$jobs" in '' | *[!0-9]* | 0) echo "run.sh: FUZZ_JOBS must be a whole number above 0" >&2; exit 64 ;; esac
# Interrupted: stop the targets still running before the work directory goes.
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  rm -f "$work/$t.summary" "$work/$t.rc" "$work/$t.failure"  # a kept FUZZ_WORK_DIR's last run
  run_target "$t" &
  running=$((running + 1))
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
  if [ -s "$work/$t.failure" ]; then cat "$work/$t.failure"; fi
  summary+=("$(cat "$work/$t.summary" 2>/dev/null || echo "$t: no result")")
  if [ "$(cat "$work/$t.rc" 2>/dev/null || echo 1)" != 0 ]; then failed+=("$t"); fi
done

echo
echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a finding"
