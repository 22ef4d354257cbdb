#include "cli/app.hpp"

#include <malloc.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/version.hpp"

namespace thingsync::cli {

int main(int argc, char** argv) {
  // One malloc arena for every thread: what the desired-state load's threads free is reused by
  // the list and the plan that follow, instead of staying in arenas of their own (plan at a
  // million bindings, converged: 309 MB peak RSS with per-thread arenas, 275 MB with one).
  ::mallopt(M_ARENA_MAX, 1);
  CLI::App app{"thingsync: keeps KPN Things MQTT bindings in line with a Git repository"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  // Common flags are accepted before or after the subcommand.
  app.fallthrough();

  std::string level = "info";
  std::string format = "text";
  app.add_option("--log-level", level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", format, "text|json")->check(CLI::IsMember({"text", "json"}));

  CommandOptions opts;
  auto* validate = app.add_subcommand(
      "validate", "Check the desired state offline (no network): syntax, device IDs, duplicates, "
                  "password sources");
  auto* config_opt = validate->add_option("--config", opts.config_file, "Config file")
                         ->check(CLI::ExistingFile);
  validate->add_option("paths", opts.paths, "Desired-state files or directories")
      ->excludes(config_opt);

  auto* run = app.add_subcommand("run", "Run the reconciler daemon in the foreground (systemd Type=notify)");
  run->add_option("--config", opts.config_file, "Config file")->required()->check(CLI::ExistingFile);
  run->add_flag("--observe", opts.observe, "Report drift in metrics and logs, write nothing");

  // --target and --target-file limit a pass to some devices, deletes included.
  const auto add_targets = [&opts](CLI::App* cmd) {
    cmd->add_option("--target", opts.targets,
                    "Only this device (any spelling of its ID); repeatable");
    cmd->add_option("--target-file", opts.target_file,
                    "Only the devices of this desired-state file");
    cmd->add_option("--max-deletes", opts.max_deletes,
                    "The delete guard for this run: a count or a percentage (N or P%)");
  };

  auto* plan = app.add_subcommand(
      "plan", "Show what apply would change (exit 0: nothing, 2: changes, 3: deletes blocked)");
  plan->add_option("--config", opts.config_file, "Config file")->required()->check(CLI::ExistingFile);
  plan->add_option("--output", opts.output, "text|json|markdown")
      ->check(CLI::IsMember({"text", "json", "markdown"}));
  plan->add_option("--out", opts.out_file,
                   "Also save the plan to this file, for apply FILE (holds no secret)");
  add_targets(plan);

  auto* apply = app.add_subcommand(
      "apply", "Plan, then make the API match the desired state once; or apply a saved plan");
  apply->add_option("--config", opts.config_file, "Config file")->required()->check(CLI::ExistingFile);
  apply->add_flag("--yes", opts.yes, "Do not ask for confirmation");
  apply->add_flag("--retry-failed", opts.retry_failed,
                  "Try devices waiting out a failure's backoff now (the targets, or all)");
  apply->add_option("--approve-deletes", opts.approve_deletes,
                    "Let the blocked delete set with this hash (plan shows it) through, once");
  apply->add_option("PLANFILE", opts.plan_file,
                    "A plan saved by plan --out: applied exactly, or refused if anything moved")
      ->check(CLI::ExistingFile);
  add_targets(apply);

  auto* diff = app.add_subcommand(
      "diff", "One device: desired, remote bindings, state, and the verdict (exit 0: in sync, 2: "
              "differs)");
  diff->add_option("--config", opts.config_file, "Config file")->required()->check(CLI::ExistingFile);
  diff->add_option("device", opts.device, "The device ID (any spelling)")->required();

  auto* exp = app.add_subcommand("export", "Write the remote bindings in scope as desired-state YAML");
  exp->add_option("--config", opts.config_file, "Config file")->required()->check(CLI::ExistingFile);
  exp->add_option("--output-dir", opts.output_dir, "Directory for the YAML files");

  auto* history = app.add_subcommand("history", "The writes to the API, from the change journal");
  history->add_option("--config", opts.config_file, "Config file")->required()->check(CLI::ExistingFile);
  history->add_option("--device", opts.device, "Only this device (any spelling of its ID)");
  history->add_option("--since", opts.since, "Only writes since a time, or of the last 24h, 7d");
  history->add_option("--output", opts.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));

  app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  obs::setup_logging({*obs::parse_log_level(level), *obs::parse_log_format(format)});

  try {
    if (app.got_subcommand("version")) {
      std::printf("thingsync %s\n", kVersion);
      return kExitOk;
    }
    if (app.got_subcommand(validate)) {
      if (opts.config_file.empty() && opts.paths.empty()) {
        std::fprintf(stderr, "validate: give --config FILE or one or more paths\n");
        return kExitUsage;
      }
      return run_validate(opts);
    }
    if (app.got_subcommand(run)) return run_run(opts);
    if (app.got_subcommand(plan)) return run_plan(opts);
    if (app.got_subcommand(apply)) return run_apply(opts);
    if (app.got_subcommand(exp)) return run_export(opts);
    if (app.got_subcommand(diff)) return run_diff(opts);
    if (app.got_subcommand(history)) return run_history(opts);
  } catch (const std::exception& e) {
    obs::logger("main")->error("unexpected error: {}", e.what());
    return kExitError;
  }
  return kExitUsage;
}

}  // namespace thingsync::cli
