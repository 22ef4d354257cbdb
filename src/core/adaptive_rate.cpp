#include "thingsync/core/adaptive_rate.hpp"

#include <algorithm>
#include <cmath>

namespace thingsync::core {
namespace {

AdaptiveRatePolicy checked(AdaptiveRatePolicy p) {
  if (!(p.max > 0) || !std::isfinite(p.max)) p.max = 1;
  p.floor = std::clamp(std::isfinite(p.floor) ? p.floor : 1.0, 1e-3, p.max);
  p.initial = std::clamp(std::isfinite(p.initial) ? p.initial : p.floor, p.floor, p.max);
  return p;
}

}  // namespace

AdaptiveRate::AdaptiveRate(AdaptiveRatePolicy policy)
    : policy_(checked(policy)), rate_(policy_.initial) {}

void AdaptiveRate::on_clean(TimePoint now, bool paced) {
  if (!resumed_) resumed_ = now;
  if (!paced) return;
  if (!cut_point_) {
    rate_ = std::min(policy_.max, rate_ + policy_.start_gain);
    return;
  }
  const double point = *cut_point_;
  double per_second = policy_.increase * point;
  if (rate_ < point) {
    per_second = std::max(per_second, policy_.recover * (point - rate_));
    above_since_.reset();
  } else if (!above_since_) {
    above_since_ = now;
  } else if (now - *above_since_ >= policy_.probe_after) {
    cut_point_.reset();  // no cut for this long above the old point: find the new one fast
    above_since_.reset();
  }
  // Answers arrive at about `rate_` a second while the rate sets the pace, so each one adds
  // its share of the increase per second.
  rate_ = std::min(policy_.max, rate_ + per_second / rate_);
}

bool AdaptiveRate::on_congestion(TimePoint sent, TimePoint now, Duration pause) {
  if (!resumed_) resumed_ = now;
  if (last_cut_ && sent < *last_cut_) return false;  // on its way before the cut: same event
  double point = rate_;
  if (pause > Duration::zero()) {
    // A server with a bucket of its own refills it during the pause, and the rate that ran it
    // dry again after the pause looks fine until then; the average over send time and pause
    // does not.
    using Seconds = std::chrono::duration<double>;
    const double sending = std::max(0.0, Seconds(now - *resumed_).count());
    point = std::min(point, rate_ * sending / (sending + Seconds(pause).count()));
  }
  const double factor = cut_point_ ? policy_.cut : policy_.start_cut;
  cut_point_ = std::max(policy_.floor, point);
  rate_ = std::max(policy_.floor, point * factor);
  last_cut_ = now;
  resumed_ = now + pause;
  above_since_.reset();
  return true;
}

}  // namespace thingsync::core
