#pragma once

// Temporary directories and the files tests write into them. No child processes and no
// sockets: the unit tests use this part of tests/support too (thingsync_test_files).
// Everything here feeds the secrets audit (artifacts.hpp).

#include <filesystem>
#include <string>
#include <string_view>

#include "artifacts.hpp"

namespace thingsync::testsupport {

/// A fresh empty directory under the system temp dir ("<tag>-XXXXXX"), removed with
/// everything in it on destruction; before that, the files thingsync wrote in it (state,
/// journal, exports) are recorded for the audit.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "thingsync-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  /// write_file() of `relative` (folders are made); returns the full path.
  std::string write(const std::string& relative, std::string_view text) const;

 private:
  std::filesystem::path path_;
};

/// Writes `text`, making the folders; a file that holds a secret by its name or YAML
/// `value:` registers it (artifacts.hpp).
void write_file(const std::filesystem::path& file, std::string_view text);
/// The whole file; "" when it cannot be read.
std::string read_file(const std::filesystem::path& file);

}  // namespace thingsync::testsupport
