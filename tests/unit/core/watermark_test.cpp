#include "thingsync/core/watermark.hpp"

#include <catch2/catch.hpp>

using thingsync::core::Watermark;

namespace {
constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kT = 1'800'000'000'000;  // a server time, ms
}  // namespace

TEST_CASE("watermark: a poll re-reads the overlap behind the newest change seen") {
  Watermark w(kMin);
  auto m = w.begin(0);
  w.saw(kT - 5'000, 0);
  w.completed(m, kT);
  CHECK(w.since() == kT - 5'000 - kMin);
}

TEST_CASE("watermark: a list begun an overlap after the newest change closes it") {
  Watermark w(kMin);
  auto m = w.begin(0);
  w.saw(kT - 5'000, 0);
  w.completed(m, kT);
  // A list that began before the overlap had passed since the change was seen does not close.
  m = w.begin(kMin - 1);
  w.completed(m, kT + kMin - 1);
  CHECK(w.since() == kT - 5'000 - kMin);
  m = w.begin(kMin);
  w.completed(m, kT + kMin);
  CHECK(w.since() == kT - 5'000);
}

TEST_CASE("watermark: a binding stamped in the future does not move it past the server time") {
  Watermark w(kMin);
  auto m = w.begin(0);
  w.saw(kT + 24 * 3'600'000LL, 0);  // a node whose clock runs a day ahead
  w.completed(m, kT);
  CHECK(w.since() == kT - kMin);
  // Even once a later list would close it, it stays behind that list's server time.
  m = w.begin(2 * kMin);
  w.completed(m, kT + 2 * kMin);
  CHECK(w.since() == kT + kMin);
  // A portal change stamped now (by a right clock) is at or after since(): the poll sees it.
  CHECK(kT + 2 * kMin >= w.since());
}

TEST_CASE("watermark: before any list, since() is the overlap behind what was seen") {
  Watermark w(kMin);
  CHECK(w.since() == 0);  // everything
  w.saw(kT, 0);
  CHECK(w.since() == kT - kMin);
  w.saw(kT - 1, 0);  // older: no change
  CHECK(w.newest() == kT);
}

TEST_CASE("watermark: the server time only moves forward") {
  Watermark w(kMin);
  auto m = w.begin(0);
  w.saw(kT, 0);
  w.completed(m, kT + 10'000);
  m = w.begin(1);
  w.completed(m, kT - 3'600'000);  // a list answered by a node whose clock runs behind
  CHECK(w.since() == kT - kMin);
}
