#!/usr/bin/env bash
# Checks completions/thingsync.bash in a plain bash (no bash-completion package needed):
#   1. COMPREPLY for a few command lines: commands, the flags of plan, --output and
#      --log-format values, "--flag=value", flags already given, thingsync-sim values;
#   2. for every command in docs/reference.md (a "### `thingsync NAME`" section and its flag
#      table), and for thingsync-sim and the common flags, the flags offered are exactly the
#      flags documented: the reference and the completion cannot drift apart.
# Usage: tests/ops/check-completion.sh [SOURCE_DIR]     Exit 0: all passed.
set -uo pipefail
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
# shellcheck source=/dev/null
source "$src/completions/thingsync.bash" || { echo "FAIL: cannot source the completion"; exit 1; }
failures=0

# complete LINE: COMPREPLY for LINE (the last word completed; a trailing space starts a new
# word), split at '=' as bash's COMP_WORDBREAKS does; prints the sorted words on one line.
complete_line() {
  local line=$1 words=()
  read -r -a words <<<"${line//=/ = }"
  [[ $line == *" " || $line == *"=" ]] && words+=("")
  COMP_WORDS=("${words[@]}")
  COMP_CWORD=$((${#words[@]} - 1))
  COMP_LINE=$line
  COMP_POINT=${#line}
  COMPREPLY=()
  local fn
  fn=$(complete -p "${words[0]}" 2>/dev/null | sed -n 's/.*-F \([^ ]*\).*/\1/p')
  "$fn"
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

expect() {  # expect LINE WANT
  local got
  got=$(complete_line "$1")
  if [[ $got == "$2" ]]; then
    echo "ok: '$1' -> $2"
  else
    echo "FAIL: '$1': want [$2], got [$got]"
    failures=$((failures + 1))
  fi
}

# ---- 1. cases ----------------------------------------------------------------------------
expect "thingsync " "apply diff export history plan run validate version"
expect "thingsync pl" "plan"
expect "thingsync --log-level debug pl" "plan"
expect "thingsync --" "--help --log-format --log-level --version"
expect "thingsync plan --" "--config --help --log-format --log-level --out --output --target --target-file --version"
expect "thingsync plan --output " "json markdown text"
expect "thingsync plan --output j" "json"
expect "thingsync plan --output=" "json markdown text"
expect "thingsync plan --output=ma" "markdown"
expect "thingsync history --output " "json text"
expect "thingsync history --device imei:1 --since " ""
expect "thingsync --log-format " "json text"
expect "thingsync apply --yes --log-format " "json text"
expect "thingsync run --log-level w" "warn"
expect "thingsync plan --config x.yaml --con" ""
expect "thingsync plan --target imei:1 --tar" "--target --target-file"
expect "thingsync apply --" "--approve-deletes --config --help --log-format --log-level --max-deletes --retry-failed --target --target-file --version --yes"
expect "thingsync-sim --duplicates " "allow reject"
expect "thingsync-sim --next-links=r" "relative"
expect "thingsync-sim --rate-limit-retry-after " "0 1"
expect "thingsync-sim --adm" "--admin"

# ---- 2. the reference's flags ------------------------------------------------------------
ref="$src/docs/reference.md"
# flags_in SECTION_REGEX: the flags in the first column of the tables under the heading that
# matches, up to the next heading.
flags_in() {
  awk -v want="$1" '
    /^#/ { on = ($0 ~ want); next }
    on && /^\| `--/ { s = $0; sub(/^\| `/, "", s); sub(/[ `].*/, "", s); print s }
  ' "$ref" | sort -u | tr '\n' ' ' | sed 's/ $//'
}
common=$(flags_in '^### Common flags$')
[[ -n $common ]] || { echo "FAIL: no common flags found in $ref"; failures=$((failures + 1)); }
# shellcheck disable=SC2016  # backquotes of Markdown, not of the shell
commands=$(sed -n 's/^### `thingsync \([a-z]*\)`$/\1/p' "$ref")
[[ $(echo "$commands" | wc -l) -ge 7 ]] || {
  echo "FAIL: fewer than 7 command sections in $ref"
  failures=$((failures + 1))
}
for cmd in $commands; do
  read -r -a own <<<"$(flags_in "^### \`thingsync $cmd\`\$")"
  read -r -a all <<<"$common"
  documented=$(printf '%s\n' "${own[@]}" "${all[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//')
  expect "thingsync $cmd --" "$documented"
done
expect "thingsync-sim --" "$(flags_in '^## thingsync-sim$')"

if [[ $failures -gt 0 ]]; then
  echo "$failures failed"
  exit 1
fi
echo "all passed"
