#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace thingsync::core {

/// Parses "250ms", "10s", "5m", "1h" (a non-negative integer and one unit; compound forms
/// such as "1m30s" are accepted too, each unit at most once and largest first: "1h30m", not
/// "30m1h"). Units are lower case; no sign, spaces or fractions. nullopt on anything else,
/// including a total that overflows std::chrono::milliseconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace thingsync::core
