#pragma once

// The secrets audit's recording side. When THINGSYNC_TEST_ARTIFACTS names a directory (ctest
// sets it for every test, see tests/CMakeLists.txt), the test support code records there what
// the products wrote and registers every secret the tests handed them; the last test of a ctest
// run, "audit: no secret in any test output" (tests/audit/scan.cpp), searches the first for the
// second. Without the variable nothing is recorded.
//
//   <dir>/files/    what each test executable printed (tests/audit/capture-output.sh);
//                   captured stdout/stderr of every Process; the bodies of /metrics, /healthz
//                   and /readyz answers taken with http(); thingsync's state files, journals,
//                   change journals (*.jsonl) and exports (by Fleet after each run, and by
//                   TempDir when it is removed)
//   <dir>/secrets   one "KIND<TAB>HEX(VALUE)" line per secret, appended under flock
//   <dir>/runs/     <file prefix>.cmdline: the command line of each test process that recorded
//                   something, so a finding names the test
//
// What registers secrets without the tests doing anything:
//   write_file()  (and TempDir::write) a file named like a key, token, secret, password or
//                 credential: its content; desired-state YAML: every `value:` literal, and every
//                 password thingsync's own loader and resolver make of it (derived from the key
//                 file it names, from a password file, from the environment)
//   Process       the values of added environment variables whose names say PASSWORD, SECRET,
//                 TOKEN, KEY or CRED; --token and --oauth-client ID:SECRET on its command line
//   http(), HttpConnection (http_client.hpp): every bearer token and every JSON "password"
//                 in what they send (Sim's calls go through them)
//   Fleet         derived()
// Inputs that hold secrets on purpose (key and token files, desired-state YAML, the sim's
// --data file) are never recorded.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace thingsync::testsupport::audit {

/// The value of THINGSYNC_TEST_ARTIFACTS, or nullopt: nothing is recorded.
std::optional<std::filesystem::path> artifacts_dir();

/// Registers secrets the tests use. Each (kind, value) is written once per test process.
void register_secret(const std::string& kind, const std::string& value);
void register_secrets(const std::string& kind, const std::vector<std::string>& values);

/// A new artifact file holding `content` (named "<test exe>.<pid>.<n>.<name>"). Content that
/// this process recorded before is not written again.
void record(const std::string& name, const std::string& content);
/// Appends `content` to the artifact "<test exe>.<pid>.<name>" (for repeated scrapes).
void record_append(const std::string& name, const std::string& content);
/// record() of a file's content; nothing when it does not exist.
void record_file(const std::filesystem::path& file, const std::string& name);

/// A fresh pair of capture files for a child process, or nullopt when nothing is recorded.
struct CapturePaths {
  std::filesystem::path out, err;
};
std::optional<CapturePaths> capture_paths(const std::string& program);

/// Registers what looks like a secret in a file the tests write (see above).
void register_file_secrets(const std::filesystem::path& file, const std::string& text);
/// Records the files under `dir` that thingsync writes: state snapshots and their temporaries
/// (recognised by the "thingsync-state" format marker), journals (*.journal), change journals
/// (*.jsonl), exports.
void record_thingsync_outputs(const std::filesystem::path& dir, const std::string& name);

}  // namespace thingsync::testsupport::audit
