#pragma once

#include <chrono>
#include <optional>

namespace thingsync::core {

/// The constants of `sync.rateLimit: auto` (docs/operations.md, "Rate limits"). Rates are in
/// requests per second. The defaults were tuned against thingsync-sim's limiter
/// (bench/engine/aimd_bench.py).
struct AdaptiveRatePolicy {
  double max = 50;      ///< never above this (sync.rateLimitMax)
  double initial = 10;  ///< the rate at start (at most `max`)
  double floor = 1;     ///< never below this (at most `max`)
  /// Fast start: before the first cut, each paced clean answer adds this much, so that a rate
  /// answered in full grows about threefold a second (e^1.1).
  double start_gain = 1.1;
  double start_cut = 0.5;  ///< the cut that ends the fast start (its overshoot is large)
  double cut = 0.85;       ///< every later cut: gentle, so the sawtooth stays close to the limit
  /// Additive increase after a cut: this fraction of the last cut point per second of paced
  /// clean answers...
  double increase = 0.02;
  /// ...or, while below the last cut point, this fraction of the distance to it, when that is
  /// more: the rate climbs back fast, then creeps up on the point where it was cut.
  double recover = 0.2;
  /// This long above the last cut point without a cut, the limit has moved up: fast start again.
  std::chrono::milliseconds probe_after{10'000};
};

/// The adaptive rate of `sync.rateLimit: auto`: an AIMD controller (as TCP's congestion control,
/// in requests per second). It starts low and grows fast until the first congestion signal (a
/// 429, or a 503 with Retry-After), then grows a little per second of clean answers and cuts to
/// a fraction on each congestion event. A burst of signals from requests that were already on
/// their way when the first one came back is one event: only a request sent after the last cut
/// can cut again. A signal with a Retry-After also says how long the server wants no traffic:
/// the rate that bought that pause is averaged over it before the cut. The caller passes the
/// time; this class never reads a clock.
/// Not thread-safe: one io_context thread owns it.
class AdaptiveRate {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::nanoseconds;

  explicit AdaptiveRate(AdaptiveRatePolicy policy);

  /// The rate in force, in [floor, max].
  double rate() const { return rate_; }
  /// Still in the fast start (no cut yet, or the limit moved up since the last one).
  bool starting() const { return !cut_point_; }
  /// The rate at which the last cut happened; none while starting.
  std::optional<double> cut_point() const { return cut_point_; }

  /// A clean answer (the API took the request at this rate). `paced`: the request had to wait
  /// for the rate, so the rate and not the work set the pace; only such answers raise it (an
  /// idle daemon's rare requests must not drift it up to the max).
  void on_clean(TimePoint now, bool paced);

  /// A congestion signal for a request sent at `sent`. `pause`: the Retry-After it carried (the
  /// caller holds every request that long), zero when none. Cuts the rate when the request was
  /// sent at or after the last cut, and returns whether it did. With a pause, the point it cuts
  /// from is at most the rate averaged over the time it was sent since traffic last resumed
  /// and the pause: what the server took, spread over the time it asked for.
  bool on_congestion(TimePoint sent, TimePoint now, Duration pause = Duration::zero());

 private:
  AdaptiveRatePolicy policy_;
  double rate_;
  std::optional<double> cut_point_;       // the rate the last cut was made at
  std::optional<TimePoint> last_cut_;     // when that was
  std::optional<TimePoint> above_since_;  // the rate has been above cut_point_ since then
  std::optional<TimePoint> resumed_;      // the end of the last pause, or the first answer
};

}  // namespace thingsync::core
