#include "thingsync/config/env.hpp"

#include <cstdlib>

namespace thingsync::config {

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string key(name);
    if (const char* v = std::getenv(key.c_str())) return std::string(v);
    return std::nullopt;
  };
}

}  // namespace thingsync::config
