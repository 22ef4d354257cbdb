#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace thingsync::config {

/// Looks up an environment variable: nullopt when it is not set. Injected so that config and
/// desired-state parsing stay pure and testable; process_env() is the real one.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

/// Reads the process environment (getenv). Safe to call from several threads as long as
/// nobody calls setenv at the same time.
EnvLookup process_env();

}  // namespace thingsync::config
