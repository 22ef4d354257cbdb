#!/usr/bin/env bash
# Checks the man pages made from docs/reference.md: each renders without a single warning
# under mandoc (-T lint, STYLE messages included) and groff (-ww -man -z), and holds the
# sections a reader looks for. Exit 77 (skipped) when neither mandoc nor groff is installed.
# Usage: tests/ops/check-man.sh MAN_DIR     (build/<preset>/docs/man)
set -uo pipefail
dir=${1:?usage: check-man.sh MAN_DIR}
have_mandoc=$(command -v mandoc || true)
have_groff=$(command -v groff || true)
[[ -n $have_mandoc || -n $have_groff ]] || { echo "SKIP: neither mandoc nor groff"; exit 77; }
failures=0
check() {  # check PAGE SECTION...
  local page=$dir/$1 out
  shift
  [[ -s $page ]] || { echo "FAIL: $page is missing or empty"; failures=$((failures + 1)); return; }
  if [[ -n $have_mandoc ]]; then
    out=$(mandoc -T lint -W style "$page" 2>&1)
    [[ -z $out ]] || { echo "FAIL: mandoc -T lint $page:"; echo "$out"; failures=$((failures + 1)); }
  fi
  if [[ -n $have_groff ]]; then
    out=$(groff -ww -man -z "$page" 2>&1)
    [[ -z $out ]] || { echo "FAIL: groff -ww $page:"; echo "$out"; failures=$((failures + 1)); }
  fi
  local section
  for section in "$@"; do
    grep -q "^\.SH \"$section\"" "$page" || { echo "FAIL: $page has no $section"; failures=$((failures + 1)); }
  done
  echo "checked: $page"
}
check thingsync.1 NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" ENVIRONMENT \
  METRICS "STATE FILE" "SEE ALSO"
check thingsync-sim.1 NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" "SEE ALSO"
check thingsync.yaml.5 NAME DESCRIPTION KEYS "DESIRED STATE FILES" EXAMPLES "SEE ALSO"
[[ $failures -eq 0 ]] || { echo "$failures failed"; exit 1; }
echo "all passed"
