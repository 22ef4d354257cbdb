#include "thingsync/core/duration.hpp"

#include <catch2/catch.hpp>

using thingsync::core::parse_duration;
using std::chrono::milliseconds;

TEST_CASE("durations in every unit and in compound form parse to milliseconds",
          "[core][duration]") {
  struct Row {
    const char* text;
    long long ms;
  };
  const Row rows[] = {
      {"0ms", 0},         {"250ms", 250},       {"0s", 0},
      {"10s", 10'000},    {"5m", 300'000},      {"1h", 3'600'000},
      {"1m30s", 90'000},  {"1h30m", 5'400'000}, {"2h0m5s250ms", 7'205'250},
      {"90s", 90'000},    {"007s", 7'000},      {"1500ms", 1'500},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    const auto d = parse_duration(r.text);
    REQUIRE(d);
    CHECK(d->count() == r.ms);
  }
}

TEST_CASE("durations that are empty, negative, unitless or unknown are rejected",
          "[core][duration]") {
  for (const char* text : {"", "-1s", "+1s", "10", "s", "ms", "1d", "1 s", " 1s", "1s ", "1S",
                           "1.5s", "1sec", "1m30", "30s1m", "1s1s", "1ms1s", "1h-5m", "1e3ms",
                           "1h\n"}) {
    INFO('"' << text << '"');
    CHECK_FALSE(parse_duration(text));
  }
}

TEST_CASE("durations beyond the milliseconds range are rejected, the largest one is not",
          "[core][duration]") {
  CHECK(parse_duration("9223372036854775807ms") == milliseconds(9223372036854775807LL));
  CHECK_FALSE(parse_duration("9223372036854775808ms"));
  CHECK_FALSE(parse_duration("9223372036854776s"));
  CHECK(parse_duration("9223372036854775s") == milliseconds(9223372036854775000LL));
  CHECK_FALSE(parse_duration("9223372036854775s808ms"));
  CHECK(parse_duration("9223372036854775s807ms") == milliseconds(9223372036854775807LL));
  CHECK_FALSE(parse_duration("2562047788015h216m"));
  CHECK_FALSE(parse_duration("99999999999999999999999h"));
}
