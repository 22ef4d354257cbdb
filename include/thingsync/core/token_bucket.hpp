#pragma once

#include <chrono>
#include <cstdint>

namespace thingsync::core {

/// Token-bucket arithmetic as a GCRA (generic cell rate algorithm): `rate` tokens per second,
/// at most `burst` taken at once after a quiet period. Integer nanoseconds, so a caller that
/// sleeps exactly the returned delay always gets its token. The caller passes the time; this
/// class never reads a clock (Envoy's TokenBucketImpl with an injected TimeSource).
/// Not thread-safe: one io_context thread owns it.
class TokenBucket {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::nanoseconds;

  /// `rate` <= 0 means unlimited. `burst` is clamped to at least 1. The bucket starts full.
  TokenBucket(double rate, std::uint32_t burst, TimePoint now);

  /// Takes one token when one is available at `now` and returns zero. Otherwise takes nothing
  /// and returns how long until one will be available (positive).
  Duration try_acquire(TimePoint now);

  /// Whole tokens available at `now` (at most burst).
  std::uint32_t available(TimePoint now) const;

  /// Empties the bucket: the next token comes one interval after `now`. Used when the server
  /// says it is overloaded (429) so that traffic resumes gently after the pause.
  void drain(TimePoint now);

  /// A new rate from `now` on (the adaptive rate moves it). The next token keeps its time, the
  /// ones after it come at the new pace; a running pause (drain) is kept as it is.
  void set_rate(double rate, TimePoint now);

  bool unlimited() const { return interval_.count() == 0; }
  Duration interval() const { return interval_; }
  std::uint32_t burst() const { return burst_; }

 private:
  Duration interval_;   // time per token; 0 when unlimited
  std::uint32_t burst_;
  Duration tolerance_;  // (burst - 1) * interval
  TimePoint tat_;       // theoretical arrival time of the next token
};

}  // namespace thingsync::core
