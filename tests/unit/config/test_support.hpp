#pragma once

// Helpers for the config tests: an injected environment and a temporary directory.

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "temp_dir.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/env.hpp"
#include "thingsync/core/diagnostic.hpp"

namespace thingsync::config::test {

/// A desired-state file head with derive defaults; bindings written after it start on line 6.
inline constexpr const char* kDefaults =
    "defaults:\n"
    "  password:\n"
    "    derive:\n"
    "      keyFile: /keys/fleet\n"
    "bindings:\n";

/// A file whose sources are written in this order: env FLEET in the defaults (line 2, column
/// 13), a file (line 5), env FLEET again (line 8). Binding 993 has the file, 994 the defaults.
inline constexpr const char* kSharedSources =
    "defaults:\n"
    "  password: {env: FLEET}\n"
    "bindings:\n"
    "  - deviceId: imei:350266800610993\n"
    "    password: {file: /secrets/a}\n"
    "  - deviceId: imei:350266800610994\n"
    "  - deviceId: imei:350266800610995\n"
    "    password: {env: FLEET}\n";

inline EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

/// A desired-state file: kDefaults, then one binding per device ID (written as given).
inline std::string fleet(std::initializer_list<const char*> ids) {
  std::string s = kDefaults;
  for (const char* id : ids) s += std::string("  - deviceId: ") + id + "\n";
  return s;
}

/// Load options with an empty environment and a fixed number of threads.
inline LoadOptions load_options(unsigned threads = 2) {
  LoadOptions o;
  o.env = env_of({});
  o.threads = threads;
  return o;
}

/// tests/support's: writes through it register the secrets they hold for the audit.
using TempDir = testsupport::TempDir;

/// All diagnostics, one per line, as the user sees them.
inline std::string all(const core::Diagnostics& d) {
  std::string out;
  for (const auto& x : d) out += x.to_string() + "\n";
  return out;
}

}  // namespace thingsync::config::test
