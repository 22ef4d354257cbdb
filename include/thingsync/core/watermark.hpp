#pragma once

#include <cstdint>

namespace thingsync::core {

/// The `modifiedSince` of the next poll (docs/operations.md, "Observing the API"). Pure: every
/// time comes in as a value. Server times (modifiedAt, the list's Date) are ms since the Unix
/// epoch; local times are any monotonic clock in ms.
///
/// Rules:
///  - A poll re-reads `overlap` before the newest modifiedAt seen: a change can become
///    visible to a list a little after changes stamped later (clocks of several servers,
///    commit delays).
///  - It need not go below a point up to which everything is known to be seen: once a list
///    that began `overlap` after the newest modifiedAt was first seen has completed, every
///    change stamped up to it had become visible. So a quiet fleet costs one request a poll.
///  - It never passes the server's time of the last completed list minus the overlap: one
///    binding stamped in the future by a node whose clock runs ahead must not hide every
///    later change from the polls.
class Watermark {
 public:
  explicit Watermark(std::int64_t overlap_ms) : overlap_ms_(overlap_ms) {}

  /// Taken when a list begins; handed back to completed().
  struct Mark {
    std::int64_t started_local_ms = 0;
    std::int64_t newest_ms = 0;
    std::int64_t newest_seen_local_ms = 0;
  };
  Mark begin(std::int64_t now_local_ms) const { return {now_local_ms, newest_ms_, seen_local_ms_}; }

  /// A modifiedAt seen in a list or in the answer to thingsync's own write.
  void saw(std::int64_t modified_at_ms, std::int64_t now_local_ms);

  /// The list that began at `mark` has completed; `server_time_ms` is the server's time when
  /// it began (its first page's Date header, else the local wall clock).
  void completed(const Mark& mark, std::int64_t server_time_ms);

  /// modifiedSince for the next poll (inclusive).
  std::int64_t since() const;

  std::int64_t newest() const { return newest_ms_; }

 private:
  std::int64_t overlap_ms_;
  std::int64_t newest_ms_ = 0;       // newest modifiedAt seen
  std::int64_t seen_local_ms_ = 0;   // when it was first seen
  std::int64_t closed_ms_ = 0;       // every change stamped up to here seen
  std::int64_t server_ms_ = 0;       // server time of the last completed list (0: none yet)
};

}  // namespace thingsync::core
