#include "thingsync/core/token_bucket.hpp"

#include <catch2/catch.hpp>

using thingsync::core::TokenBucket;
using namespace std::chrono_literals;

namespace {
const TokenBucket::TimePoint t0{std::chrono::seconds(1000)};
}

TEST_CASE("token bucket starts full and then paces at the rate", "[core][token_bucket]") {
  TokenBucket bucket(10, 3, t0);  // 100 ms per token, burst 3
  CHECK(bucket.available(t0) == 3);
  CHECK(bucket.try_acquire(t0) == 0ns);
  CHECK(bucket.try_acquire(t0) == 0ns);
  CHECK(bucket.try_acquire(t0) == 0ns);
  CHECK(bucket.available(t0) == 0);
  CHECK(bucket.try_acquire(t0) == 100ms);
  CHECK(bucket.try_acquire(t0 + 40ms) == 60ms);  // a refused try takes nothing
  CHECK(bucket.try_acquire(t0 + 100ms) == 0ns);
  CHECK(bucket.try_acquire(t0 + 100ms) == 100ms);
}

TEST_CASE("token bucket refills up to the burst and no further", "[core][token_bucket]") {
  TokenBucket bucket(10, 3, t0);
  for (int i = 0; i < 3; ++i) REQUIRE(bucket.try_acquire(t0) == 0ns);
  CHECK(bucket.available(t0 + 150ms) == 1);
  CHECK(bucket.available(t0 + 250ms) == 2);
  CHECK(bucket.available(t0 + 10s) == 3);
  for (int i = 0; i < 3; ++i) CHECK(bucket.try_acquire(t0 + 10s) == 0ns);
  CHECK(bucket.try_acquire(t0 + 10s) == 100ms);
}

TEST_CASE("token bucket sleeping exactly the returned delay always succeeds",
          "[core][token_bucket]") {
  TokenBucket bucket(3, 1, t0);  // 1/3 s does not divide a nanosecond evenly
  auto now = t0;
  int granted = 0;
  while (now < t0 + 10s) {
    const auto wait = bucket.try_acquire(now);
    if (wait == 0ns) {
      ++granted;
      continue;
    }
    now += wait;
    REQUIRE(bucket.try_acquire(now) == 0ns);
    ++granted;
  }
  // Rounding goes the slow way: 10 s at 3/s with burst 1 is at most 31 grants (t0 inclusive).
  CHECK(granted <= 31);
  CHECK(granted >= 30);
}

TEST_CASE("token bucket never grants more than burst plus rate times the window",
          "[core][token_bucket]") {
  TokenBucket bucket(200, 8, t0);
  // Greedy caller polling every millisecond for 5 s.
  int granted = 0;
  for (auto now = t0; now < t0 + 5s; now += 1ms) {
    while (bucket.try_acquire(now) == 0ns) ++granted;
  }
  CHECK(granted == 8 + 200 * 5 - 1);  // the last token would arrive at exactly t0+5s
}

TEST_CASE("token bucket drain makes the next token wait one interval", "[core][token_bucket]") {
  TokenBucket bucket(10, 5, t0);
  bucket.drain(t0 + 2s);
  CHECK(bucket.available(t0 + 2s) == 0);
  CHECK(bucket.try_acquire(t0 + 2s) == 100ms);
  CHECK(bucket.try_acquire(t0 + 2s + 100ms) == 0ns);
}

TEST_CASE("token bucket with rate zero is unlimited", "[core][token_bucket]") {
  TokenBucket bucket(0, 1, t0);
  CHECK(bucket.unlimited());
  for (int i = 0; i < 1000; ++i) REQUIRE(bucket.try_acquire(t0) == 0ns);
}

TEST_CASE("token bucket set_rate keeps the next token's time and paces the rest anew",
          "[core][token_bucket]") {
  TokenBucket bucket(10, 1, t0);
  CHECK(bucket.try_acquire(t0) == 0ns);
  bucket.set_rate(20, t0 + 10ms);
  CHECK(bucket.try_acquire(t0 + 10ms) == 90ms);   // still due at 100 ms
  CHECK(bucket.try_acquire(t0 + 100ms) == 0ns);
  CHECK(bucket.try_acquire(t0 + 100ms) == 50ms);  // then every 50 ms
  bucket.set_rate(5, t0 + 100ms);
  CHECK(bucket.try_acquire(t0 + 150ms) == 0ns);
  CHECK(bucket.try_acquire(t0 + 150ms) == 200ms);

  SECTION("a pause (drain) survives a new rate") {
    bucket.drain(t0 + 1s);  // next token at 1.2 s
    bucket.set_rate(100, t0 + 200ms);
    CHECK(bucket.try_acquire(t0 + 1s) == 200ms);
    CHECK(bucket.try_acquire(t0 + 1200ms) == 0ns);
    CHECK(bucket.try_acquire(t0 + 1200ms) == 10ms);
  }
  SECTION("from unlimited the next token is due at once") {
    TokenBucket open(0, 1, t0);
    open.set_rate(10, t0 + 5s);
    CHECK(open.try_acquire(t0 + 5s) == 0ns);
    CHECK(open.try_acquire(t0 + 5s) == 100ms);
  }
}
