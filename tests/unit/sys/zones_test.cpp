// Delete windows in a real time zone, across both DST changes of Europe/Amsterdam in 2026
// (29 March: 02:00 CET -> 03:00 CEST; 25 October: 03:00 CEST -> 02:00 CET).
#include "thingsync/sys/zones.hpp"

#include <catch2/catch.hpp>

#include "thingsync/core/time.hpp"

using namespace thingsync;

namespace {

std::int64_t utc(const char* iso) { return *core::parse_iso8601_ms(iso); }

sys::NextWindow schedule(const char* text) {
  std::string why;
  auto w = core::parse_delete_window(text, why);
  REQUIRE(w);
  auto s = sys::delete_window_schedule({*w});
  REQUIRE(s);
  return *s;
}

}  // namespace

TEST_CASE("office hours in Amsterdam follow the clock change in October", "[sys][zones]") {
  const auto next = schedule("Mon-Fri 09:00-17:00 Europe/Amsterdam");
  // Friday 23 October, 10:00 CEST (08:00 UTC): open.
  CHECK_FALSE(next(utc("2026-10-23T08:00:00.000Z")));
  // Friday 15:30 UTC is 17:30 CEST: closed; the next opening is Monday 26 October 09:00 CET,
  // which after the change is 08:00 UTC (it was 07:00 UTC the week before).
  CHECK(next(utc("2026-10-23T15:30:00.000Z")) == utc("2026-10-26T08:00:00.000Z"));
  // Monday 08:30 UTC is 09:30 CET: open.
  CHECK_FALSE(next(utc("2026-10-26T08:30:00.000Z")));
  CHECK(next(utc("2026-10-26T07:30:00.000Z")) == utc("2026-10-26T08:00:00.000Z"));
}

TEST_CASE("a window that starts in the hour the spring change skips opens at the change",
          "[sys][zones]") {
  // Sunday 29 March 2026, 02:30 local does not exist: the window opens at 03:00 CEST (01:00 UTC).
  const auto next = schedule("Sun 02:30-04:00 Europe/Amsterdam");
  CHECK(next(utc("2026-03-28T12:00:00.000Z")) == utc("2026-03-29T01:00:00.000Z"));
  CHECK_FALSE(next(utc("2026-03-29T01:30:00.000Z")));  // 03:30 CEST: open
  CHECK(next(utc("2026-03-29T02:00:00.000Z")));        // 04:00 CEST: closed again
}

TEST_CASE("a window past midnight and an unknown zone", "[sys][zones]") {
  const auto next = schedule("Sat 22:00-02:00 UTC");
  CHECK_FALSE(next(utc("2026-12-05T23:00:00.000Z")));  // Saturday 23:00
  CHECK_FALSE(next(utc("2026-12-06T01:00:00.000Z")));  // Sunday 01:00, still Saturday's window
  CHECK(next(utc("2026-12-06T03:00:00.000Z")) == utc("2026-12-12T22:00:00.000Z"));
  std::string why;
  auto w = core::parse_delete_window("Mon 09:00-17:00 Europe/Atlantis", why);
  REQUIRE(w);
  auto s = sys::delete_window_schedule({*w});
  REQUIRE_FALSE(s);
  CHECK_THAT(s.error(), Catch::Contains("Europe/Atlantis"));
}
