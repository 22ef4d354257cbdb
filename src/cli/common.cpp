#include "cli/common.hpp"

#include "thingsync/obs/log.hpp"

#include <unistd.h>

#include <cstdio>

namespace thingsync::cli {

void print_diagnostics(const core::Diagnostics& diags) {
  for (const auto& d : diags) obs::report_diagnostic(d);
}

std::optional<config::Config> load_config_or_report(const std::string& file, ConfigCheck check) {
  auto cfg = config::load_config_file(file, config::process_env());
  if (!cfg) {
    print_diagnostics(cfg.error());
    return std::nullopt;
  }
  const auto found = config::check_config(*cfg);
  print_diagnostics(found);
  const bool fatal = check == ConfigCheck::kAll ? core::has_errors(found)
                                                : core::has_errors(cfg->placeholders);
  if (fatal) return std::nullopt;
  return std::move(cfg.value());
}

bool interactive() { return ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1; }

}  // namespace thingsync::cli
