#!/usr/bin/env bash
# The demo: build thingsync and run the main job on the example fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset dev >/dev/null
cmake --build --preset dev --target thingsync
echo "== thingsync validate examples/desired-state/"
THINGSYNC_FLEET_KEY_FILE=examples/secrets/fleet-key \
  ./build/dev/src/cli/thingsync validate --config examples/config.yaml
