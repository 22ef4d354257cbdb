#include "thingsync/core/watermark.hpp"

#include <algorithm>

namespace thingsync::core {

void Watermark::saw(std::int64_t modified_at_ms, std::int64_t now_local_ms) {
  if (modified_at_ms <= newest_ms_) return;
  newest_ms_ = modified_at_ms;
  seen_local_ms_ = now_local_ms;
}

void Watermark::completed(const Mark& mark, std::int64_t server_time_ms) {
  server_ms_ = std::max(server_ms_, server_time_ms);
  if (mark.started_local_ms >= mark.newest_seen_local_ms + overlap_ms_) {
    closed_ms_ = std::max(closed_ms_, mark.newest_ms);
  }
}

std::int64_t Watermark::since() const {
  const std::int64_t wanted = std::max(closed_ms_, newest_ms_ - overlap_ms_);
  if (server_ms_ == 0) return wanted;  // no list yet: nothing to cap with
  return std::min(wanted, server_ms_ - overlap_ms_);
}

}  // namespace thingsync::core
