#!/usr/bin/env bash
# Checks the operations kit in examples/:
#   1. promtool check rules / test rules (tests/ops/thingsync-alerts.test.yml) on the alerts;
#   2. promtool check config on the scrape snippet;
#   3. the Grafana dashboard is JSON, and every query in it is valid PromQL (promtool);
#   4. every thingsync_* metric the alerts and the dashboard use is one thingsync exports
#      (the names registered in src/obs/metrics.cpp, with the histogram/counter suffixes) or
#      one the Git sync script writes for node_exporter (thingsync_git_sync_*, named in
#      systemd/thingsync-git-sync.sh; tests/ops/check-units.sh runs it), or one of NOT_YET;
#   5. with a thingsync binary (argument 2 or $THINGSYNC_BIN): start the daemon, scrape
#      /metrics, `promtool check metrics` it, and find every metric used above in it (but the
#      Git sync's and NOT_YET).
# Usage: tests/ops/check-monitoring.sh [SOURCE_DIR] [THINGSYNC_BIN]
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
bin=${2:-${THINGSYNC_BIN:-}}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done # SIGTERM: it saves state, exits
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
for tool in promtool python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (Debian: prometheus, python3)" >&2; exit 77; }
done
alerts=$src/examples/prometheus/thingsync-alerts.yml
dashboard=$src/examples/grafana/thingsync-dashboard.json
git_sync=$src/systemd/thingsync-git-sync.sh
# Metrics the alerts and the dashboard use before the daemon exports them: each waits for a
# change being made elsewhere, and this check fails once metrics.cpp has it (then remove it).
# (None now.)
NOT_YET=""

# ---- 1, 2 ------------------------------------------------------------------------------
if out=$(promtool check rules "$alerts" 2>&1); then pass "promtool check rules: $(tail -1 <<<"$out" | xargs)"; else fail "promtool check rules:"$'\n'"$out"; fi
if out=$(cd "$src/tests/ops" && promtool test rules thingsync-alerts.test.yml 2>&1); then
  pass "promtool test rules"
else
  fail "promtool test rules:"$'\n'"$out"
fi
if out=$(promtool check config "$src/examples/prometheus/scrape.yml" 2>&1); then pass "promtool check config scrape.yml"; else fail "promtool check config:"$'\n'"$out"; fi

# ---- 3, 4 ------------------------------------------------------------------------------
# The dashboard's queries, with Grafana's variables filled in, become recording rules that
# promtool parses; the metric names of queries and alerts are checked against metrics.cpp.
if python3 - "$dashboard" "$alerts" "$src/src/obs/metrics.cpp" "$tmp/dashboard-rules.yml" "$git_sync" "$NOT_YET" <<'EOF'; then
import json, re, sys
dash_path, alerts_path, metrics_cpp, rules_out, git_sync, not_yet = sys.argv[1:]
not_yet = set(not_yet.split())
dash = json.load(open(dash_path))
exprs = []
def walk(node):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            exprs.append(node["expr"])
        for v in node.values():
            walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)
walk(dash)
if dash.get("schemaVersion", 0) < 36:
    sys.exit("dashboard: schemaVersion below 36")
if not any(i.get("name") == "DS_PROMETHEUS" for i in dash.get("__inputs", [])):
    sys.exit("dashboard: no DS_PROMETHEUS input")
