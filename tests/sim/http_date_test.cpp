// The Date header's IMF-fixdate, in process: fixed rows and every day of 400 years against
// the C library's gmtime_r.
#include "http_date.hpp"

#include <time.h>

#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

using thingsync::sim::HttpDate;

namespace {

std::string libc_date(std::int64_t seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto t = static_cast<time_t>(seconds);
  tm parts{};
  REQUIRE(gmtime_r(&t, &parts) != nullptr);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[parts.tm_wday],
                parts.tm_mday, kMonths[parts.tm_mon], parts.tm_year + 1900, parts.tm_hour,
                parts.tm_min, parts.tm_sec);
  return buf;
}

}  // namespace

TEST_CASE("the Date header is an IMF-fixdate", "[sim][date]") {
  HttpDate date;
  CHECK(date.format(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
  CHECK(date.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(date.format(-1) == "Wed, 31 Dec 1969 23:59:59 GMT");
  CHECK(date.format(951782400) == "Tue, 29 Feb 2000 00:00:00 GMT");
  CHECK(date.format(4107542399) == "Sun, 28 Feb 2100 23:59:59 GMT");
  CHECK(date.format(-62167219200) == "Sat, 01 Jan 0000 00:00:00 GMT");
  CHECK(date.format(253402300799) == "Fri, 31 Dec 9999 23:59:59 GMT");
  // The same second twice gives the same text (formatted once).
  CHECK(date.format(253402300799) == "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST_CASE("the Date header matches gmtime_r on every day of 400 years", "[sim][date]") {
  HttpDate date;
  // 1900-03-01 to 2300-03-01, one sample a day at a time of day that moves through the day.
  for (std::int64_t day = -25508; day < -25508 + 146097; ++day) {
    const std::int64_t s = day * 86400 + ((day * 7919) % 86400 + 86400) % 86400;
    INFO(s);
    REQUIRE(date.format(s) == libc_date(s));
  }
}
