#!/usr/bin/env bash
# Every benchmark under bench/ in one command, at sizes that fit 10 minutes on a 2-core machine,
# and one table of the figures: figure | target | measured | pass/fail (bench/run_table.py).
#
#   bench/run.sh [--build DIR] [--out FILE] [--quick]
#
#   --build DIR  the build whose binaries are measured (default build/dev). It may be a build of
#                an older commit: the scripts are this checkout's, and a benchmark whose feature
#                that build lacks gives n/a rows. The default build dir is configured and its
#                missing targets built first; any other is used as it is.
#   --out FILE   also write the table (markdown, with its header) to FILE.
#   --quick      tiny sizes: a smoke test of this script, not a measurement (the table says so;
#                the exit code then fails only on a benchmark that crashed or timed out).
#
# Each benchmark runs under `timeout`, in its own process group; whatever it leaves behind in that
# group (a simulator) is ended after it, and on Ctrl-C. Its output goes to a log directory that is
# kept and named at the end. Exit 0 when every row with a target passes, 1 otherwise, 2 on a
# usage or build error. See bench/README.md for what each benchmark measures.
set -uo pipefail

usage() { sed -n '2,18s/^# \{0,1\}//p' "$0" >&2; exit "${1:-2}"; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build=
out=
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) [ $# -ge 2 ] || usage; build="$2"; shift 2 ;;
    --build=*) build="${1#--build=}"; shift ;;
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --quick) quick=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
# Paths the caller gave are relative to the caller's directory; then work from the root.
default_build="$root/build/dev"
if [ -z "$build" ]; then
  build="$default_build"
elif [ -d "$build" ]; then
  build="$(cd "$build" && pwd)"
else
  echo "run.sh: no build directory $build" >&2
  exit 2
fi
if [ -n "$out" ]; then
  case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
fi
cd "$root" || exit 2

log() { printf '%s\n' "$*" >&2; }

ts="$build/src/cli/thingsync"
sim="$build/src/sim/thingsync-sim"
load_bench="$build/bench/config/thingsync_load_bench"
plan_bench="$build/bench/core/thingsync_plan_bench"
api_bench="$build/bench/api/thingsync_api_bench"
service_bench="$build/bench/sim/thingsync_sim_service_bench"

