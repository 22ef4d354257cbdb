#include "thingsync/core/backoff.hpp"

#include <catch2/catch.hpp>

using thingsync::core::Backoff;
using thingsync::core::BackoffPolicy;
using namespace std::chrono_literals;

TEST_CASE("backoff ceiling doubles from base up to the cap", "[core][backoff]") {
  const BackoffPolicy p{100ms, 1000ms, 10};
  CHECK(backoff_ceiling(p, 0) == 100ms);
  CHECK(backoff_ceiling(p, 1) == 200ms);
  CHECK(backoff_ceiling(p, 2) == 400ms);
  CHECK(backoff_ceiling(p, 3) == 800ms);
  CHECK(backoff_ceiling(p, 4) == 1000ms);
  CHECK(backoff_ceiling(p, 200) == 1000ms);  // no overflow for large retry numbers
}

TEST_CASE("full jitter maps the random number into zero to ceiling inclusive", "[core][backoff]") {
  const BackoffPolicy p{100ms, 1000ms, 10};
  CHECK(full_jitter(p, 0, 0) == 0ms);
  CHECK(full_jitter(p, 0, 100) == 100ms);
  CHECK(full_jitter(p, 0, 101) == 0ms);
  CHECK(full_jitter(p, 2, 250) == 250ms);
  CHECK(full_jitter(p, 2, 401 + 7) == 7ms);
  CHECK(full_jitter(p, 9, ~std::uint64_t{0}) == std::chrono::milliseconds(~std::uint64_t{0} % 1001));
}

TEST_CASE("backoff gives up after max attempts", "[core][backoff]") {
  Backoff b(BackoffPolicy{100ms, 10s, 4});
  // Attempts 1, 2, 3 failed: three delays with ceilings 100, 200, 400 ms.
  CHECK(b.next(150) == 49ms);  // 150 mod 101
  CHECK(b.next(150) == 150ms);
  CHECK(b.next(399) == 399ms);
  CHECK(b.next(0) == std::nullopt);  // the 4th attempt failed: no more
  CHECK(b.attempts() == 4);
  b.reset();
  CHECK(b.next(5) == 5ms);
}

TEST_CASE("backoff with one attempt never retries", "[core][backoff]") {
  Backoff b(BackoffPolicy{100ms, 10s, 1});
  CHECK(b.next(1) == std::nullopt);
}
