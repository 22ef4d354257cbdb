#pragma once

#include <string>
#include <vector>

namespace thingsync::cli {

struct CommandOptions {
  std::string config_file;
  std::vector<std::string> paths;  ///< validate: desired-state paths instead of --config
  std::string output = "text";     ///< plan: text|json|markdown
  bool yes = false;                ///< apply: skip the confirmation
  std::string output_dir = "thingsync-export";  ///< export
  bool observe = false;            ///< run: sync.mode observe, whatever the config says
  std::vector<std::string> targets;  ///< plan, apply: --target (any spelling)
  std::string target_file;           ///< plan, apply: --target-file
  std::string out_file;              ///< plan: --out (a saved plan)
  std::string plan_file;             ///< apply: the saved plan to apply
  std::string max_deletes;           ///< plan, apply: --max-deletes for this run
  bool retry_failed = false;         ///< apply: failure backoffs end now
  std::vector<std::string> approve_deletes;  ///< apply: hashes of blocked delete sets let through
  std::string device;                ///< diff
  std::string since;                 ///< history: --since (--device sets `device`)
};

int run_validate(const CommandOptions& opts);
int run_plan(const CommandOptions& opts);
int run_apply(const CommandOptions& opts);
int run_export(const CommandOptions& opts);
int run_diff(const CommandOptions& opts);
int run_run(const CommandOptions& opts);
int run_history(const CommandOptions& opts);

}  // namespace thingsync::cli
