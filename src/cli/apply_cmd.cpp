// thingsync apply: one observation, one plan (or exactly a saved one), one execution.
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/asio/signal_set.hpp>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/oneshot.hpp"
#include "cli/progress.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/engine/change_journal.hpp"
#include "thingsync/engine/executor.hpp"
#include "thingsync/engine/plan_render.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/sys/git.hpp"

namespace thingsync::cli {
namespace net = boost::asio;
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool confirm() {
  std::printf("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
  std::fflush(stdout);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "yes";
}

struct ApplyRun {
  const CommandOptions& opts;
  Loaded& l;
  engine::Session& session;
  net::signal_set& signals;
  const Targets& targets;
  core::SyncPolicy policy;
  const engine::SavedPlan* saved = nullptr;  // apply FILE
  bool stop = false;
  Clock::time_point start = Clock::now();
};


// `saved`: the state file holds the outcome. The headline says "complete" only when the
// apply did all it could and saved it.
void print_report(const core::Plan& plan, const engine::ExecReport& report, bool saved,
                  double secs, std::uint64_t requests) {
  const char* outcome = !saved || !report.state_error.empty()
                            ? "incomplete (the state could not be saved)"
                        : report.stopped      ? "stopped"
                        : report.failed > 0   ? "finished with failures"
                        : !report.waiting.empty() ? "finished with devices waiting"
                                                  : "complete";
  std::printf(
      "\nApply %s: %zu created, %zu updated, %zu deleted, %zu failed, %zu blocked, %zu waiting "
      "(backoff) in %.1f s (%llu requests, %.1f requests/s)\n",
      outcome, report.created, report.updated, report.deleted, report.failed,
      plan.blocked.size(), report.waiting.size(), secs,
      static_cast<unsigned long long>(requests),
      secs > 0 ? static_cast<double>(requests) / secs : 0.0);
  for (const auto& f : report.failures) {
    std::printf("  failed %s %s: %s%s\n", f.device.canonical().c_str(),
                f.action == obs::Action::kCreate   ? "create"
                : f.action == obs::Action::kUpdate ? "update"
                                                   : "delete",
                f.error.c_str(), f.permanent ? " (retried on a later run, with backoff)" : "");
  }
  const auto now = wall_ms();
  for (const auto& w : report.waiting) {
    std::printf("  waiting %s: an earlier permanent failure; next try at %s (%s), or now with "
                "--retry-failed\n",
                w.device.c_str(), core::format_iso8601_ms(w.next_attempt_ms).c_str(),
                engine::in_time(w.next_attempt_ms - now).c_str());
  }
}

// --retry-failed: the failure backoff of the targets (or of every device) ends now.
void clear_backoffs(state::StateStore& state, const Targets& targets) {
  std::vector<core::DeviceId> devices;
  for (const auto& [canonical, record] : state.failures()) {
    auto d = core::DeviceId::parse(canonical);
    if (d && (!targets.active || targets.predicate()(*d))) devices.push_back(std::move(*d));
  }
  for (const auto& d : devices) state.clear_failure(d);
  if (!devices.empty()) {
    obs::logger("main")->info("--retry-failed: {} devices are tried again now", devices.size());
  }
}

net::awaitable<int> apply_pass(ApplyRun& run) {
  auto log = obs::logger("main");
  Loaded& l = run.l;
  auto observed = co_await observe_and_plan(l, run.session, run.targets, run.policy,
                                            run.opts.approve_deletes);
  if (!observed) {
    log->error("{}", observed.error());
    co_return kExitError;
  }
  const auto& plan = observed->o.pass.plan;
  if (run.saved) {
    // The bindings of every device the saved plan touched, as they are now.
    const auto now =
        describe(l, observed->o, run.targets, run.policy, run.saved->salt, run.saved->devices);
    if (!now) co_return kExitError;
    const auto moved = engine::moved_since(*run.saved, *now);
    if (!moved.empty()) {
      std::fprintf(stderr,
                   "apply: the saved plan %s is out of date, so nothing was changed; make a new "
                   "plan. What moved since:\n",
                   run.opts.plan_file.c_str());
      for (const auto& m : moved) std::fprintf(stderr, "  %s\n", m.c_str());
      co_return kExitError;
    }
  }
  if (!print_plan(plan, "text")) co_return kExitError;
  if (observed->deletes.whole_fleet_blocked > 0) {
    std::fprintf(stderr,
                 "apply: the targets' deletes are blocked: the whole fleet's delete set (%zu) is "
                 "over the guard; approve it with --approve-deletes %s\n",
                 observed->deletes.whole_fleet_blocked, observed->deletes.blocked_hash.c_str());
  }
  if (!observed->deletes.approved.empty()) {
    std::printf("Approved: the blocked delete set %s goes through, once.\n",
                observed->deletes.approved.c_str());
  }
  if (!observed->deletes.approval_refused.empty()) {
    std::fprintf(stderr, "apply: %s\n", observed->deletes.approval_refused.c_str());
  }
  // The list is complete: records of vanished bindings go, and pending creates of an earlier
  // run that it shows are resolved (the plan adopts them and puts the password once).
  auto unresolved = engine::settle_after_list(*l.state, observed->o.observed, l.prepared);
  if (!engine::needs_execution(observed->o.pass)) {
    if (auto r = l.state->checkpoint(); !r) {
      log->error("{}", r.error().message);
      co_return kExitError;
    }
    co_return plan.guard_blocked() ? kExitGuard : kExitOk;
  }
  // A saved plan was reviewed when it was made: it is not asked about again.
  if (!plan.empty() && !run.opts.yes && !run.saved && !confirm()) {
    std::printf("Apply cancelled.\n");
    co_return kExitError;
  }
  // Nothing is sent unless the state that must precede it can be made durable: a snapshot
  // now (it also records whose state this is) proves the file can be written.
  if (auto r = l.state->checkpoint(); !r) {
    log->error("{}; nothing was sent", r.error().message);
    co_return kExitError;
  }
  auto progress = std::make_shared<ProgressReport>(::isatty(STDERR_FILENO) == 1);
  engine::ExecOptions eo;
  eo.concurrency = l.config.sync.concurrency;
  eo.unresolved_pending = std::move(unresolved);
  eo.on_progress = [progress](const engine::Progress& p) { progress->update(p); };
  eo.stop = &run.stop;
  eo.scope_client_id = l.config.scope_client_id;
  engine::ChangeJournal changes({l.config.journal_path});
  eo.on_write = changes.hook(plan, engine::listed_for(observed->o.observed, plan),
                             sys::git_head_commit(l.config.desired_state_path).value_or(""));
  const auto sent_before = run.session.client().stats().sent;
  auto report = co_await engine::execute_pass(observed->o.pass, l.desired.state, l.prepared,
                                              *l.state, run.session.bindings(), std::move(eo));
  progress.reset();
  auto saved = l.state->checkpoint();
  const double secs = std::chrono::duration<double>(Clock::now() - run.start).count();
  print_report(plan, report, saved.ok(), secs, run.session.client().stats().sent - sent_before);
  if (!report.scope_error.empty()) {
    std::fprintf(stderr, "error: %s\n", report.scope_error.c_str());
  }
  if (!saved) {
    log->error("{}", saved.error().message);
    co_return kExitError;
  }
  // Devices still waiting out a permanent failure's backoff are not converged either.
  if (report.failed > 0 || !report.waiting.empty() || !report.state_error.empty() ||
      report.stopped) {
    co_return kExitError;
  }
  co_return plan.guard_blocked() ? kExitGuard : kExitOk;
}

net::awaitable<int> apply_main(ApplyRun& run) {
  const int rc = co_await apply_pass(run);
  run.signals.cancel();  // the loop ends once the pass has
  co_return rc;
}

std::optional<engine::SavedPlan> read_saved_plan(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    std::fprintf(stderr, "apply: cannot read the saved plan %s\n", path.c_str());
    return std::nullopt;
  }
  auto saved = engine::parse_saved_plan(text.str());
  if (!saved) {
    std::fprintf(stderr, "apply: %s: %s\n", path.c_str(), saved.error().c_str());
    return std::nullopt;
  }
  return std::move(saved.value());
}

}  // namespace

