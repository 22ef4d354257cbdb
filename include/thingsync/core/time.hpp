#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace thingsync::core {

/// "2025-09-01T23:00:00.000Z" for milliseconds since the Unix epoch (always UTC, always ms).
std::string format_iso8601_ms(std::int64_t ms_since_epoch);

/// Parses ISO 8601 / RFC 3339 date-times: "2025-05-01T00:00:00Z", with optional fraction
/// (any number of digits, truncated to ms) and "Z" or "+hh:mm"/"-hh:mm" offsets. nullopt when
/// malformed or out of range.
std::optional<std::int64_t> parse_iso8601_ms(std::string_view text);

}  // namespace thingsync::core
