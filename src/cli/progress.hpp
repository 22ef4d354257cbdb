#pragma once

#include <chrono>

#include "thingsync/engine/executor.hpp"

namespace thingsync::cli {

/// How a long apply shows its progress: on a terminal one live line below the log lines
/// (done/total, rate, ETA, failures), as cargo and apt do; elsewhere (CI, journald) a progress
/// log line every 10 s.
class ProgressReport {
 public:
  explicit ProgressReport(bool terminal);
  ~ProgressReport();
  ProgressReport(const ProgressReport&) = delete;
  ProgressReport& operator=(const ProgressReport&) = delete;

  void update(const engine::Progress& p);

 private:
  using Clock = std::chrono::steady_clock;
  bool terminal_;
  Clock::time_point start_;
  Clock::time_point last_{};
};

}  // namespace thingsync::cli
