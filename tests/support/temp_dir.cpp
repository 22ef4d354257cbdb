#include "temp_dir.hpp"

#include <stdlib.h>  // mkdtemp

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace thingsync::testsupport {
namespace fs = std::filesystem;

TempDir::TempDir(const std::string& tag) {
  // mkdtemp: unique across the test processes ctest runs side by side, not just likely so.
  std::string tmpl = (fs::temp_directory_path() / (tag + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  try {
    audit::record_thingsync_outputs(path_, path_.filename().string());
  } catch (const std::exception& e) {
    // A destructor cannot throw; the audit then misses these files, so say so loudly.
    std::fprintf(stderr, "test support: could not record the outputs in %s: %s\n", path_.c_str(),
                 e.what());
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& relative, std::string_view text) const {
  const auto file = path_ / relative;
  write_file(file, text);
  return file.string();
}

void write_file(const fs::path& file, std::string_view text) {
  if (file.has_parent_path()) fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + file.string());
  audit::register_file_secrets(file, std::string(text));
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace thingsync::testsupport
