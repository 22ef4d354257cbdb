#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and benchmarking thingsync needs.
# Idempotent: does nothing when all packages are present. Works as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates openssl python3
  clang-14 libclang-rt-14-dev
  libboost-dev libssl-dev libyaml-cpp-dev nlohmann-json3-dev prometheus-cpp-dev
  libspdlog-dev libcli11-dev catch2 libsystemd-dev libhowardhinnant-date-dev tzdata
  wrk prometheus shellcheck
  systemd debhelper lintian
  mandoc groff-base
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "setup: missing packages (${missing[*]}) and neither root nor sudo is available" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
