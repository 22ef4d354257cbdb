#include "thingsync/core/adaptive_rate.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using thingsync::core::AdaptiveRate;
using thingsync::core::AdaptiveRatePolicy;
using TimePoint = AdaptiveRate::TimePoint;
using namespace std::chrono_literals;

namespace {

const TimePoint t0{std::chrono::seconds(1000)};

AdaptiveRatePolicy policy(double max = 1000) {
  AdaptiveRatePolicy p;
  p.max = max;
  return p;
}

// Paced clean answers at the rate in force, as a client that always has work gets them, for
// `d` from `t`; returns the time of the last one.
TimePoint answer_for(AdaptiveRate& a, TimePoint t, std::chrono::nanoseconds d) {
  const auto end = t + d;
  while (t < end) {
    t += std::chrono::nanoseconds(std::llround(1e9 / a.rate()));
    a.on_clean(t, true);
  }
  return t;
}

}  // namespace

TEST_CASE("adaptive rate starts low and grows about threefold a second of clean answers",
          "[core][adaptive_rate]") {
  AdaptiveRate a(policy());
  CHECK(a.rate() == 10);
  CHECK(a.starting());
  auto t = answer_for(a, t0, 1s);
  CHECK(a.rate() > 25);
  CHECK(a.rate() < 31);  // e^1.1 = 3.004: the discrete steps stay a little below it
  t = answer_for(a, t, 1s);
  CHECK(a.rate() > 70);
  CHECK(a.rate() < 93);
}

TEST_CASE("adaptive rate: answers to requests that did not wait for the rate raise nothing",
          "[core][adaptive_rate]") {
  AdaptiveRate a(policy());
  for (int i = 0; i < 1000; ++i) a.on_clean(t0 + i * 30s, false);  // an idle daemon's polls
  CHECK(a.rate() == 10);
}

TEST_CASE("adaptive rate: a congestion signal ends the fast start with a cut to half, later "
          "ones cut to 85%",
          "[core][adaptive_rate]") {
  AdaptiveRate a(policy());
  auto t = answer_for(a, t0, 2s);
  const double before = a.rate();
  CHECK(a.on_congestion(t, t + 1ms));
  CHECK(a.rate() == Approx(before * 0.5));
  CHECK_FALSE(a.starting());
  CHECK(*a.cut_point() == Approx(before));
  t = answer_for(a, t + 1ms, 100ms);
  const double second = a.rate();
  CHECK(a.on_congestion(t, t + 1ms));
  CHECK(a.rate() == Approx(second * 0.85));
  CHECK(*a.cut_point() == Approx(second));
}

TEST_CASE("adaptive rate: a burst of signals from requests sent before the cut is one cut",
          "[core][adaptive_rate]") {
  AdaptiveRate a(policy());
  a.on_congestion(t0, t0);  // out of the fast start, at 5/s
  auto t = answer_for(a, t0, 3s);
  const double before = a.rate();
  // Eight requests in flight (sent in the 10 ms before the first 429 came back) all land 429.
  const TimePoint first = t + 20ms;
  CHECK(a.on_congestion(t + 10ms, first));
  const double cut = a.rate();
  CHECK(cut == Approx(before * 0.85));
  for (int i = 0; i < 7; ++i) {
    CHECK_FALSE(a.on_congestion(t + 10ms + i * 1ms, first + (i + 1) * 1ms));
  }
  CHECK(a.rate() == cut);
  // A request sent at the cut's time or after it is a new event.
  CHECK(a.on_congestion(first, first + 50ms));
  CHECK(a.rate() == Approx(cut * 0.85));
}

TEST_CASE("adaptive rate never goes above its max nor below its floor", "[core][adaptive_rate]") {
  AdaptiveRatePolicy p = policy(40);
  p.floor = 2;
  AdaptiveRate a(p);
  auto t = answer_for(a, t0, 30s);
  CHECK(a.rate() == 40);
  for (int i = 0; i < 50; ++i) {
    t += 1s;
    a.on_congestion(t, t);
    CHECK(a.rate() >= 2);
  }
  CHECK(a.rate() == 2);
  answer_for(a, t, 600s);
  CHECK(a.rate() == 40);

  SECTION("a long Retry-After after a short run stops at the floor too") {
    AdaptiveRate b(p);
    const auto u = answer_for(b, t0, 1s);
    REQUIRE(b.on_congestion(u, u, 300s));
    CHECK(b.rate() == 2);
    CHECK(*b.cut_point() == 2);
  }
  SECTION("a max below the usual start and floor holds them down") {
    AdaptiveRatePolicy low = policy(0.5);
    AdaptiveRate b(low);
    CHECK(b.rate() == 0.5);
    b.on_congestion(t0, t0);
    CHECK(b.rate() == 0.5);
  }
}

