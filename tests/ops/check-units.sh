#!/usr/bin/env bash
# Checks the systemd integration in systemd/ as `cmake --install` lays it out:
#   1. install through systemd/CMakeLists.txt (a throwaway project, into a temp prefix);
#      the /usr layout gives ExecStart=/usr/bin/thingsync ... /etc/thingsync/thingsync.yaml;
#      the template thingsync@.service reads /etc/thingsync/%i.yaml and keeps its state,
#      credentials and desired state in paths of its own (%i in each); the services set
#      LimitCORE=0 (no core file with secrets in it); an existing config is never replaced;
#   2. `systemd-analyze verify` on the six units (templates included) prints nothing and succeeds;
#   3. `systemd-analyze security --offline=true`: exposure below THRESHOLD (default 2.0) for
#      the four services (thingsync.service, thingsync@.service and the two git-sync ones);
#   4. the git-sync script (shellcheck when present; fast-forward, non-fast-forward, dirty tree,
#      failed fetch, against local repositories), with its textfile metrics (promtool check
#      metrics when present); signed commits: with an allowed-signers file (a throwaway SSH key)
#      an unsigned commit, one signed by an unknown key and a signed one that brings an unsigned
#      one are refused, HEAD stays, and a signed one passes; a first clone is checked before it
#      is put in place; with a GPG keyring (when gpg is installed) the same for OpenPGP;
#   5. with a thingsync binary (argument 2 or $THINGSYNC_BIN): the example config, its REPLACE-ME
#      placeholders filled in, validates.
# Usage: tests/ops/check-units.sh [SOURCE_DIR] [THINGSYNC_BIN]     Exit 0: all passed.
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
bin=${2:-${THINGSYNC_BIN:-}}
threshold=${THRESHOLD:-2.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
for tool in cmake systemd-analyze git; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed" >&2; exit 77; }
done

# ---- 1. install ------------------------------------------------------------------------
mkdir -p "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.25)
project(thingsync LANGUAGES NONE)
include(GNUInstallDirs)
add_subdirectory("$src/systemd" "\${CMAKE_BINARY_DIR}/systemd")
EOF
install_to() { # PREFIX BUILD_DIR [DESTDIR]
  if ! cmake -Wno-dev -S "$tmp/proj" -B "$2" -DCMAKE_INSTALL_PREFIX="$1" >"$tmp/cmake.log" 2>&1 ||
    ! DESTDIR=${3:-} cmake --install "$2" >>"$tmp/cmake.log" 2>&1; then
    cat "$tmp/cmake.log" >&2
    return 1
  fi
}
install_to "$tmp/usr" "$tmp/b-tmp" || { fail "cmake configure/install"; exit 1; }
install_to /usr "$tmp/b-usr" "$tmp/root" || { fail "cmake install with prefix /usr"; exit 1; }
units=$tmp/usr/lib/systemd/system
expected=(
  "$tmp/root/usr/lib/systemd/system/thingsync.service"
  "$tmp/root/usr/lib/systemd/system/thingsync-git-sync.service"
  "$tmp/root/usr/lib/systemd/system/thingsync-git-sync.timer"
  "$tmp/root/usr/lib/systemd/system/thingsync@.service"
  "$tmp/root/usr/lib/systemd/system/thingsync-git-sync@.service"
  "$tmp/root/usr/lib/systemd/system/thingsync-git-sync@.timer"
  "$tmp/root/usr/lib/sysusers.d/thingsync-git.conf"
  "$tmp/root/usr/lib/tmpfiles.d/thingsync.conf"
  "$tmp/root/usr/libexec/thingsync/thingsync-git-sync"
  "$tmp/root/etc/thingsync/thingsync.yaml"
)
for f in "${expected[@]}"; do
  [ -e "$f" ] || fail "not installed: ${f#"$tmp/root"}"
done
[ -x "$tmp/root/usr/libexec/thingsync/thingsync-git-sync" ] || fail "the git-sync script is not executable"
exec_line=$(grep '^ExecStart=' "$tmp/root/usr/lib/systemd/system/thingsync.service")
if [ "$exec_line" = "ExecStart=/usr/bin/thingsync run --config /etc/thingsync/thingsync.yaml" ]; then
  pass "prefix /usr: $exec_line"
else
  fail "prefix /usr gives '$exec_line'"
fi
grep -q '^ConfigurationDirectory=thingsync$' "$tmp/root/usr/lib/systemd/system/thingsync.service" ||
  fail "prefix /usr: no ConfigurationDirectory=thingsync"
# The template: every path one instance reads its config and secrets from, or writes, names %i.
template=$tmp/root/usr/lib/systemd/system/thingsync@.service
for want in 'ExecStart=/usr/bin/thingsync run --config /etc/thingsync/%i.yaml' \
  'StateDirectory=thingsync/%i' \
  'LoadCredential=client-secret:/etc/thingsync/credentials/%i/client-secret' \
  'LoadCredential=fleet-key:/etc/thingsync/credentials/%i/fleet-key' \
  'BindReadOnlyPaths=-/var/lib/thingsync-git/%i'; do
  grep -qxF "$want" "$template" || fail "thingsync@.service: no line '$want'"
done
git_template=$tmp/root/usr/lib/systemd/system/thingsync-git-sync@.service
for want in 'ExecStart=/usr/libexec/thingsync/thingsync-git-sync /var/lib/thingsync-git/%i/fleet' \
  'StateDirectory=thingsync-git/%i' 'EnvironmentFile=-/etc/thingsync/%i.git-sync.env' \
  'Environment=THINGSYNC_GIT_METRICS_FILE=/var/lib/thingsync-git/%i/git-sync.prom'; do
  grep -qxF "$want" "$git_template" || fail "thingsync-git-sync@.service: no line '$want'"
done
# Apart from the unit names and descriptions, the template differs from the single-tenant unit
# only in those paths: one source (systemd/thingsync.service.in) makes both.
if diff <(sed -e '/^#/d' -e '/^Description=/d' -e 's#/thingsync/%i\.yaml#/thingsync/thingsync.yaml#' -e 's#/%i##g' \
  -e '/^TemporaryFileSystem=/d' -e 's/^BindReadOnlyPaths=/ReadOnlyPaths=/' "$template") \
  <(sed -e '/^#/d' -e '/^Description=/d' "$tmp/root/usr/lib/systemd/system/thingsync.service") >"$tmp/diff"; then
  pass "thingsync@.service: the single-tenant unit with per-instance paths"
else
  fail "thingsync@.service differs from thingsync.service in more than its paths:"$'\n'"$(cat "$tmp/diff")"
fi
# A second install keeps an operator's config.
echo "# edited" >>"$tmp/root/etc/thingsync/thingsync.yaml"
install_to /usr "$tmp/b-usr" "$tmp/root" || fail "cmake install with prefix /usr, a second time"
if tail -n 1 "$tmp/root/etc/thingsync/thingsync.yaml" | grep -qx '# edited'; then
  pass "a second install keeps an edited /etc/thingsync/thingsync.yaml"
else
  fail "a second install replaced the edited /etc/thingsync/thingsync.yaml"
fi
if grep -n '@[A-Z_]*@' "$units"/*; then fail "unsubstituted @VARIABLES@ in the units"; fi
# A core file of either service would hold secrets (the token, passwords, the deploy key).
for unit in thingsync.service thingsync@.service thingsync-git-sync.service thingsync-git-sync@.service; do
  if grep -qx 'LimitCORE=0' "$units/$unit"; then
    pass "$unit: LimitCORE=0"
  else
    fail "$unit: no LimitCORE=0 (a core file would hold secrets)"
  fi
done

# ---- 2. verify -------------------------------------------------------------------------
# verify wants the ExecStart= binaries to exist: the temp prefix gets a stub thingsync.
mkdir -p "$tmp/usr/bin"
printf '#!/bin/sh\nexit 0\n' >"$tmp/usr/bin/thingsync"
chmod +x "$tmp/usr/bin/thingsync"
mkdir -p "$tmp/usr/libexec/thingsync"
cp "$src/systemd/thingsync-git-sync.sh" "$tmp/usr/libexec/thingsync/thingsync-git-sync"
if out=$(systemd-analyze verify --man=no "$units/thingsync.service" "$units/thingsync-git-sync.service" \
  "$units/thingsync-git-sync.timer" "$units/thingsync@.service" "$units/thingsync-git-sync@.service" \
  "$units/thingsync-git-sync@.timer" 2>&1) && [ -z "$out" ]; then
  pass "systemd-analyze verify: no findings"
else
  fail "systemd-analyze verify:"$'\n'"$out"
fi

# ---- 3. security -----------------------------------------------------------------------
for unit in thingsync.service thingsync@.service thingsync-git-sync.service thingsync-git-sync@.service; do
  report=$(systemd-analyze security --offline=true "$units/$unit" 2>&1) || true
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
  if [ -z "$score" ]; then
    fail "systemd-analyze security $unit: no score"$'\n'"$report"
  elif awk -v s="$score" -v t="$threshold" 'BEGIN { exit !(s < t) }'; then
    pass "systemd-analyze security $unit: exposure $score (< $threshold)"
  else
    fail "systemd-analyze security $unit: exposure $score (>= $threshold)"$'\n'"$(grep '✗' <<<"$report")"
  fi
done

# ---- 4. the git-sync script -------------------------------------------------------------
script=$src/systemd/thingsync-git-sync.sh
if command -v shellcheck >/dev/null; then
  if shellcheck "$script"; then pass "shellcheck thingsync-git-sync.sh"; else fail "shellcheck thingsync-git-sync.sh"; fi
fi
g=$tmp/git
mkdir -p "$g"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export GIT_CONFIG_NOSYSTEM=1 HOME=$tmp
git init -q -b main "$g/work" && (cd "$g/work" && echo "bindings: []" >a.yaml && git add a.yaml && git commit -qm one)
git clone -q --bare "$g/work" "$g/origin.git"
git -C "$g/work" remote add origin "$g/origin.git"
fleet=$g/fleet
export THINGSYNC_GIT_METRICS_FILE=$tmp/git-sync.prom
run_sync() { "$script" "$fleet" >"$tmp/sync.log" 2>&1; }
head_of() { git -C "$fleet" rev-parse HEAD; }
expect() { # DESCRIPTION WANT_RC
  local rc=0
  run_sync || rc=$?
  if [ "$rc" = "$2" ]; then pass "git-sync: $1"; else fail "git-sync: $1: exit $rc, want $2: $(cat "$tmp/sync.log")"; fi
}
# refused REASON: the textfile metrics name REASON (and only it) as the last run's refusal.
refused() {
  local got
  got=$(sed -n 's/^thingsync_git_sync_refused{.*reason="\([a-z-]*\)"} 1$/\1/p' "$THINGSYNC_GIT_METRICS_FILE")
  [ "$got" = "$1" ] || fail "git-sync metrics: refused reason '$got', want '$1'"
}
metric() { # NAME: the value of a one-series metric in the textfile
  sed -n "s/^$1{[^}]*} //p" "$THINGSYNC_GIT_METRICS_FILE"
}
expect "missing work tree without THINGSYNC_GIT_URL fails" 1
THINGSYNC_GIT_URL=$g/origin.git expect "first run clones" 0
refused ""
expect "nothing new: quiet success" 0
[ ! -s "$tmp/sync.log" ] || fail "git-sync: nothing new, yet it printed: $(cat "$tmp/sync.log")"
if command -v promtool >/dev/null; then
  if out=$(promtool check metrics <"$THINGSYNC_GIT_METRICS_FILE" 2>&1); then
    pass "git-sync metrics: promtool check metrics"
  else
    fail "git-sync metrics: promtool check metrics:"$'\n'"$out"
  fi
fi
(cd "$g/work" && echo "bindings: []" >b.yaml && git add b.yaml && git commit -qm two && git push -q origin main)
expect "fast-forward" 0
[ -e "$g/fleet/b.yaml" ] || fail "git-sync: the fast-forward did not bring b.yaml"
grep -qxF "thingsync_git_sync_head_info{work_tree=\"$g/fleet\",commit=\"$(head_of)\"} 1" "$THINGSYNC_GIT_METRICS_FILE" ||
  fail "git-sync metrics: no head_info for $(head_of): $(cat "$THINGSYNC_GIT_METRICS_FILE")"
[ "$(metric thingsync_git_sync_signatures_required)" = 0 ] || fail "git-sync metrics: signatures_required is not 0"
before=$(head_of)
last_ok=$(metric thingsync_git_sync_last_success_timestamp_seconds)
(cd "$g/work" && git commit -q --amend -m rewritten && git push -q -f origin main)
expect "non-fast-forward refused" 1
[ "$(head_of)" = "$before" ] || fail "git-sync: a non-fast-forward moved HEAD"
grep -q "not a fast-forward" "$tmp/sync.log" || fail "git-sync: no 'not a fast-forward' message"
refused not-fast-forward
[ "$(metric thingsync_git_sync_last_success_timestamp_seconds)" = "$last_ok" ] ||
  fail "git-sync metrics: a refusal changed last_success_timestamp_seconds"
git -C "$g/fleet" reset -q --hard origin/main
echo "x: 1" >"$g/fleet/local.yaml"
expect "dirty work tree refused" 1
refused dirty
rm "$g/fleet/local.yaml"
git -C "$g/fleet" remote set-url origin "$g/nonexistent.git"
expect "failed fetch refused" 1
refused fetch

# Signed commits. A throwaway SSH key signs; another one is unknown to the allowed signers.
ssh-keygen -q -t ed25519 -N '' -C ops -f "$g/ops-key"
ssh-keygen -q -t ed25519 -N '' -C intruder -f "$g/other-key"
printf 'ops@example.com namespaces="git" %s\n' "$(cut -d' ' -f1,2 "$g/ops-key.pub")" >"$g/allowed_signers"
git init -q -b main "$g/sw"
git -C "$g/sw" config gpg.format ssh
git -C "$g/sw" config user.signingkey "$g/ops-key"
commit() { # MESSAGE [GIT COMMIT FLAGS]: a new commit in the signing work tree, pushed
  local msg=$1
  shift
  (cd "$g/sw" && echo "bindings: [] # $msg" >"$msg.yaml" && git add "$msg.yaml" && git commit -q "$@" -m "$msg" &&
    { [ ! -d "$g/signed.git" ] || git push -q origin main; })
}
commit unsigned-root
git clone -q --bare "$g/sw" "$g/signed.git"
git -C "$g/sw" remote add origin "$g/signed.git"
fleet=$g/signed-fleet
export THINGSYNC_GIT_URL=$g/signed.git THINGSYNC_GIT_ALLOWED_SIGNERS=$g/allowed_signers
expect "first clone of an unsigned commit refused" 1
refused unsigned
if [ -e "$fleet" ] || compgen -G "$fleet.clone.*" >/dev/null; then fail "git-sync: a refused clone was left behind"; fi
commit signed-tip -S
expect "first clone of a signed commit" 0
[ "$(head_of)" = "$(git -C "$g/sw" rev-parse HEAD)" ] || fail "git-sync: the clone is not at the signed commit"
[ "$(metric thingsync_git_sync_signatures_required)" = 1 ] || fail "git-sync metrics: signatures_required is not 1"
unset THINGSYNC_GIT_URL
good=$(head_of)
commit unsigned
expect "unsigned commit refused" 1
[ "$(head_of)" = "$good" ] || fail "git-sync: an unsigned commit moved HEAD"
grep -q 'is not signed, and signatures are required' "$tmp/sync.log" || fail "git-sync: no 'is not signed' message: $(cat "$tmp/sync.log")"
refused unsigned
commit signed-on-unsigned -S
expect "signed commit on top of an unsigned one refused" 1
[ "$(head_of)" = "$good" ] || fail "git-sync: a signed commit over an unsigned one moved HEAD"
grep -q '"unsigned" by' "$tmp/sync.log" || fail "git-sync: the refusal does not name the unsigned commit: $(cat "$tmp/sync.log")"
(cd "$g/sw" && git reset -q --hard "$good" && git push -q -f origin main)
commit intruder -S"$g/other-key"
expect "commit signed by an unknown key refused" 1
[ "$(head_of)" = "$good" ] || fail "git-sync: a commit by an unknown key moved HEAD"
grep -q 'is not signed by an allowed key' "$tmp/sync.log" || fail "git-sync: no 'not signed by an allowed key' message: $(cat "$tmp/sync.log")"
refused untrusted
rc=0
JOURNAL_STREAM=8:1 "$script" "$fleet" 2>"$tmp/journal.log" || rc=$?
grep -q '^<3>error: commit .* is not signed by an allowed key' "$tmp/journal.log" ||
  fail "git-sync: under systemd the refusal is not an error (<3>) line: $(cat "$tmp/journal.log")"
(cd "$g/sw" && git reset -q --hard "$good" && git push -q -f origin main)
commit signed -S
expect "signed commit fast-forwarded" 0
[ "$(head_of)" = "$(git -C "$g/sw" rev-parse HEAD)" ] || fail "git-sync: the signed commit was not fast-forwarded"
refused ""
THINGSYNC_GIT_ALLOWED_SIGNERS=$g/no-such-file expect "an unreadable allowed-signers file refused" 1
refused config
# OpenPGP: a keyring exported from a throwaway key; under SSH signers only, GPG signatures fail.
if command -v gpg >/dev/null && command -v gpgconf >/dev/null; then
  export GNUPGHOME=$g/gnupg
  mkdir -m 0700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key 'ops <ops@example.com>' ed25519 sign never 2>/dev/null
  gpg --batch --quiet --export --armor ops@example.com >"$g/keyring.asc"
  git -C "$g/sw" config gpg.format openpgp
  git -C "$g/sw" config user.signingkey ops@example.com
  commit gpg-signed -S
  gpgconf --kill gpg-agent
  unset GNUPGHOME
  expect "GPG-signed commit refused with SSH signers only" 1
  refused untrusted
  THINGSYNC_GIT_GPG_KEYRING=$g/keyring.asc expect "GPG-signed commit fast-forwarded with its keyring" 0
  [ "$(head_of)" = "$(git -C "$g/sw" rev-parse HEAD)" ] || fail "git-sync: the GPG-signed commit was not fast-forwarded"
fi
unset THINGSYNC_GIT_ALLOWED_SIGNERS

# ---- 5. the example config parses ------------------------------------------------------
if [ -n "$bin" ]; then
  c=$tmp/cfg
  mkdir -p "$c/creds" "$c/fleet"
  printf 'an example fleet key of enough length\n' >"$c/creds/fleet-key"
  printf 'secret' >"$c/creds/client-secret"
  cp "$src/tests/ops/fleet-one-binding.yaml" "$c/fleet/fleet.yaml"
  # As shipped it fails on its REPLACE-ME placeholders, and on nothing else.
  sed -e "s#/var/lib/thingsync-git/fleet#$c/fleet#" "$src/systemd/thingsync.conf.example" \
    >"$c/as-shipped.yaml"
  out=$(CREDENTIALS_DIRECTORY=$c/creds "$bin" validate --config "$c/as-shipped.yaml" 2>&1) && rc=0 || rc=$?
  others=$(printf '%s\n' "$out" | grep ': error: ' | grep -v 'is a placeholder of the example config' || true)
  if [ "$rc" -eq 1 ] && [ -z "$others" ] && printf '%s' "$out" | grep -q 'REPLACE-ME'; then
    pass "thingsync.yaml as shipped: fails on its placeholders only"
  else
    fail "thingsync.yaml as shipped: expected errors on its placeholders only (rc=$rc):"$'\n'"$out"
  fi
  # The placeholders filled in, it validates.
  sed -e "s#/var/lib/thingsync-git/fleet#$c/fleet#" -e 's/REPLACE-ME[A-Z-]*/example-value/g' \
    "$src/systemd/thingsync.conf.example" >"$c/config.yaml"
  if out=$(CREDENTIALS_DIRECTORY=$c/creds "$bin" validate --config "$c/config.yaml" 2>&1); then
    pass "thingsync.yaml (systemd/thingsync.conf.example): $out"
  else
    fail "thingsync.yaml (systemd/thingsync.conf.example) does not validate:"$'\n'"$out"
  fi
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
