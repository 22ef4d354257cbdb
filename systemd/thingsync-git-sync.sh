#!/bin/sh
# thingsync-git-sync [WORK_TREE]: fast-forward the desired-state Git work tree to its upstream
# branch, as `git pull --ff-only` does, but refusing loudly (exit 1, an error in the journal)
# and changing nothing when the result would not be exactly the upstream commit:
#   - the fetch fails (network, authentication);
#   - the upstream history does not contain HEAD (force-push, or local commits): not a fast-forward;
#   - the work tree has local changes or untracked files (the daemon would load them);
#   - signatures are required and a new commit is unsigned, or signed by a key not allowed.
# Quiet when there is nothing new; one line naming old..new when it moved.
#
# Environment (all optional):
#   THINGSYNC_GIT_URL, THINGSYNC_GIT_BRANCH   clone WORK_TREE on the first run if it is missing
#   CREDENTIALS_DIRECTORY/git-ssh-key         an SSH deploy key (LoadCredential=git-ssh-key:...)
#   THINGSYNC_GIT_KNOWN_HOSTS                 the host keys it is checked against
#                                             (default /etc/thingsync/git-known-hosts)
#   THINGSYNC_GIT_ALLOWED_SIGNERS             an allowed_signers file (ssh-keygen(1)): every new
#                                             commit must carry an SSH signature by a key in it
#   THINGSYNC_GIT_GPG_KEYRING                 a file of OpenPGP public keys (gpg --export): every
#                                             new commit must carry a signature by one of them
#   THINGSYNC_GIT_METRICS_FILE                where to write the outcome for node_exporter's
#                                             textfile collector (atomically; none when unset)
# With either of the signer variables set, each commit in HEAD..upstream (not only the tip) must
# pass `git verify-commit` against the keys named, and nothing else: a signed merge must not
# carry unsigned commits in. A first clone checks the commit it checked out. docs/operations.md,
# "Signed commits".
set -eu

