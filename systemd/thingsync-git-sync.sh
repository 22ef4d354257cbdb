#!/bin/sh
# thingsync-git-sync [WORK_TREE]: fast-forward the desired-state Git work tree to its upstream
# branch, as `git pull --ff-only` does, but refusing loudly (exit 1, an error in the journal)
# and changing nothing when the result would not be exactly the upstream commit:
#   - the fetch fails (network, authentication);
#   - the upstream history does not contain HEAD (force-push, or local commits): not a fast-forward;
#   - the work tree has local changes or untracked files (the daemon would load them).
# Quiet when there is nothing new; one line naming old..new when it moved.
#
# Environment (all optional):
#   THINGSYNC_GIT_URL, THINGSYNC_GIT_BRANCH   clone WORK_TREE on the first run if it is missing
#   CREDENTIALS_DIRECTORY/git-ssh-key         an SSH deploy key (LoadCredential=git-ssh-key:...)
#   THINGSYNC_GIT_KNOWN_HOSTS                 the host keys it is checked against
#                                             (default /etc/thingsync/git-known-hosts)
set -eu

repo=${1:-/var/lib/thingsync-git/fleet}

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
die() {
  log 3 "error: $*"
  exit 1
}

export GIT_TERMINAL_PROMPT=0 # never wait for a password
if [ -n "${CREDENTIALS_DIRECTORY:-}" ] && [ -r "${CREDENTIALS_DIRECTORY}/git-ssh-key" ]; then
  known=${THINGSYNC_GIT_KNOWN_HOSTS:-/etc/thingsync/git-known-hosts}
  [ -r "$known" ] || die "SSH key given but no known-hosts file $known (ssh-keyscan HOST > $known, then check it)"
  # git runs GIT_SSH_COMMAND through a shell: the inner quotes are meant.
  # shellcheck disable=SC2089,SC2090
  GIT_SSH_COMMAND="ssh -i '${CREDENTIALS_DIRECTORY}/git-ssh-key' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='$known'"
  # shellcheck disable=SC2090
  export GIT_SSH_COMMAND
fi

if [ ! -e "$repo/.git" ]; then
  [ -n "${THINGSYNC_GIT_URL:-}" ] ||
    die "$repo is not a Git work tree: clone it first (docs/operations.md), or set THINGSYNC_GIT_URL"
  [ ! -e "$repo" ] || die "$repo exists but is not a Git work tree; nothing changed"
  # Clone beside it, then rename: the daemon never sees half a clone.
  tmp="$repo.clone.$$"
  rm -rf -- "$tmp"
  if ! git clone --quiet ${THINGSYNC_GIT_BRANCH:+--branch "$THINGSYNC_GIT_BRANCH"} -- "$THINGSYNC_GIT_URL" "$tmp"; then
    rm -rf -- "$tmp"
    die "git clone $THINGSYNC_GIT_URL failed; nothing changed"
  fi
  mv -- "$tmp" "$repo"
  log 5 "cloned $THINGSYNC_GIT_URL into $repo at $(git -C "$repo" rev-parse HEAD)"
  exit 0
fi

cd "$repo"
branch=$(git symbolic-ref --quiet --short HEAD) ||
  die "$repo: HEAD is detached; check out the branch to follow (git checkout main); nothing changed"
upstream=$(git rev-parse --abbrev-ref --symbolic-full-name '@{upstream}' 2>/dev/null) ||
  die "$repo: branch $branch has no upstream (git branch --set-upstream-to=origin/$branch); nothing changed"

if [ -n "$(git status --porcelain)" ]; then
  die "$repo has local changes (git status); the daemon would load them, so nothing is pulled until they are gone (git stash, or git checkout -- . && git clean -fd)"
fi

git fetch --quiet || die "git fetch for $branch failed ($upstream); nothing changed"

old=$(git rev-parse HEAD)
new=$(git rev-parse '@{upstream}')
[ "$old" = "$new" ] && exit 0

if ! git merge-base --is-ancestor "$old" "$new"; then
  die "not a fast-forward: $upstream ($new) does not contain HEAD ($old) (force-push or local commits); nothing changed. Review, then: git reset --hard $upstream"
fi
git merge --ff-only --quiet "$new" || die "git merge --ff-only $new failed; see above"

count=$(git rev-list --count "$old..$new")
log 5 "updated $branch $(git rev-parse --short "$old")..$(git rev-parse --short "$new") ($count commits): $(git log -1 --format=%s "$new")"
