#!/usr/bin/env bash
# Runs a test executable and, under the secrets audit (THINGSYNC_TEST_ARTIFACTS set by ctest),
# keeps a copy of everything it prints (assertion expansions, INFO, logs of in-process code)
# for the scan. thingsync_add_tests makes this the launcher of every test executable (through
# CROSSCOMPILING_EMULATOR: CMake 3.25 has no TEST_LAUNCHER). ctest gets the output as before,
# and the exit status, or the signal that ended the test, as if it had run the test itself.
set -u
if [ -z "${THINGSYNC_TEST_ARTIFACTS:-}" ]; then exec "$@"; fi
name="$(basename "$1").launcher-$$"
mkdir -p "$THINGSYNC_TEST_ARTIFACTS/files" "$THINGSYNC_TEST_ARTIFACTS/runs"
printf '%s\n' "$*" >"$THINGSYNC_TEST_ARTIFACTS/runs/$name.cmdline"
"$@" 2>&1 | tee "$THINGSYNC_TEST_ARTIFACTS/files/$name.test-output"
rc=${PIPESTATUS[0]}
# 129..192: ended by signal rc-128 (Catch2 itself exits 255 on bad arguments: not a signal).
if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then
  kill -s "$((rc - 128))" $$
fi
exit "$rc"
