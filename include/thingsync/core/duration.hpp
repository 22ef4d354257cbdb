#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace thingsync::core {

/// Parses "250ms", "10s", "5m", "1h" (a non-negative integer and one unit; compound forms
/// such as "1m30s" are accepted too). nullopt on anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace thingsync::core