# The default build: configure it if needed and build what is missing (never anything else:
# binaries that exist are measured as they are).
if [ "$build" = "$default_build" ]; then
  if [ ! -f "$build/build.ninja" ]; then
    log "== cmake --preset dev"
    cmake --preset dev >&2 || { log "run.sh: cmake --preset dev failed"; exit 2; }
  fi
  missing=()
  [ -x "$ts" ] || missing+=(thingsync)
  [ -x "$sim" ] || missing+=(thingsync-sim)
  [ -x "$load_bench" ] || missing+=(thingsync_load_bench)
  [ -x "$plan_bench" ] || missing+=(thingsync_plan_bench)
  if [ ${#missing[@]} -gt 0 ]; then
    log "== cmake --build build/dev -j2 --target ${missing[*]}"
    if ! cmake --build "$build" -j2 --target "${missing[@]}" >&2; then
      log "run.sh: build failed"
      exit 2
    fi
  fi
  # These two exist only where the tests and the simulator library are configured: optional.
  optional=()
  [ -x "$api_bench" ] || optional+=(thingsync_api_bench)
  [ -x "$service_bench" ] || optional+=(thingsync_sim_service_bench)
  if [ ${#optional[@]} -gt 0 ]; then
    log "== cmake --build build/dev -j2 --target ${optional[*]}"
    cmake --build "$build" -j2 --target "${optional[@]}" >&2 || log "run.sh: (not built: n/a rows)"
  fi
fi

logs="$(mktemp -d "${TMPDIR:-/tmp}/thingsync-bench.XXXXXX")"
current=   # the process group (the `timeout` process) of the benchmark running now

# Ends what is left in a benchmark's process group: the group is ours (timeout made it), so
# nothing outside this run is touched.
end_group() {
  local pg="$1"
  if pgrep -g "$pg" >/dev/null 2>&1; then
    kill -TERM -- "-$pg" 2>/dev/null
    for _ in $(seq 50); do pgrep -g "$pg" >/dev/null 2>&1 || return 0; sleep 0.1; done
    kill -KILL -- "-$pg" 2>/dev/null
  fi
  return 0
}
on_signal() {
  trap - INT TERM
  [ -n "$current" ] && end_group "$current"
  rm -rf "$logs/tmp"
  log "run.sh: interrupted; logs in $logs"
  exit 130
}
trap on_signal INT TERM

meta() { printf '%s=%s\n' "$1" "$2" >>"$logs/meta"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
git_commit() {  # DIR: its short commit, with " (dirty)" when its work tree has changes
  local c
  c="$(git -C "$1" rev-parse --short HEAD 2>/dev/null)" || { echo "?"; return; }
  if [ -n "$(git -C "$1" status --porcelain 2>/dev/null | head -1)" ]; then c="$c (dirty)"; fi
  echo "$c"
}

# n/a: a benchmark this build (or this machine) cannot run; its rows say why.
not_applicable() {  # NAME REASON
  printf 'na %s\n' "$2" >"$logs/$1.status"
  log "== $1: n/a ($2)"
}

# Runs one benchmark: output to NAME.log, exit code and duration to NAME.status.
run_bench() {  # NAME TIMEOUT_S COMMAND...
  local name="$1" limit="$2"
  shift 2
  printf '%s\n' "$*" | sed "s|$root/||g; s|$logs/|LOGS/|g" >"$logs/$name.cmd"
  log "== $name: $(cat "$logs/$name.cmd")  (timeout ${limit} s)"
  local t0=$SECONDS rc
  # timeout puts itself and the benchmark in a process group of their own; on expiry it signals
  # the whole group, the benchmark's simulators included. A benchmark killed so leaves its
  # temporary files (fixtures of a million bindings) behind: TMPDIR keeps them where they go.
  mkdir -p "$logs/tmp"
  TMPDIR="$logs/tmp" timeout --kill-after=20 "$limit" "$@" </dev/null >"$logs/$name.log" 2>&1 &
  current=$!
  wait "$current"
  rc=$?
  end_group "$current"
  current=
  rm -rf "$logs/tmp"
  printf 'rc %s seconds %s limit %s\n' "$rc" "$((SECONDS - t0))" "$limit" >"$logs/$name.status"
  if [ "$rc" -ne 0 ]; then
    log "   exit $rc after $((SECONDS - t0)) s; the end of its log:"
    tail -n 8 "$logs/$name.log" | sed 's/^/   | /' >&2
  else
    log "   done in $((SECONDS - t0)) s"
  fi
}

have() { [ -x "$1" ]; }

started=$SECONDS
meta mode "$([ $quick = 1 ] && echo quick || echo full)"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta scripts "$(git_commit "$root")"
meta build "${build#"$root"/}"
src="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)"
if [ -n "$src" ] && [ "$src" != "$root" ]; then meta build_source "$src at $(git_commit "$src")"; fi
meta build_type "$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null)"
if have "$ts"; then
  meta version "$("$ts" --version 2>/dev/null | head -1)"
  meta built "$(date -u -r "$ts" '+%Y-%m-%d %H:%M UTC')"
fi
meta nproc "$(nproc)"
meta load_before "$(loadavg)"
command -v wrk >/dev/null 2>&1 && meta wrk yes || meta wrk no

# Sizes: full (the issue's figures) and --quick.
if [ $quick = 1 ]; then
  n_load=20000 n_plan=20000 plan_repeats=2 n_service=20000 n_fleet=20000
  api_args=(1 400) wrk_env=(DURATION=1s SEED=1000 DELETE_SEED=150000) aimd_seconds=3
else
  n_load=1000000 n_plan=1000000 plan_repeats=3 n_service=200000 n_fleet=1000000
  api_args=(5 5000) wrk_env=() aimd_seconds=30
fi
meta n_load "$n_load"
meta n_plan "$n_plan"
meta plan_repeats "$plan_repeats"
meta n_service "$n_service"
meta n_fleet "$n_fleet"
meta aimd_seconds "$aimd_seconds"
meta api_requests "${api_args[1]}"
# Timeouts in seconds, well above each benchmark's usual duration (bench/README.md): FULL QUICK.
limit() { [ $quick = 1 ] && echo "$2" || echo "$1"; }

# 1. config: load + validate 1M bindings (one file, 1,000 files), one-file reload.
if have "$load_bench"; then
  run_bench load "$(limit 150 60)" "$load_bench" "$n_load" one.yaml many reload
else
  not_applicable load "no bench/config/thingsync_load_bench in this build"
fi

# 2. core: make_plan at 1M x 1M x 1M, derive + fingerprint.
if have "$plan_bench"; then
  run_bench plan "$(limit 120 60)" "$plan_bench" "$n_plan" "$plan_repeats"
else
  not_applicable plan "no bench/core/thingsync_plan_bench in this build"
fi

# 3. sim: the request handling in process (CPU per request), then over HTTP with wrk.
if have "$service_bench"; then
  run_bench service "$(limit 60 30)" "$service_bench" "$n_service"
else
  not_applicable service "no bench/sim/thingsync_sim_service_bench in this build"
fi
if ! command -v wrk >/dev/null 2>&1; then
  not_applicable wrk "wrk is not installed"
elif ! have "$sim"; then
  not_applicable wrk "no thingsync-sim in this build"
else
  run_bench wrk "$(limit 180 90)" env "${wrk_env[@]}" "$here/sim/wrk_bench.sh" "$sim"
fi

# 4. api: the client against wrk, and at rateLimit 200 (its first part needs wrk: see the table).
if have "$api_bench"; then
  run_bench api "$(limit 150 60)" "$api_bench" "${api_args[@]}"
else
  not_applicable api "no bench/api/thingsync_api_bench in this build"
fi

# 5. engine: apply throughput (fixed sizes: the same in --quick), the adaptive rate, the fleet.
if have "$ts" && have "$sim"; then
  run_bench apply "$(limit 180 150)" "$here/engine/apply_bench.sh" "$build"
else
  not_applicable apply "no thingsync or thingsync-sim in this build"
fi

aimd_script="$here/engine/aimd_bench.py"
if [ ! -f "$aimd_script" ]; then
  not_applicable aimd "no bench/engine/aimd_bench.py in this checkout"
elif ! have "$ts" || ! have "$sim"; then
  not_applicable aimd "no thingsync or thingsync-sim in this build"
else
  probe="$logs/aimd-probe"
  mkdir -p "$probe/fleet"
  printf 'bindings: []\n' >"$probe/fleet/fleet.yaml"
  printf 'bench\n' >"$probe/token"
  printf '%s\n' 'api: {baseUrl: "http://127.0.0.1:9"}' 'auth: {tokenFile: token}' \
    'desiredState: {path: fleet}' 'state: {path: state.json}' \
    'sync: {rateLimit: auto, rateLimitMax: 1000}' >"$probe/config.yaml"
  if ! "$ts" validate --config "$probe/config.yaml" >"$probe/validate.out" 2>&1; then
    not_applicable aimd "this build's thingsync does not accept rateLimit: auto"
  elif grep -q -- '--rate-limit-retry-after' "$aimd_script" &&
    ! "$sim" --help 2>/dev/null | grep -q -- '--rate-limit-retry-after'; then
    not_applicable aimd "this build's thingsync-sim has no --rate-limit-retry-after"
  else
    # --out: its CSV and PNG go to the log directory, not over docs/.
    run_bench aimd "$(limit 420 120)" python3 "$aimd_script" --build "$build" \
      --max-seconds "$aimd_seconds" --out "$logs/aimd"
  fi
fi

if have "$ts" && have "$sim"; then
  run_bench fleet "$(limit 540 150)" python3 "$here/engine/fleet_bench.py" --build "$build" \
    --bindings "$n_fleet"
else
  not_applicable fleet "no thingsync or thingsync-sim in this build"
fi
# daemon_bench.py is not run: its idle case alone takes over 2 minutes (a 60 s quiet wait, then
# the window), which does not fit the 10 minutes; fleet_bench's `run` covers the daemon at 1M.

meta load_after "$(loadavg)"
meta seconds "$((SECONDS - started))"
meta logs "$logs"
args=("$logs")
[ -n "$out" ] && args+=(--out "$out")
python3 "$here/run_table.py" "${args[@]}"
rc=$?
log "logs: $logs"
exit "$rc"
