#pragma once

#include "thingsync/config/config.hpp"

namespace thingsync::engine {

struct DaemonOptions {
  bool observe_only = false;  ///< `run --observe`: sync.mode observe whatever the config says
  /// Debounce of desired-state file events: a `git pull` that swaps many files is one reload.
  std::chrono::milliseconds debounce{150};
  /// How long SIGTERM waits for in-flight requests before aborting them.
  std::chrono::milliseconds shutdown_grace{4000};
};

/// `thingsync run`: the long-running reconciler (docs/operations.md). Returns the
/// process exit code: 0 after SIGTERM/SIGINT, 1 when it cannot start.
int run_daemon(const config::Config& config, const DaemonOptions& options);

}  // namespace thingsync::engine