int run_apply(const CommandOptions& opts) {
  auto log = obs::logger("main");
  const bool from_file = !opts.plan_file.empty();
  if (!opts.yes && !from_file && !interactive()) {
    std::fprintf(stderr,
                 "apply: no terminal to confirm on; run with --yes to apply without asking\n");
    return kExitUsage;
  }
  if (from_file && (!opts.targets.empty() || !opts.target_file.empty() ||
                    !opts.approve_deletes.empty())) {
    std::fprintf(stderr, "apply: a saved plan brings its own targets: give --target, "
                         "--target-file and --approve-deletes to plan (or to apply without a "
                         "plan file), not to apply FILE\n");
    return kExitUsage;
  }
  if (!opts.max_deletes.empty() && !core::parse_delete_limit(opts.max_deletes)) {
    std::fprintf(stderr, "apply: --max-deletes '%s' is not a count or a percentage\n",
                 opts.max_deletes.substr(0, 100).c_str());
    return kExitUsage;
  }
  auto cfg = load_config_or_report(opts.config_file);
  if (!cfg) return kExitError;
  if (cfg->sync.mode == config::SyncMode::kObserve) {
    std::fprintf(stderr,
                 "apply: %s has sync.mode: observe, which writes nothing; nothing was applied. "
                 "To apply, set sync.mode: reconcile (thingsync plan shows what would change)\n",
                 opts.config_file.c_str());
    return kExitUsage;
  }
  std::optional<engine::SavedPlan> saved;
  if (from_file) {
    saved = read_saved_plan(opts.plan_file);
    if (!saved) return kExitError;
  }
  auto l = load_all(std::move(*cfg), Access::kWrite);
  if (!l) return kExitError;
  auto targets = resolve_targets(saved ? saved->targets : opts.targets,
                                 saved ? std::string() : opts.target_file, l->desired.state);
  if (!targets) {
    std::fprintf(stderr, "apply: %s\n", targets.error().c_str());
    return kExitUsage;
  }
  if (saved) targets->active = !saved->targets.empty();
  if (saved) {
    // The delete limit is the config's; a looser one a plan was made with counts only when the
    // operator gives it again here: a plan file is not trusted to lift the guard.
    const auto config_limit = core::to_string(l->config.sync.max_deletes);
    const auto given = core::parse_delete_limit(opts.max_deletes);
    const auto in_file = core::parse_delete_limit(saved->max_deletes);
    if (!in_file) {
      std::fprintf(stderr, "apply: %s: maxDeletes '%s' is not a count or a percentage\n",
                   opts.plan_file.c_str(), saved->max_deletes.substr(0, 40).c_str());
      return kExitError;
    }
    if (given ? core::to_string(*given) != core::to_string(*in_file)
              : core::to_string(*in_file) != config_limit) {
      std::fprintf(stderr,
                   "apply: the plan was made with a delete limit of %s; this config's is %s. To "
                   "apply it, give that limit again: apply --max-deletes %s ... %s\n",
                   core::to_string(*in_file).c_str(), config_limit.c_str(),
                   core::to_string(*in_file).c_str(), opts.plan_file.c_str());
      return kExitUsage;
    }
  }
  const auto policy = policy_of(l->config, opts.max_deletes);
  if (opts.retry_failed) clear_backoffs(*l->state, *targets);
  net::io_context ioc;
  auto session = engine::Session::create(ioc.get_executor(), l->config, nullptr);
  if (!session) {
    log->error("{}", session.error());
    return kExitError;
  }
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  ApplyRun run{opts, *l, *session.value(), signals, *targets, policy};
  if (saved) run.saved = &*saved;
  signals.async_wait([&run, log](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    run.stop = true;
    log->warn("signal {}: finishing the operations in flight, then saving state", sig);
  });
  return run_on(ioc, apply_main(run));
}

}  // namespace thingsync::cli
