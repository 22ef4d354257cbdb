#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/config/env.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/diagnostic.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::config {

/// Where a binding's password comes from (SPEC.md "Desired state").
struct PasswordSource {
  enum class Kind : std::uint8_t { kDerive, kFile, kEnv, kValue };
  Kind kind = Kind::kDerive;
  /// kDerive: the fleet key file; kFile: the password file (both resolved paths);
  /// kEnv: the variable name; kValue: empty.
  std::string ref;
  core::Secret value;  ///< kValue only
  /// Where the source is first written (an index into DesiredState::files, 1-based line/column).
  std::uint32_t file = 0;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};
std::string_view to_string(PasswordSource::Kind k);

/// One desired binding. Compact on purpose: a fleet of a million fits in ~90 MB.
struct DesiredEntry {
  core::DeviceId device;
  std::uint32_t source = 0;  ///< index into DesiredState::sources
  std::uint32_t file = 0;    ///< index into DesiredState::files
  std::uint32_t line = 0;    ///< of the deviceId value, 1-based
  std::uint32_t column = 0;
};

/// Everything the desired-state files say. Sources are shared: a file's `defaults.password` is
/// one entry for all its bindings, and equal derive/file/env sources across files are one entry.
struct DesiredState {
  std::vector<std::string> files;
  std::vector<PasswordSource> sources;
  std::vector<DesiredEntry> bindings;  ///< sorted by device, each device once

  /// "file:line:column" of a binding, for messages.
  std::string location(const DesiredEntry& e) const;
};

struct LoadResult {
  DesiredState state;
  core::Diagnostics diagnostics;  ///< sorted by file, line, column; errors and warnings
  bool ok() const { return !core::has_errors(diagnostics); }
};

/// Parses one desired-state file's text (pure). `filename` names it in diagnostics and is the
/// base for relative paths: a relative `keyFile:` or `file:` path is resolved against the
/// directory of the file it is written in. A path that starts with `${VAR}` is taken as the
/// variable gives it (absolute, or relative to the working directory, like any shell path).
///
/// Format: a map with optional `defaults: {password: SOURCE}` and `bindings: [{deviceId: ID,
/// password: SOURCE?}, ...]`; SOURCE is a map with exactly one of `derive: {keyFile: PATH}`,
/// `file: PATH`, `env: NAME`, `value: LITERAL` (a warning: a secret in Git). An empty file is a
/// warning (it declares nothing). YAML anchors may be set but aliases are rejected.
LoadResult parse_desired_state_file(std::string_view text, std::string_view filename,
                                    const EnvLookup& env);

struct LoadOptions {
  EnvLookup env = process_env();
  unsigned threads = 0;  ///< 0: std::thread::hardware_concurrency()
  /// A file larger than this is parsed in parts of about this size, on several threads.
  std::size_t split_bytes = std::size_t{4} << 20;
};

/// Loads a directory (recursively: every *.yaml / *.yml, hidden files and directories such as
/// .git skipped, sorted by path) or one file. Files are read and parsed in parallel; a large
/// file is split at top-level `bindings` items and its parts parsed in parallel too. A device
/// listed twice (any spelling, any file) is an error at the later place naming the first.
LoadResult load_desired_state(const std::filesystem::path& path, const LoadOptions& options = {});

}  // namespace thingsync::config
