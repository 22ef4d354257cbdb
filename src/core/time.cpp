#include "thingsync/core/time.hpp"

#include <cinttypes>
#include <cstdio>

namespace thingsync::core {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = floor_div(y, 400);
  const auto yoe = static_cast<unsigned>(y - era * 400);                // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = floor_div(z, 146097);
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  return {y, m, d};
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(std::int64_t y, unsigned m) {
  constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` decimal digits at `pos`; false when any is missing.
bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, unsigned& out) {
  if (s.size() - pos < n) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<unsigned>(c - '0');
  }
  pos += n;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char a, char b = '\0') {
  if (pos >= s.size() || (s[pos] != a && (b == '\0' || s[pos] != b))) return false;
  ++pos;
  return true;
}

}  // namespace

std::string format_iso8601_ms(std::int64_t ms_since_epoch) {
  const std::int64_t days = floor_div(ms_since_epoch, kMsPerDay);
  const std::int64_t ms_of_day = ms_since_epoch - days * kMsPerDay;
  const Civil c = civil_from_days(days);
  const auto h = static_cast<unsigned>(ms_of_day / 3'600'000);
  const auto min = static_cast<unsigned>(ms_of_day / 60'000 % 60);
  const auto sec = static_cast<unsigned>(ms_of_day / 1'000 % 60);
  const auto ms = static_cast<unsigned>(ms_of_day % 1'000);
  char buf[64];
  // Years outside 0000-9999 use ISO 8601's expanded form with a sign ("+12345-…", "-0001-…").
  const char* year_format = (c.year >= 0 && c.year <= 9999) ? "%04" PRId64 : "%+05" PRId64;
  int n = std::snprintf(buf, sizeof buf, year_format, c.year);
  n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n),
                     "-%02u-%02uT%02u:%02u:%02u.%03uZ", c.month, c.day, h, min, sec, ms);
  return std::string(buf, static_cast<std::size_t>(n));
}

std::optional<std::int64_t> parse_iso8601_ms(std::string_view s) {
  std::size_t pos = 0;
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(s, pos, 4, year) || !expect(s, pos, '-') || !read_digits(s, pos, 2, month) ||
      !expect(s, pos, '-') || !read_digits(s, pos, 2, day) || !expect(s, pos, 'T', 't') ||
      !read_digits(s, pos, 2, hour) || !expect(s, pos, ':') || !read_digits(s, pos, 2, minute) ||
      !expect(s, pos, ':') || !read_digits(s, pos, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  // Second 60 is an RFC 3339 leap second; it counts as the first second of the next minute.
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;

  std::int64_t millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    std::int64_t scale = 100;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos) {
      millis += (s[pos] - '0') * scale;  // digits past the third add 0: truncated to ms
      scale /= 10;
    }
    if (pos == start) return std::nullopt;
  }

  std::int64_t offset_min = 0;
  if (expect(s, pos, 'Z', 'z')) {
    // UTC
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const bool minus = s[pos] == '-';
    ++pos;
    unsigned oh = 0, om = 0;
    if (!read_digits(s, pos, 2, oh) || !expect(s, pos, ':') || !read_digits(s, pos, 2, om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_min = (minus ? -1 : 1) * static_cast<std::int64_t>(oh * 60 + om);
  } else {
    return std::nullopt;  // RFC 3339 requires an offset
  }
  if (pos != s.size()) return std::nullopt;

  const std::int64_t days = days_from_civil(year, month, day);
  const std::int64_t seconds = ((days * 24 + hour) * 60 + minute) * 60 + second;
  const std::int64_t ms = seconds * 1000 + millis - offset_min * 60'000;
  // A leap second or an offset can carry a time past 9999-12-31T23:59:59.999Z or before
  // 0000-01-01T00:00:00Z: out of range like any other year outside 0000-9999, so that every
  // time parsed here formats back to a text that parses (found by fuzz_api_decode).
  static const std::int64_t kFirst = days_from_civil(0, 1, 1) * 86'400'000;
  static const std::int64_t kLast = days_from_civil(10000, 1, 1) * 86'400'000 - 1;
  if (ms < kFirst || ms > kLast) return std::nullopt;
  return ms;
}

}  // namespace thingsync::core
