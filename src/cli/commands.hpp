#pragma once

#include <string>
#include <vector>

namespace thingsync::cli {

struct CommandOptions {
  std::string config_file;
  std::vector<std::string> paths;  ///< validate: desired-state paths instead of --config
  std::string output = "text";     ///< plan: text|json
  bool yes = false;                ///< apply: skip the confirmation
  std::string output_dir = "thingsync-export";  ///< export
  bool observe = false;            ///< run: sync.mode observe, whatever the config says
};

int run_validate(const CommandOptions& opts);
int run_plan(const CommandOptions& opts);
int run_apply(const CommandOptions& opts);
int run_export(const CommandOptions& opts);
int run_run(const CommandOptions& opts);

}  // namespace thingsync::cli
