#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace thingsync::core {

/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
/// Jitter"): retry n (0-based) waits a uniformly drawn time in [0, min(cap, base * 2^n)].
/// The caller draws the random numbers (Envoy's JitteredExponentialBackOffStrategy with an
/// injected RandomGenerator), so tests can assert exact delays.
struct BackoffPolicy {
  std::chrono::milliseconds base{200};
  std::chrono::milliseconds cap{10'000};
  std::uint32_t max_attempts = 5;  ///< total attempts, the first one included
};

/// The ceiling min(cap, base * 2^retry) for the 0-based retry number, without overflow.
std::chrono::milliseconds backoff_ceiling(const BackoffPolicy& policy, std::uint32_t retry);

/// A delay in [0, backoff_ceiling(policy, retry)], chosen by `random` (any 64-bit value).
std::chrono::milliseconds full_jitter(const BackoffPolicy& policy, std::uint32_t retry,
                                      std::uint64_t random);

/// Attempt bookkeeping for one operation. Not thread-safe.
class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy) : policy_(policy) {}

  /// Records a failed attempt. Returns the delay before the next attempt, or nullopt when the
  /// attempts are used up.
  std::optional<std::chrono::milliseconds> next(std::uint64_t random);

  std::uint32_t attempts() const { return failures_; }
  void reset() { failures_ = 0; }

 private:
  BackoffPolicy policy_;
  std::uint32_t failures_ = 0;
};

}  // namespace thingsync::core
