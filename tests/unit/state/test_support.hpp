#pragma once

// Helpers for the state tests: a temporary directory, device IDs, fingerprints, opening.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "temp_dir.hpp"
#include "thingsync/state/state_store.hpp"

namespace thingsync::state::test {

using testsupport::TempDir;

inline const std::string kSalt(32, 's');
inline core::DeviceId dev(const char* s) { return *core::DeviceId::parse(s); }
inline core::Fingerprint fp(std::uint8_t b) {
  core::Fingerprint f{};
  f.fill(b);
  return f;
}
inline std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
/// Opens the state at a path or on a Medium; the test stops when that fails.
template <typename Where>
std::unique_ptr<StateStore> open_ok(Where&& where) {
  auto r = StateStore::open(std::forward<Where>(where), kSalt);
  INFO((r ? "" : r.error().message));
  REQUIRE(r);
  return std::move(r.value());
}

}  // namespace thingsync::state::test
