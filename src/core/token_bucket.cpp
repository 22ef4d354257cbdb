#include "thingsync/core/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace thingsync::core {
namespace {

TokenBucket::Duration interval_for(double rate) {
  if (!(rate > 0) || !std::isfinite(rate)) return TokenBucket::Duration::zero();
  // Round up: the achieved rate may be a hair below `rate`, never above it.
  const double ns = std::ceil(1e9 / rate);
  return TokenBucket::Duration(std::max<std::int64_t>(1, static_cast<std::int64_t>(ns)));
}

}  // namespace

TokenBucket::TokenBucket(double rate, std::uint32_t burst, TimePoint now)
    : interval_(interval_for(rate)),
      burst_(std::max<std::uint32_t>(1, burst)),
      tolerance_(interval_ * (burst_ - 1)),
      tat_(now) {}

TokenBucket::Duration TokenBucket::try_acquire(TimePoint now) {
  if (unlimited()) return Duration::zero();
  const TimePoint tat = std::max(tat_, now);
  const TimePoint earliest = tat - tolerance_;
  if (now < earliest) return earliest - now;
  tat_ = tat + interval_;
  return Duration::zero();
}

std::uint32_t TokenBucket::available(TimePoint now) const {
  if (unlimited()) return burst_;
  const TimePoint tat = std::max(tat_, now);
  // Tokens left = how many more intervals fit before tat would pass now + tolerance.
  const auto slack = (now + tolerance_) - tat + interval_;
  if (slack.count() <= 0) return 0;
  return static_cast<std::uint32_t>(std::min<std::int64_t>(burst_, slack / interval_));
}

void TokenBucket::drain(TimePoint now) {
  if (unlimited()) return;
  tat_ = std::max(tat_, now + tolerance_ + interval_);
}

void TokenBucket::set_rate(double rate, TimePoint now) {
  const bool was_unlimited = unlimited();
  interval_ = interval_for(rate);
  tolerance_ = interval_ * (burst_ - 1);
  if (was_unlimited) tat_ = now;  // the next token is due at once, as in a new bucket
}

}  // namespace thingsync::core