TEST_CASE("adaptive rate: after a cut it climbs back fast, then adds 2% of the cut point a "
          "second",
          "[core][adaptive_rate]") {
  AdaptiveRate a(policy());
  auto t = answer_for(a, t0, 2s);
  a.on_congestion(t, t);  // the end of the fast start
  t = answer_for(a, t, 2s);
  REQUIRE(a.on_congestion(t, t));
  const double point = *a.cut_point();
  REQUIRE(a.rate() == Approx(point * 0.85));
  // Below the point the gap closes by a fifth a second while that is more than 2% of the
  // point: from 15% of it to 10% in ln(1.5) / 0.2 = 2.03 s.
  t = answer_for(a, t, 2s);
  CHECK(a.rate() == Approx(point * (1 - 0.15 * std::exp(-0.4))).epsilon(0.005));
  // Then 2% of the point a second: the last 10% in 5 s, and on at that pace above it.
  t = answer_for(a, t, 5s);
  CHECK(a.rate() == Approx(point).epsilon(0.01));
  const double r0 = a.rate();
  t = answer_for(a, t, 3s);
  CHECK(a.rate() - r0 == Approx(3 * 0.02 * point).epsilon(0.02));
  CHECK_FALSE(a.starting());
}

TEST_CASE("adaptive rate: long above the last cut point without a cut, it starts fast again",
          "[core][adaptive_rate]") {
  AdaptiveRate a(policy());
  auto t = answer_for(a, t0, 1s);
  a.on_congestion(t, t);
  CHECK_FALSE(a.starting());
  const double point = *a.cut_point();
  while (a.rate() <= point) t = answer_for(a, t, 10ms);
  const TimePoint crossed = t;
  t = answer_for(a, t, 9900ms);
  CHECK_FALSE(a.starting());
  t = answer_for(a, t, 200ms);
  CHECK(a.starting());
  CHECK(t - crossed < 10200ms);
  const double r = a.rate();
  answer_for(a, t, 1s);
  CHECK(a.rate() > 2.5 * r);
}

TEST_CASE("adaptive rate: a Retry-After cuts from the rate averaged over sending and the pause",
          "[core][adaptive_rate]") {
  // The client holds every request for the Retry-After and reports the pause with the signal.
  AdaptiveRate a(policy());
  a.on_congestion(t0, t0);  // out of the fast start; traffic runs from t0
  auto t = answer_for(a, t0, 3s);
  const double before = a.rate();
  // Eight requests were in flight at the first 429 (Retry-After: 1); the other seven come back
  // during the pause, with 429 and the same Retry-After: one cut.
  const TimePoint first = t + 5ms;
  REQUIRE(a.on_congestion(t, first, 1s));
  const double sending = std::chrono::duration<double>(first - t0).count();  // 3 s and a bit
  const double point = before * sending / (sending + 1);  // what the server took, on average
  CHECK(*a.cut_point() == Approx(point));
  CHECK(a.rate() == Approx(point * 0.85));
  for (int i = 1; i < 8; ++i) CHECK_FALSE(a.on_congestion(t + i * 100us, first + i * 50ms, 1s));
  CHECK(a.rate() == Approx(point * 0.85));

  // After the pause, paced clean answers raise the rate again, until a 429 (Retry-After: 1) to
  // a request sent after it. That cut weighs the run since the pause against the pause: after
  // a second of sending (a server that refilled its bucket in the pause and ran dry again) the
  // point is half the rate; after eight seconds, eight ninths of it.
  const auto run_for = GENERATE(as<std::chrono::milliseconds>{}, 1000, 8000);
  const TimePoint resumed = first + 1s;
  t = answer_for(a, resumed, run_for);
  const double again = a.rate();
  CHECK(again > point * 0.85);
  REQUIRE(a.on_congestion(t, t, 1s));
  const double run = std::chrono::duration<double>(t - resumed).count();
  CHECK(*a.cut_point() == Approx(again * run / (run + 1)));
  CHECK(a.rate() == Approx(again * run / (run + 1) * 0.85));
}
