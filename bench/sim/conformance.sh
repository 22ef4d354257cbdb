#!/usr/bin/env bash
# Conformance of thingsync-sim to the OpenAPI file, checked by a tool not written here:
# Stoplight Prism in proxy mode with --errors validates every request and response that
# passes through it against api/things-mqtt-bindings.openapi.json.
#   bench/sim/conformance.sh [path/to/thingsync-sim]
# Prism comes from npm (`npm install @stoplight/prism-cli` into a cache dir, ~1 min once);
# set PRISM=/path/to/prism to use an installed one. Exits 1 when any exchange fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
sim="${1:-$root/build/dev/src/sim/thingsync-sim}"
spec="${SPEC:-$root/../shared/api/things-mqtt-bindings.openapi.json}"
[[ -f "$spec" ]] || spec="$root/api/things-mqtt-bindings.openapi.json"
cache="${PRISM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/thingsync-prism}"
if [[ -z "${PRISM:-}" ]]; then
  if [[ ! -x "$cache/node_modules/.bin/prism" ]]; then
    mkdir -p "$cache"
    (cd "$cache" && npm install --no-audit --no-fund @stoplight/prism-cli >/dev/null)
  fi
  PRISM="$cache/node_modules/.bin/prism"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$sim" --listen 127.0.0.1:0 --token conformance --seed 12 --random-seed 7 \
  --next-links relative >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/sim.out" ]] && break; sleep 0.1; done
sim_port="$(sed -n '1s/.*:\([0-9]*\)$/\1/p' "$work/sim.out")"

prism_port="${PRISM_PORT:-4010}"
"$PRISM" proxy "$spec" "http://127.0.0.1:$sim_port" --errors --host 127.0.0.1 \
  --port "$prism_port" >"$work/prism.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$prism_port"
for _ in $(seq 1 300); do
  curl -s -o /dev/null "$base/mqtt/bindings" && break
  sleep 0.2
done

pass=0
fail=0
auth=(-H "Authorization: Bearer conformance")
# check NAME EXPECTED_STATUS CURL_ARGS...: one exchange through Prism.
check() {
  local name="$1" want="$2"; shift 2
  local status
  status="$(curl -s -o "$work/body" -D "$work/headers" -w '%{http_code}' "${auth[@]}" "$@")"
  if [[ "$status" == "$want" ]] && ! grep -qi '^sl-violations' "$work/headers"; then
    pass=$((pass + 1)); printf 'ok    %s\n' "$name"
  else
    fail=$((fail + 1)); printf 'FAIL  %s: status %s (want %s)\n' "$name" "$status" "$want"
    sed 's/^/      /' "$work/body"; echo
  fi
}
json=(-H "Content-Type: application/json")
pw='Conformance-Password-42#x'
check "list, default page" 200 "$base/mqtt/bindings"
check "list, limit and sort" 200 "$base/mqtt/bindings?limit=5&sort=-createdAt"
check "list, every filter" 200 "$base/mqtt/bindings?clientId=3f1c2a9e-6b1d-4c2e-9a57-0d1e2f3a4b5c&createdSince=2020-01-01T00:00:00Z&createdBefore=2100-01-01T00:00:00Z&modifiedSince=2020-01-01T00:00:00Z&modifiedBefore=2100-01-01T00:00:00Z"
for dev in "imei:350266800610993" "deveui:ea8fa35e2cf3489f" \
           "dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f" "478a82d4-128f-47a6-aa61-2eac3f2a23ad" \
           "urn:dev:imei:350266800610994"; do
  check "create $dev" 201 -X POST "${json[@]}" -d "{\"deviceId\":\"$dev\",\"password\":\"$pw\"}" \
    "$base/mqtt/bindings"
done
id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/body" 2>/dev/null || true)"
check "list, deviceId filter" 200 "$base/mqtt/bindings?deviceId=imei:350266800610993"
check "list, username filter" 200 "$base/mqtt/bindings?username=urn:dev:IMEI:350266800610993:"
next="$(curl -s "${auth[@]}" "http://127.0.0.1:$sim_port/mqtt/bindings?limit=4" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')"
check "list, next page by cursor" 200 "$base$next"
if [[ -n "$id" ]]; then
  check "get by id" 200 "$base/mqtt/bindings/$id"
  check "update" 200 -X PUT "${json[@]}" -d "{\"deviceId\":\"urn:dev:imei:350266800610995\",\"password\":\"$pw\"}" \
    "$base/mqtt/bindings/$id"
  check "delete" 204 -X DELETE "$base/mqtt/bindings/$id"
fi
check "bad request: bad deviceId answers a valid 400 problem" 400 -X POST "${json[@]}" \
  -d '{"deviceId":"imei:350266800610993","password":"short"}' "$base/mqtt/bindings"

echo "conformance: $pass passed, $fail failed (Prism $("$PRISM" --version 2>/dev/null || echo '?'))"
[[ $fail -eq 0 ]]
