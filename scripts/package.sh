#!/usr/bin/env bash
# The Debian package and the conventional builds, built and checked without touching the machine.
#
#   scripts/package.sh build   1. a plain Release build, no presets: `cmake -B build/release
#                                 -DCMAKE_BUILD_TYPE=Release`: the binaries and the man pages;
#                              2. the package: dpkg-buildpackage (debian/: debhelper's CMake build
#                                 with the distribution's flags) -> build/pkg/thingsync_<v>_<arch>.deb
#   scripts/package.sh check   3. lintian: no error, and no warning but the known ones below;
#                              4. its file list is tests/ops/deb-files.txt (man pages and bash
#                                 completion included);
#                              5. `cmake --install` of the Release build lays out the same tree;
#                              6. a throwaway root: dpkg-deb -x, then what the maintainer scripts
#                                 would do there (sysusers, tmpfiles: with --root); the scripts
#                                 create the user, reload systemd, enable and start nothing;
#                              7. in that root (chroot, private mount namespace): `thingsync
#                                 version`; `thingsync validate --config /etc/thingsync/thingsync.yaml`
#                                 fails, naming the placeholders and nothing else;
#                              8. systemd-analyze verify and security --offline=true (exposure
#                                 < 2.0) on the installed units, thingsync@.service included.
#   scripts/package.sh         both.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
release=build/release
out=build/pkg
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$src} CCACHE_NOHASHDIR=1