repo=${1:-/var/lib/thingsync-git/fleet}
metrics=${THINGSYNC_GIT_METRICS_FILE:-}
signers=${THINGSYNC_GIT_ALLOWED_SIGNERS:-}
keyring=${THINGSYNC_GIT_GPG_KEYRING:-}
# Absolute paths: the script changes into the work tree, and the metrics are written on exit.
case $repo in /*) ;; *) repo=$PWD/$repo ;; esac
case $metrics in /* | '') ;; *) metrics=$PWD/$metrics ;; esac
case $signers in /* | '') ;; *) signers=$PWD/$signers ;; esac
case $keyring in /* | '') ;; *) keyring=$PWD/$keyring ;; esac
reason=   # why this run refused: one of the reasons write_metrics lists
tmp=      # the private GnuPG home: removed on exit
clone=    # a first clone not yet verified and moved into place: removed on exit

# Under systemd, stderr goes to the journal: a <N> prefix sets the syslog priority.
log() {
  level=$1
  shift
  if [ -n "${JOURNAL_STREAM:-}" ]; then
    printf '<%s>%s\n' "$level" "$*" >&2
  else
    printf '%s\n' "$*" >&2
  fi
}
# refuse REASON MESSAGE: log the error and exit 1; the metrics name REASON.
refuse() {
  reason=$1
  shift
  log 3 "error: $*"
  exit 1
}

# The outcome as Prometheus text, for node_exporter's textfile collector. Written to a temporary
# file beside the target and renamed over it, so a scrape reads the old file or the new one.
# The work tree is a label, so that the files of several tenants can sit side by side.
metrics_text() { # NOW LAST_OK HEAD
  echo '# HELP thingsync_git_sync_last_run_timestamp_seconds Unix time the last git-sync run ended.'
  echo '# TYPE thingsync_git_sync_last_run_timestamp_seconds gauge'
  echo "thingsync_git_sync_last_run_timestamp_seconds{work_tree=\"$wt\"} $1"
  echo '# HELP thingsync_git_sync_last_success_timestamp_seconds Unix time of the last git-sync run that succeeded (up to date, or fast-forwarded).'
  echo '# TYPE thingsync_git_sync_last_success_timestamp_seconds gauge'
  echo "thingsync_git_sync_last_success_timestamp_seconds{work_tree=\"$wt\"} $2"
  echo '# HELP thingsync_git_sync_refused 1 for the reason the last git-sync run refused to update the work tree.'
  echo '# TYPE thingsync_git_sync_refused gauge'
  for r in fetch dirty not-fast-forward unsigned untrusted config other; do
    v=0
    [ "$r" != "$reason" ] || v=1
    echo "thingsync_git_sync_refused{work_tree=\"$wt\",reason=\"$r\"} $v"
  done
  echo '# HELP thingsync_git_sync_signatures_required 1 when every new commit must be signed by an allowed key.'
  echo '# TYPE thingsync_git_sync_signatures_required gauge'
  v=0
  [ -z "$signers$keyring" ] || v=1
  echo "thingsync_git_sync_signatures_required{work_tree=\"$wt\"} $v"
  if [ -n "$3" ]; then
    echo '# HELP thingsync_git_sync_head_info The commit the work tree is at (the last good one).'
    echo '# TYPE thingsync_git_sync_head_info gauge'
    echo "thingsync_git_sync_head_info{work_tree=\"$wt\",commit=\"$3\"} 1"
  fi
}
write_metrics() { # EXIT_CODE
  [ -n "$metrics" ] || return 0
  now=$(date +%s)
  last_ok=0
  if [ -r "$metrics" ]; then
    last_ok=$(sed -n 's/^thingsync_git_sync_last_success_timestamp_seconds{[^}]*} \([0-9]*\)$/\1/p' "$metrics" | head -n 1)
    last_ok=${last_ok:-0}
  fi
  if [ "$1" -eq 0 ]; then
    last_ok=$now
  elif [ -z "$reason" ]; then
    reason=other
  fi
  wt=$(printf '%s' "$repo" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
  head=
  if [ -e "$repo/.git" ]; then head=$(git -C "$repo" rev-parse --verify --quiet HEAD || true); fi
  out="$metrics.tmp.$$"
  if ! { metrics_text "$now" "$last_ok" "$head" >"$out" && mv -f -- "$out" "$metrics"; }; then
    rm -f -- "$out"
    log 4 "warning: could not write $metrics"
  fi
}
on_exit() {
  rc=$1
  [ -z "$tmp" ] || rm -rf -- "$tmp"
  [ -z "$clone" ] || rm -rf -- "$clone"
  write_metrics "$rc"
  exit "$rc"
}
trap 'on_exit $?' EXIT
trap 'exit 1' HUP INT TERM

export GIT_TERMINAL_PROMPT=0 # never wait for a password
if [ -n "${CREDENTIALS_DIRECTORY:-}" ] && [ -r "${CREDENTIALS_DIRECTORY}/git-ssh-key" ]; then
  known=${THINGSYNC_GIT_KNOWN_HOSTS:-/etc/thingsync/git-known-hosts}
  [ -r "$known" ] || refuse config "SSH key given but no known-hosts file $known (ssh-keyscan HOST > $known, then check it)"
  # git runs GIT_SSH_COMMAND through a shell: the inner quotes are meant.
  # shellcheck disable=SC2089,SC2090
  GIT_SSH_COMMAND="ssh -i '${CREDENTIALS_DIRECTORY}/git-ssh-key' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='$known'"
  # shellcheck disable=SC2090
  export GIT_SSH_COMMAND
fi

# Signatures: a file named but unreadable refuses (a typo must not switch the check off).
# git picks the verifier from the signature itself, so each kind is pinned to the keys given
# here and to nothing else: SSH to the allowed signers (or none: /dev/null), OpenPGP and X.509
# to a private GnuPG home holding only the keyring (or nothing), never ~/.gnupg.
if [ -n "$signers" ] || [ -n "$keyring" ]; then
  if [ -n "$signers" ]; then
    [ -r "$signers" ] || refuse config "THINGSYNC_GIT_ALLOWED_SIGNERS=$signers cannot be read; nothing changed"
  fi
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/thingsync-git-sync.XXXXXX")
  GNUPGHOME=$tmp/gnupg
  export GNUPGHOME
  mkdir -m 0700 -- "$GNUPGHOME"
  if [ -n "$keyring" ]; then
    [ -r "$keyring" ] || refuse config "THINGSYNC_GIT_GPG_KEYRING=$keyring cannot be read; nothing changed"
    command -v gpg >/dev/null || refuse config "THINGSYNC_GIT_GPG_KEYRING is set but gpg is not installed; nothing changed"
    gpg --batch --quiet --import -- "$keyring" 2>"$tmp/gpg.log" ||
      refuse config "THINGSYNC_GIT_GPG_KEYRING=$keyring: gpg --import failed: $(tr '\n' ' ' <"$tmp/gpg.log"); nothing changed"
  fi
fi
# verify_commits DIR REV...: every commit named must pass git verify-commit; refuses otherwise.
verify_commits() {
  dir=$1
  shift
  for c in "$@"; do
    if out=$(git -C "$dir" -c gpg.ssh.allowedSignersFile="${signers:-/dev/null}" \
      -c gpg.minTrustLevel=undefined verify-commit -- "$c" 2>&1); then
      continue
    fi
    what="commit $(git -C "$dir" log -1 --format='%h "%s" by %an <%ae>' "$c")"
    if git -C "$dir" cat-file commit "$c" | sed '/^$/q' | grep -q '^gpgsig'; then
      refuse untrusted "$what is not signed by an allowed key ($(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)); nothing changed"
    fi
    refuse unsigned "$what is not signed, and signatures are required; nothing changed"
  done
}

if [ ! -e "$repo/.git" ]; then
  [ -n "${THINGSYNC_GIT_URL:-}" ] ||
    refuse config "$repo is not a Git work tree: clone it first (docs/operations.md), or set THINGSYNC_GIT_URL"
  [ ! -e "$repo" ] || refuse config "$repo exists but is not a Git work tree; nothing changed"
  # Clone beside it, verify, then rename: the daemon never sees half a clone, nor an unverified one.
  clone="$repo.clone.$$"
  rm -rf -- "$clone"
  git clone --quiet ${THINGSYNC_GIT_BRANCH:+--branch "$THINGSYNC_GIT_BRANCH"} -- "$THINGSYNC_GIT_URL" "$clone" ||
    refuse fetch "git clone $THINGSYNC_GIT_URL failed; nothing changed"
  # Refused, the clone is removed (on_exit): the next run clones again, and checks again.
  [ -z "$signers$keyring" ] || verify_commits "$clone" HEAD
  mv -- "$clone" "$repo"
  clone=
  log 5 "cloned $THINGSYNC_GIT_URL into $repo at $(git -C "$repo" rev-parse HEAD)"
  exit 0
fi

cd "$repo"
branch=$(git symbolic-ref --quiet --short HEAD) ||
  refuse config "$repo: HEAD is detached; check out the branch to follow (git checkout main); nothing changed"
upstream=$(git rev-parse --abbrev-ref --symbolic-full-name '@{upstream}' 2>/dev/null) ||
  refuse config "$repo: branch $branch has no upstream (git branch --set-upstream-to=origin/$branch); nothing changed"

if [ -n "$(git status --porcelain)" ]; then
  refuse dirty "$repo has local changes (git status); the daemon would load them, so nothing is pulled until they are gone (git stash, or git checkout -- . && git clean -fd)"
fi

git fetch --quiet || refuse fetch "git fetch for $branch failed ($upstream); nothing changed"

old=$(git rev-parse HEAD)
new=$(git rev-parse '@{upstream}')
[ "$old" = "$new" ] && exit 0

if ! git merge-base --is-ancestor "$old" "$new"; then
  refuse not-fast-forward "not a fast-forward: $upstream ($new) does not contain HEAD ($old) (force-push or local commits); nothing changed. Review, then: git reset --hard $upstream"
fi
if [ -n "$signers$keyring" ]; then
  # Every commit the fast-forward would bring, oldest first, so the journal names the first bad one.
  # shellcheck disable=SC2046 # one word per commit id
  verify_commits . $(git rev-list --reverse "$old..$new")
fi
git merge --ff-only --quiet "$new" || refuse other "git merge --ff-only $new failed; see above"

count=$(git rev-list --count "$old..$new")
log 5 "updated $branch $(git rev-parse --short "$old")..$(git rev-parse --short "$new") ($count commits): $(git log -1 --format=%s "$new")"
