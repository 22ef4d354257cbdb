#include "thingsync/core/time.hpp"

#include <cstdint>

#include <catch2/catch.hpp>

using thingsync::core::format_iso8601_ms;
using thingsync::core::parse_iso8601_ms;

namespace {
constexpr std::int64_t kDay = 86'400'000;
}

TEST_CASE("milliseconds format as UTC ISO 8601 with three fraction digits", "[core][time]") {
  struct Row {
    std::int64_t ms;
    const char* text;
  };
  const Row rows[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1, "1970-01-01T00:00:00.001Z"},
      {-1, "1969-12-31T23:59:59.999Z"},
      {1'756'767'600'000, "2025-09-01T23:00:00.000Z"},
      {951'782'400'000, "2000-02-29T00:00:00.000Z"},
      {4'107'542'399'999, "2100-02-28T23:59:59.999Z"},
      {4'107'542'400'000, "2100-03-01T00:00:00.000Z"},
      {253'402'300'799'999, "9999-12-31T23:59:59.999Z"},
      {-62'167'219'200'000, "0000-01-01T00:00:00.000Z"},
      {-62'167'219'200'001, "-0001-12-31T23:59:59.999Z"},
      {253'402'300'800'000, "+10000-01-01T00:00:00.000Z"},
  };
  for (const auto& r : rows) {
    INFO(r.ms);
    CHECK(format_iso8601_ms(r.ms) == r.text);
  }
}

TEST_CASE("ISO 8601 date-times with fractions and offsets parse to UTC milliseconds",
          "[core][time]") {
  struct Row {
    const char* text;
    std::int64_t ms;
  };
  const Row rows[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"2025-05-01T00:00:00Z", 1'746'057'600'000},
      {"2025-09-01T23:00:00.000Z", 1'756'767'600'000},
      {"2025-09-01t23:00:00.000z", 1'756'767'600'000},
      {"2025-09-02T01:00:00+02:00", 1'756'767'600'000},
      {"2025-09-01T18:30:00-04:30", 1'756'767'600'000},
      {"2025-09-01T23:00:00-00:00", 1'756'767'600'000},
      {"2025-09-01T23:00:00.5Z", 1'756'767'600'500},
      {"2025-09-01T23:00:00.12Z", 1'756'767'600'120},
      {"2025-09-01T23:00:00.123456789Z", 1'756'767'600'123},
      {"2025-09-01T23:00:00.999999Z", 1'756'767'600'999},
      {"2000-02-29T00:00:00Z", 951'782'400'000},
      {"1969-12-31T23:59:59.999Z", -1},
      {"2016-12-31T23:59:60Z", 1'483'228'800'000},
      {"0000-01-01T00:00:00Z", -62'167'219'200'000},
      {"9999-12-31T23:59:59.999Z", 253'402'300'799'999},
      {"0001-01-01T00:00:00+23:59", -62'135'596'800'000 - (23 * 60 + 59) * 60'000LL},
      {"9999-12-31T23:59:59.999+23:59", 253'402'300'799'999 - (23 * 60 + 59) * 60'000LL},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    const auto ms = parse_iso8601_ms(r.text);
    REQUIRE(ms);
    CHECK(*ms == r.ms);
  }
}

TEST_CASE("malformed or out-of-range date-times are rejected", "[core][time]") {
  for (const char* text : {
           "",                              // empty
           "2025-09-01",                    // date only
           "2025-09-01T23:00:00",           // no offset
           "2025-09-01 23:00:00Z",          // space instead of T
           "2025-9-01T23:00:00Z",           // one-digit month
           "25-09-01T23:00:00Z",            // two-digit year
           "2025-00-01T00:00:00Z",          // month 0
           "2025-13-01T00:00:00Z",          // month 13
           "2025-01-00T00:00:00Z",          // day 0
           "2025-01-32T00:00:00Z",          // day 32
           "2025-04-31T00:00:00Z",          // April has 30 days
           "2025-02-29T00:00:00Z",          // not a leap year
           "1900-02-29T00:00:00Z",          // century, not a leap year
           "2025-09-01T24:00:00Z",          // hour 24
           "2025-09-01T23:60:00Z",          // minute 60
           "2025-09-01T23:59:61Z",          // second 61
           "2025-09-01T23:00:00.Z",         // empty fraction
           "2025-09-01T23:00:00,5Z",        // comma fraction
           "2025-09-01T23:00:00+2:00",      // short offset
           "2025-09-01T23:00:00+0200",      // offset without colon
           "2025-09-01T23:00:00+24:00",     // offset hour 24
           "2025-09-01T23:00:00+02:60",     // offset minute 60
           "2025-09-01T23:00:00ZZ",         // trailing garbage
           "2025-09-01T23:00:00Z ",         // trailing space
           " 2025-09-01T23:00:00Z",         // leading space
           "+2025-09-01T23:00:00Z",         // signed year
           "2025-09-01T23:00:00.12a3Z",     // letter in fraction
           "2025-09-01T23:0a:00Z",          // letter in minute
           // In range as written, not in UTC (found by fuzz/fuzz_api_decode):
           "9999-12-31T23:59:60.999Z",      // a leap second into the year 10000
           "9999-12-31T23:59:59.999-00:01", // an offset into the year 10000
           "0000-01-01T00:00:00+00:01",     // an offset into the year -1
           "0000-01-01T00:00:00+23:59",     // the same, further
       }) {
    INFO('"' << text << '"');
    CHECK_FALSE(parse_iso8601_ms(text));
  }
}

TEST_CASE("formatting then parsing returns the same millisecond over four centuries",
          "[core][time]") {
  // One step of a prime number of milliseconds per iteration visits every time of day and
  // every day of a 400-year cycle, leap days included.
  const std::int64_t start = -62'167'219'200'000;  // 0000-01-01
  const std::int64_t step = 146'097 * kDay / 100'003 + 7;
  for (std::int64_t ms = start; ms < start + 146'097 * kDay; ms += step) {
    const auto text = format_iso8601_ms(ms);
    const auto back = parse_iso8601_ms(text);
    INFO(text);
    REQUIRE(back);
    REQUIRE(*back == ms);
  }
}
