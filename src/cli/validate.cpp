#include <cstdio>
#include <map>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/password_resolver.hpp"

namespace thingsync::cli {

int run_validate(const CommandOptions& opts) {
  std::vector<std::filesystem::path> roots;
  core::Diagnostics config_diags;
  if (!opts.config_file.empty()) {
    auto cfg = config::load_config_file(opts.config_file, config::process_env());
    if (!cfg) {
      print_diagnostics(cfg.error());
      return kExitError;
    }
    // What the config names is checked with the desired state: every error in one run.
    config_diags = config::check_config(*cfg);
    roots.push_back(cfg->desired_state_path);
  } else {
    roots.assign(opts.paths.begin(), opts.paths.end());
  }

  // One load of every path: a device listed under two of them is a duplicate.
  auto loaded = config::load_desired_state(roots);
  auto source_diags = config::validate_sources(loaded.state);
  loaded.diagnostics.insert(loaded.diagnostics.end(), source_diags.begin(), source_diags.end());
  loaded.diagnostics.insert(loaded.diagnostics.end(), config_diags.begin(), config_diags.end());
  core::sort_diagnostics(loaded.diagnostics);
  print_diagnostics(loaded.diagnostics);
  std::size_t errors = 0, warnings = 0;
  for (const auto& d : loaded.diagnostics) {
    (d.severity == core::Severity::kError ? errors : warnings)++;
  }
  const std::size_t files = loaded.state.files.size();
  const std::size_t bindings = loaded.state.bindings.size();
  std::map<core::DeviceKind, std::size_t> of_kind;
  for (std::size_t i = 0; i < bindings; ++i) ++of_kind[loaded.state.bindings.device(i).kind()];
  std::map<std::string, std::size_t> by_kind;  // by name, as printed
  for (const auto& [k, n] : of_kind) by_kind[std::string(core::kind_name(k))] = n;

  std::string kinds;
  for (const auto& [k, n] : by_kind) kinds += (kinds.empty() ? "" : ", ") + std::to_string(n) + " " + k;
  std::printf("%s: %zu bindings in %zu files%s%s; %zu errors, %zu warnings\n",
              errors ? "invalid" : "valid", bindings, files, kinds.empty() ? "" : " (",
              kinds.empty() ? "" : (kinds + ")").c_str(), errors, warnings);
  return errors ? kExitError : kExitOk;
}

}  // namespace thingsync::cli