version=$(sed -n 's/^project(thingsync VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_version=$(dpkg-parsechangelog -S Version)
if [[ "$version" != "$deb_version" ]]; then
  echo "package: CMakeLists.txt says $version, debian/changelog $deb_version" >&2
  exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$out/thingsync_${version}_${arch}.deb

build() {
  echo "== package: plain Release build (no presets) of thingsync and thingsync-sim"
  # Another generator's cache (an earlier Ninja configure) cannot be reused in place.
  if [[ -f $release/CMakeCache.txt ]] && grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' $release/CMakeCache.txt; then
    rm -rf $release
  fi
  cmake -S . -B $release -DCMAKE_BUILD_TYPE=Release >build/release-configure.log 2>&1 ||
    { cat build/release-configure.log; return 1; }
  cmake --build $release -j 2 --target thingsync thingsync-sim thingsync-man

  echo "== package: dpkg-buildpackage"
  # Built in a copy of the tracked files: dpkg-buildpackage writes into the source tree
  # (debian/thingsync, obj-*) and its parent directory.
  rm -rf "$out" && mkdir -p "$out/src/thingsync-$version"
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$out/src/thingsync-$version"
  # debhelper gives the build a HOME of its own: keep ccache's cache where it is.
  CCACHE_DIR=${CCACHE_DIR:-$(ccache -k cache_dir 2>/dev/null || echo "$HOME/.cache/ccache")}
  export CCACHE_DIR
  (cd "$out/src/thingsync-$version" &&
    DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -b -us -uc >../../build.log 2>&1) ||
    { tail -n 60 "$out/build.log"; echo "package: dpkg-buildpackage failed (log: $out/build.log)" >&2; return 1; }
  mv "$out"/src/*.deb "$out"/src/*.buildinfo "$out"/src/*.changes "$out"/
  rm -rf "$out/src"
  echo "== package: built $deb ($(du -k "$deb" | cut -f1) KiB)"
}

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

check() {
  [[ -f $deb ]] || { echo "package: no $deb: run scripts/package.sh build" >&2; return 1; }
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/thingsync-package.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT

  # ---- 3. lintian --------------------------------------------------------------------
  # The warnings left, and why: none expected (the man pages come from docs/reference.md).
  known_warnings='^$'
  lintian --display-level '>=warning' --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1 || true
  sed 's/^/  lintian: /' "$tmp/lintian"
  if grep -q '^E: ' "$tmp/lintian"; then
    fail "lintian reports errors"
  elif grep '^W: ' "$tmp/lintian" | grep -Evq "^W: thingsync[^:]*: ($known_warnings)( |$)"; then
    fail "lintian reports a warning that is not a known one"
  else
    pass "lintian: no errors; warnings: $(grep -c '^W: ' "$tmp/lintian" || true), all known ones"
  fi

  # ---- 4. the file list ----------------------------------------------------------------
  dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$tmp/files"
  grep -v '^#' tests/ops/deb-files.txt | sed '/^$/d' | sort >"$tmp/expected"
  if diff -u "$tmp/expected" "$tmp/files" >"$tmp/diff"; then
    pass "file list: $(wc -l <"$tmp/files") files as in tests/ops/deb-files.txt"
  else
    fail "file list differs from tests/ops/deb-files.txt (- expected, + in the package):"$'\n'"$(cat "$tmp/diff")"
  fi
  if dpkg-deb -f "$deb" Depends | grep -q 'libyaml-cpp'; then
    pass "Depends (dpkg-shlibdeps): $(dpkg-deb -f "$deb" Depends)"
  else
    fail "Depends has no shared-library dependencies: $(dpkg-deb -f "$deb" Depends)"
  fi

  # ---- 5. cmake --install: the same tree ----------------------------------------------
  # The Release build installs below /usr/local (its default prefix), the package below /usr
  # (etc in /etc, units in Debian 12's /lib/systemd/system); dpkg adds its changelog and
  # copyright and compresses what debhelper compresses.
  if [[ -f $release/cmake_install.cmake ]]; then
    DESTDIR=$tmp/cmake-root cmake --install $release >"$tmp/install.log" 2>&1 ||
      { cat "$tmp/install.log"; fail "cmake --install $release"; }
    (cd "$tmp/cmake-root" && find . ! -type d | sed 's/^\.//') |
      sed -e 's#^/usr/local/etc/#/etc/#' -e 's#^/usr/local/#/usr/#' -e 's#^/usr/lib/systemd/#/lib/systemd/#' |
      sort >"$tmp/cmake-files"
    sed -e '/^\/usr\/share\/doc\/thingsync\/\(changelog\.gz\|changelog\.Debian\.gz\|copyright\)$/d' \
      -e 's#^\(/usr/share/man/.*\)\.gz$#\1#' "$tmp/files" | sort >"$tmp/deb-files"
    if diff -u "$tmp/cmake-files" "$tmp/deb-files" >"$tmp/diff"; then
      pass "cmake --install (prefix /usr/local) lays out the package's tree: $(wc -l <"$tmp/cmake-files") files"
    else
      fail "cmake --install and the package differ (- cmake, + package):"$'\n'"$(cat "$tmp/diff")"
    fi
  else
    echo "SKIP: no Release build in $release: cmake --install not compared"
  fi

  # ---- 6. a throwaway root, and what the maintainer scripts do ------------------------
  root=$tmp/root
  dpkg-deb -x "$deb" "$root"
  dpkg-deb -e "$deb" "$tmp/control"
  if grep -qx '/etc/thingsync/thingsync.yaml' "$tmp/control/conffiles"; then
    pass "conffiles: $(tr '\n' ' ' <"$tmp/control/conffiles")"
  else
    fail "/etc/thingsync/thingsync.yaml is not a conffile"
  fi
  postinst=$tmp/control/postinst
  grep -q 'systemd-sysusers .*thingsync-git.conf' "$postinst" || fail "postinst does not create the user (systemd-sysusers)"
  [[ $(grep -n 'systemd-sysusers' "$postinst" | head -n 1 | cut -d: -f1) -lt $(grep -n 'systemd-tmpfiles' "$postinst" | head -n 1 | cut -d: -f1) ]] ||
    fail "postinst runs tmpfiles before sysusers: /var/lib/thingsync-git belongs to the user"
  grep -q 'systemd-tmpfiles .*--create thingsync.conf' "$postinst" || fail "postinst does not create the directories (systemd-tmpfiles)"
  grep -q 'daemon-reload' "$postinst" || fail "postinst does not reload systemd"
  # Nothing is enabled but what the administrator had enabled before (an upgrade keeps that
  # state), and deb-systemd-invoke starts (or, on upgrade, restarts) enabled units only.
  enables=$(grep -c 'deb-systemd-helper enable' "$postinst" || true)
  guarded=$(grep -B2 'deb-systemd-helper enable' "$postinst" | grep -c 'was-enabled' || true)
  if grep -Eq 'systemctl( -[-a-z]+)* (enable|start)( |$)' "$postinst" || [[ $enables -ne $guarded ]]; then
    fail "postinst enables or starts a unit by itself:"$'\n'"$(grep -En 'enable|start' "$postinst")"
  fi
  [[ $failures -eq 0 ]] && pass "postinst: sysusers before tmpfiles, daemon-reload; enables and starts nothing new"
  # Their effects, in the throwaway root (the same commands, with --root).
  mkdir -p "$root/etc"
  touch "$root/etc/passwd" "$root/etc/group"
  systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/thingsync-git.conf"
  systemd-tmpfiles --root="$root" --create "$root/usr/lib/tmpfiles.d/thingsync.conf"
  git_uid=$(awk -F: '$1 == "thingsync-git" { print $3 }' "$root/etc/passwd")
  [[ -n $git_uid ]] || fail "sysusers made no thingsync-git user"
  [[ $(stat -c '%a %U' "$root/etc/thingsync/credentials") == "700 root" ]] ||
    fail "/etc/thingsync/credentials: $(stat -c '%a %U' "$root/etc/thingsync/credentials"), want 700 root"
  [[ $(stat -c '%a %u' "$root/var/lib/thingsync-git") == "755 $git_uid" ]] ||
    fail "/var/lib/thingsync-git: $(stat -c '%a %u' "$root/var/lib/thingsync-git"), want 755 thingsync-git ($git_uid)"
  pass "throwaway root: user thingsync-git ($git_uid), /etc/thingsync/credentials 0700, /var/lib/thingsync-git"

  # ---- 7. thingsync in that root -----------------------------------------------------
  # An operator's first steps short of the config: a desired-state clone and the credentials.
  # Then the only errors left are the config's placeholders.
  mkdir -p "$root/var/lib/thingsync-git/fleet"
  cp tests/ops/fleet-one-binding.yaml "$root/var/lib/thingsync-git/fleet/fleet.yaml"
  head -c 48 /dev/urandom | base64 >"$root/etc/thingsync/credentials/fleet-key"
  head -c 24 /dev/urandom | base64 >"$root/etc/thingsync/credentials/client-secret"
  in_root() { # COMMAND...: run in the root, with the host's shared libraries bound in read-only
    # shellcheck disable=SC2016 # the inner script expands its own variables
    unshare --mount --propagation private bash -c '
      root=$1; shift
      for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64 /dev; do
        [ -e "$d" ] || continue
        mkdir -p "$root$d"
        mount --bind "$(readlink -f "$d")" "$root$d" && mount -o remount,bind,ro "$root$d"
      done
      exec chroot "$root" "$@"' bash "$root" "$@"
  }
  if ! unshare --mount --propagation private true 2>/dev/null; then
    echo "SKIP: no private mount namespace here (unshare): thingsync not run in the root"
  else
    if v=$(in_root /usr/bin/thingsync version 2>&1) && grep -q "$version" <<<"$v"; then
      pass "in the root: thingsync version: $v"
    else
      fail "in the root: thingsync version: $v"
    fi
    rc=0
    CREDENTIALS_DIRECTORY=/etc/thingsync/credentials in_root /usr/bin/thingsync validate --config /etc/thingsync/thingsync.yaml >"$tmp/validate" 2>&1 || rc=$?
    sed 's/^/  validate: /' "$tmp/validate"
    placeholders=$(grep -v '^ *#' -n "$root/etc/thingsync/thingsync.yaml" | grep 'REPLACE-ME' | cut -d: -f1 || true)
    problems=()
    [[ $rc -ne 0 ]] || problems+=("it exits 0")
    for line in $placeholders; do
      grep -q "thingsync.yaml:$line:" "$tmp/validate" || problems+=("no error at thingsync.yaml:$line (a REPLACE-ME placeholder)")
    done
    # Every error is one of those lines: nothing else is wrong with the shipped config.
    while IFS= read -r err; do
      line=$(sed -n 's/^[^:]*thingsync\.yaml:\([0-9]*\):.*/\1/p' <<<"$err")
      grep -qx "${line:-none}" <<<"$placeholders" || problems+=("an error that is not a placeholder: $err")
    done < <(grep -E ':[0-9]+:[0-9]+: (error|fatal)|error:' "$tmp/validate" || true)
    if [[ ${#problems[@]} -eq 0 ]]; then
      pass "in the root: validate --config /etc/thingsync/thingsync.yaml exits $rc, naming the placeholders at lines $(tr '\n' ' ' <<<"$placeholders")"
    else
      fail "in the root: validate --config /etc/thingsync/thingsync.yaml: $(printf '%s; ' "${problems[@]}")"
    fi
  fi

  # ---- 8. the installed units ----------------------------------------------------------
  # What a minimal system adds for the units to load: systemd's own units (targets, slices) and
  # the kill of ExecReload=, from this machine.
  mkdir -p "$root/usr/lib/systemd/system" "$root/bin"
  cp -a /lib/systemd/system/. "$root/usr/lib/systemd/system/"
  cp "$(type -P kill)" "$root/bin/kill"
  units=(thingsync.service thingsync@.service thingsync-git-sync.service thingsync-git-sync@.service
    thingsync-git-sync.timer thingsync-git-sync@.timer)
  if out=$(cd "$root/lib/systemd/system" && systemd-analyze verify --man=no --root="$root" "${units[@]}" 2>&1) && [[ -z $out ]]; then
    pass "systemd-analyze verify --root: ${units[*]}: no findings"
  else
    fail "systemd-analyze verify --root:"$'\n'"$out"
  fi
  for unit in thingsync.service thingsync@.service; do
    report=$(systemd-analyze security --offline=true --root="$root" "$root/lib/systemd/system/$unit" 2>&1) || true
    score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
    if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s < 2.0) }'; then
      pass "systemd-analyze security (installed) $unit: exposure $score (< 2.0)"
    else
      fail "systemd-analyze security (installed) $unit: exposure '${score}'"$'\n'"$report"
    fi
  done

  if [[ $failures -gt 0 ]]; then
    echo "package: $failures check(s) failed" >&2
    return 1
  fi
  echo "package: all checks passed"
}

mkdir -p build
case "${1:-all}" in
  build) build ;;
  check) check ;;
  all) build && check ;;
  *) echo "usage: scripts/package.sh [build|check]" >&2; exit 64 ;;
esac
