#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace thingsync::core {

/// "2025-09-01T23:00:00.000Z" for milliseconds since the Unix epoch (always UTC, always ms).
/// Years outside 0000-9999 get ISO 8601's expanded form with a sign ("+10000-01-01T…").
std::string format_iso8601_ms(std::int64_t ms_since_epoch);

/// Parses ISO 8601 / RFC 3339 date-times: "2025-05-01T00:00:00Z", with optional fraction
/// (any number of digits, truncated to ms) and "Z" or "+hh:mm"/"-hh:mm" offsets; 't' and 'z'
/// may be lower case. Years 0000-9999; day checked against the month (leap years included);
/// a leap second ":60" counts as the next minute's ":00". nullopt when malformed or out of
/// range (no offset, no 'T', trailing characters, or a time in UTC outside the years
/// 0000-9999, which a leap second or an offset can reach).
std::optional<std::int64_t> parse_iso8601_ms(std::string_view text);

}  // namespace thingsync::core
