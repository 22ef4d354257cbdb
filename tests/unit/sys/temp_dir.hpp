#pragma once

#include <filesystem>
#include <random>
#include <string>

namespace thingsync::test {

/// A fresh directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "thingsync") {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / (tag + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace thingsync::test
