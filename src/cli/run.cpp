#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "thingsync/engine/daemon.hpp"

namespace thingsync::cli {

int run_run(const CommandOptions& opts) {
  auto cfg = load_config_or_report(opts.config_file, ConfigCheck::kDaemon);
  if (!cfg) return kExitError;
  engine::DaemonOptions d;
  d.observe_only = opts.observe;
  return engine::run_daemon(*cfg, d);
}

}  // namespace thingsync::cli