subst = {"$__rate_interval": "2m", "$__range": "6h", "$__interval": "1m", "$job": "thingsync", "$instance": ".*"}
with open(rules_out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        for k, v in subst.items():
            e = e.replace(k, v)
        f.write(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}\n")
exported = set(re.findall(r'Name\("(thingsync_[a-z_]+)"\)', open(metrics_cpp).read()))
if not exported:
    sys.exit("no metric names found in " + metrics_cpp)
textfile = set(re.findall(r"thingsync_git_sync_[a-z_]+", open(git_sync).read()))
if not textfile:
    sys.exit("no thingsync_git_sync_* metric names found in " + git_sync)
if not_yet & exported:
    sys.exit("exported now, remove from NOT_YET in check-monitoring.sh: " + ", ".join(sorted(not_yet & exported)))
used = set(re.findall(r"thingsync_[a-z_]+", " ".join(exprs) + open(alerts_path).read()))
unknown = []
for name in sorted(used):
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    if not {name, base} & (exported | textfile | not_yet):
        unknown.append(name)
if unknown:
    sys.exit("used but exported neither by thingsync nor by the Git sync: " + ", ".join(unknown))
waiting = sorted(used & not_yet)
print(f"{len(exprs)} dashboard queries; {len(used)} metric names used, all exported"
      + (f" (not yet by the daemon: {', '.join(waiting)})" if waiting else ""))
EOF
  pass "dashboard JSON and metric names"
else
  fail "dashboard JSON / metric names (see above)"
fi
if [ -s "$tmp/dashboard-rules.yml" ]; then
  if out=$(promtool check rules "$tmp/dashboard-rules.yml" 2>&1); then pass "dashboard queries parse as PromQL"; else fail "dashboard PromQL:"$'\n'"$out"; fi
fi

# ---- 5. a real scrape ------------------------------------------------------------------
# The metrics server runs from the start, before the API answers: the API here is a closed
# port (the daemon keeps retrying its first full list), so the scrape depends on nothing else.
# Every label combination is exported from the start, so this scrape has every series.
if [ -n "$bin" ]; then
  mkdir -p "$tmp/fleet" "$tmp/creds"
  printf 't0ken' >"$tmp/creds/api-token"
  printf 'an example fleet key of enough length\n' >"$tmp/creds/fleet-key"
  cp "$src/tests/ops/fleet-one-binding.yaml" "$tmp/fleet/f.yaml"
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  api_port=$(free_port)
  port=$(free_port)
  cat >"$tmp/config.yaml" <<EOF
api: {baseUrl: "http://127.0.0.1:$api_port"}
auth: {tokenFile: "\${CREDENTIALS_DIRECTORY}/api-token"}
desiredState: {path: "$tmp/fleet"}
state: {path: "$tmp/state.json"}
metrics: {listen: "127.0.0.1:$port"}
EOF
  CREDENTIALS_DIRECTORY=$tmp/creds "$bin" run --config "$tmp/config.yaml" >"$tmp/run.out" 2>"$tmp/run.err" &
  pids+=($!)
  get() { python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port$1', timeout=2).read().decode())"; }
  up=
  for _ in $(seq 100); do
    if get /healthz >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  if [ -z "$up" ]; then
    fail "the daemon's /healthz did not answer:"$'\n'"$(tail -5 "$tmp/run.err")"
  elif ! get /metrics >"$tmp/scrape.txt" 2>"$tmp/get.err"; then
    fail "GET /metrics: $(cat "$tmp/get.err")"
  elif out=$(promtool check metrics <"$tmp/scrape.txt" 2>&1); then
    pass "promtool check metrics on a real scrape ($(grep -c '^thingsync_' "$tmp/scrape.txt") samples)"
    # The dashboard and the alerts use only series this scrape has.
    # (Not the Git sync's: node_exporter serves those; nor NOT_YET's.)
    missing=$(grep -ohE 'thingsync_[a-z_]+' "$dashboard" "$alerts" | sort -u | grep -v '^thingsync_git_sync_' |
      grep -vxF -f <(tr ' ' '\n' <<<"$NOT_YET") | while read -r m; do
      grep -qE "^${m}[{ ]" "$tmp/scrape.txt" || grep -qE "^${m}_(bucket|count|sum)[{ ]" "$tmp/scrape.txt" || echo "$m"
    done)
    if [ -z "$missing" ]; then pass "every metric the dashboard and alerts use is in the scrape"; else fail "not in the scrape: $missing"; fi
  else
    fail "promtool check metrics:"$'\n'"$out"
  fi
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
