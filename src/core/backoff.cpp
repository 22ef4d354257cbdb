#include "thingsync/core/backoff.hpp"

#include <algorithm>

namespace thingsync::core {

std::chrono::milliseconds backoff_ceiling(const BackoffPolicy& policy, std::uint32_t retry) {
  const std::int64_t base = std::max<std::int64_t>(0, policy.base.count());
  const std::int64_t cap = std::max<std::int64_t>(0, policy.cap.count());
  std::int64_t ceiling = base;
  for (std::uint32_t i = 0; i < retry && ceiling < cap; ++i) ceiling *= 2;
  return std::chrono::milliseconds(std::min(ceiling, cap));
}

std::chrono::milliseconds full_jitter(const BackoffPolicy& policy, std::uint32_t retry,
                                      std::uint64_t random) {
  const auto ceiling = static_cast<std::uint64_t>(backoff_ceiling(policy, retry).count());
  return std::chrono::milliseconds(static_cast<std::int64_t>(random % (ceiling + 1)));
}

std::optional<std::chrono::milliseconds> Backoff::next(std::uint64_t random) {
  const std::uint32_t retry = failures_++;
  if (failures_ >= policy_.max_attempts) return std::nullopt;
  return full_jitter(policy_, retry, random);
}

}  // namespace thingsync::core
