// plan, apply and export: one observation of the API, one plan, at most one execution.
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/engine/desired.hpp"
#include "thingsync/engine/executor.hpp"
#include "thingsync/engine/pass.hpp"
#include "thingsync/engine/plan_render.hpp"
#include "thingsync/engine/session.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/state/writer_lock.hpp"

namespace thingsync::cli {
namespace net = boost::asio;
namespace {

using Clock = std::chrono::steady_clock;

struct Loaded {
  config::Config config;
  config::LoadResult desired;
  std::unique_ptr<state::WriterLock> lock;  // apply: the one writer of the state file
  std::unique_ptr<state::StateStore> state;
  engine::PreparedDesired prepared;
};

enum class Access : std::uint8_t { kRead, kWrite };


// Desired state (with every password source resolved) and state file (locked for a writer,
// bound to the config's API), or nothing.
std::optional<Loaded> load_all(config::Config cfg, Access access) {
  auto log = obs::logger("main");
  Loaded l{std::move(cfg), {}, nullptr, nullptr, {}};
  if (access == Access::kWrite) {
    auto lock = state::WriterLock::acquire(l.config.state_path, "thingsync apply");
    if (!lock) {
      log->error("{}", lock.error().message);
      return std::nullopt;
    }
    l.lock = std::move(lock.value());
  }
  if (!engine::load_settled_checkout(l.config.desired_state_path, l.desired)) return std::nullopt;
  print_diagnostics(l.desired.diagnostics);
  if (!l.desired.ok()) {
    log->error("desired state {} does not load: nothing was planned",
               l.config.desired_state_path.string());
    return std::nullopt;
  }
  auto st = state::StateStore::open(l.config.state_path, state::StateStore::random_salt());
  if (!st) {
    log->error("{}", st.error().message);
    return std::nullopt;
  }
  l.state = std::move(st.value());
  if (auto owned = l.state->claim(l.config.api.base_url, l.config.scope_client_id.value_or(""));
      !owned) {
    log->error("{}", owned.error().message);
    return std::nullopt;
  }
  l.prepared = engine::prepare_desired(l.desired.state, l.state->salt(), config::process_env());
  print_diagnostics(l.prepared.diagnostics);
  if (!l.prepared.ok()) {
    log->error("password sources failed: nothing was planned");
    return std::nullopt;
  }
  return l;
}

core::SyncPolicy policy_of(const config::Config& c) { return {c.sync.prune, c.sync.max_deletes}; }

// The observation and the plan of this one pass.
net::awaitable<core::Result<engine::OneShotPlan, std::string>> observe_and_plan(
    Loaded& l, engine::Session& session) {
  return engine::observe_and_plan(session.bindings(), session.scope_query(), l.prepared, *l.state,
                                  policy_of(l.config));
}

template <typename T>
T run_on(net::io_context& ioc, net::awaitable<T> aw) {
  auto f = net::co_spawn(ioc, std::move(aw), net::use_future);
  ioc.run();
  return f.get();
}

int plan_exit_code(const core::Plan& p) {
  if (p.guard_blocked()) return kExitGuard;
  return p.empty() ? kExitOk : kExitChanges;
}

bool confirm() {
  std::printf("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
  std::fflush(stdout);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "yes";
}

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), start_(Clock::now()) {}
  void update(const engine::Progress& p) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (p.done != p.total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(p.done) / secs : 0;
    const double eta = rate > 0 ? static_cast<double>(p.total - p.done) / rate : 0;
    std::fprintf(stderr, "\r  %zu/%zu devices  %.1f/s  ETA %.0fs  %zu failed   ", p.done, p.total,
                 rate, eta, p.failed);
    if (p.done == p.total) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  Clock::time_point start_;
  Clock::time_point last_{};
};

}  // namespace

int run_plan(const CommandOptions& opts) {
  auto cfg = load_config_or_report(opts.config_file);
  if (!cfg) return kExitError;
  auto l = load_all(std::move(*cfg), Access::kRead);
  if (!l) return kExitError;
  net::io_context ioc;
  auto session = engine::Session::create(ioc.get_executor(), l->config, nullptr);
  if (!session) {
    obs::logger("main")->error("{}", session.error());
    return kExitError;
  }
  auto observed = run_on(ioc, observe_and_plan(*l, *session.value()));
  if (!observed) {
    obs::logger("main")->error("{}", observed.error());
    return kExitError;
  }
  const auto& plan = observed->pass.plan;
  if (opts.output == "json") {
    std::fputs(engine::render_plan_json(plan).c_str(), stdout);
  } else {
    std::fputs(engine::render_plan_text(plan, ::isatty(STDOUT_FILENO) == 1).c_str(), stdout);
  }
  return plan_exit_code(plan);
}

namespace {

struct ApplyRun {
  const CommandOptions& opts;
  Loaded& l;
  engine::Session& session;
  net::signal_set& signals;
  bool stop = false;
  Clock::time_point start = Clock::now();
};

// `saved`: the state file holds the outcome. The headline says "complete" only when the
// apply did all it could and saved it.
void print_report(const core::Plan& plan, const engine::ExecReport& report, bool saved,
                  double secs, std::uint64_t requests) {
  const char* outcome = !saved || !report.state_error.empty()
                            ? "incomplete (the state could not be saved)"
                        : report.stopped ? "stopped"
                        : report.failed > 0 ? "finished with failures"
                                            : "complete";
  std::printf(
      "\nApply %s: %zu created, %zu updated, %zu deleted, %zu failed, %zu blocked, %zu waiting "
      "(backoff) in %.1f s (%llu requests, %.1f requests/s)\n",
      outcome, report.created, report.updated, report.deleted,
      report.failed, plan.blocked.size(), report.waiting.size(), secs,
      static_cast<unsigned long long>(requests),
      secs > 0 ? static_cast<double>(requests) / secs : 0.0);
  for (const auto& f : report.failures) {
    std::printf("  failed %s %s: %s%s\n", f.device.canonical().c_str(),
                f.action == obs::Action::kCreate   ? "create"
                : f.action == obs::Action::kUpdate ? "update"
                                                   : "delete",
                f.error.c_str(), f.permanent ? " (retried on a later run, with backoff)" : "");
  }
  for (const auto& w : report.waiting) {
    std::printf("  waiting %s: an earlier permanent failure; retried after its backoff\n",
                w.c_str());
  }
}

net::awaitable<int> apply_pass(ApplyRun& run) {
  auto log = obs::logger("main");
  Loaded& l = run.l;
  auto observed = co_await observe_and_plan(l, run.session);
  if (!observed) {
    log->error("{}", observed.error());
    co_return kExitError;
  }
  const auto& plan = observed->pass.plan;
  std::fputs(engine::render_plan_text(plan, ::isatty(STDOUT_FILENO) == 1).c_str(), stdout);
  std::fflush(stdout);
  // The list is complete: records of vanished bindings go, and pending creates of an earlier
  // run that it shows are resolved (the plan adopts them and puts the password once).
  auto unresolved = engine::settle_after_list(*l.state, observed->list, l.prepared);
  if (!engine::needs_execution(observed->pass)) {
    if (auto r = l.state->checkpoint(); !r) {
      log->error("{}", r.error().message);
      co_return kExitError;
    }
    co_return plan.guard_blocked() ? kExitGuard : kExitOk;
  }
  if (!plan.empty() && !run.opts.yes && !confirm()) {
    std::printf("Apply cancelled.\n");
    co_return kExitError;
  }
  // Nothing is sent unless the state that must precede it can be made durable: a snapshot
  // now (it also records whose state this is) proves the file can be written.
  if (auto r = l.state->checkpoint(); !r) {
    log->error("{}; nothing was sent", r.error().message);
    co_return kExitError;
  }
  auto progress = std::make_shared<ProgressLine>(::isatty(STDERR_FILENO) == 1);
  engine::ExecOptions eo;
  eo.concurrency = l.config.sync.concurrency;
  eo.unresolved_pending = std::move(unresolved);
  eo.on_progress = [progress](const engine::Progress& p) { progress->update(p); };
  eo.stop = &run.stop;
  eo.scope_client_id = l.config.scope_client_id;
  const auto sent_before = run.session.client().stats().sent;
  auto report = co_await engine::execute_pass(observed->pass, l.desired.state, l.prepared,
                                              *l.state, run.session.bindings(), std::move(eo));
  auto saved = l.state->checkpoint();
  const double secs = std::chrono::duration<double>(Clock::now() - run.start).count();
  print_report(plan, report, saved.ok(), secs, run.session.client().stats().sent - sent_before);
  if (!report.scope_error.empty()) std::fprintf(stderr, "error: %s\n", report.scope_error.c_str());
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

}  // namespace

int run_apply(const CommandOptions& opts) {
  auto log = obs::logger("main");
  if (!opts.yes && !interactive()) {
    std::fprintf(stderr,
                 "apply: no terminal to confirm on; run with --yes to apply without asking\n");
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
  auto l = load_all(std::move(*cfg), Access::kWrite);
  if (!l) return kExitError;
  net::io_context ioc;
  auto session = engine::Session::create(ioc.get_executor(), l->config, nullptr);
  if (!session) {
    log->error("{}", session.error());
    return kExitError;
  }
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  ApplyRun run{opts, *l, *session.value(), signals};
  signals.async_wait([&run, log](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    run.stop = true;
    log->warn("signal {}: finishing the operations in flight, then saving state", sig);
  });
  return run_on(ioc, apply_main(run));
}

int run_export(const CommandOptions& opts) {
  auto log = obs::logger("main");
  auto cfg = load_config_or_report(opts.config_file);
  if (!cfg) return kExitError;
  net::io_context ioc;
  auto session = engine::Session::create(ioc.get_executor(), *cfg, nullptr);
  if (!session) {
    log->error("{}", session.error());
    return kExitError;
  }
  auto list = run_on(ioc, session.value()->bindings().list_all(session.value()->scope_query()));
  if (!list) {
    log->error("listing the remote bindings failed: {}", list.error().to_string());
    return kExitError;
  }
  std::map<core::DeviceKind, std::vector<core::DeviceId>> by_kind;
  for (const auto& b : list->bindings) by_kind[b.device.kind()].push_back(b.device);

  const std::filesystem::path dir = opts.output_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    log->error("cannot create {}: {}", dir.string(), ec.message());
    return kExitError;
  }
  const auto stamp = core::format_iso8601_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
  std::size_t written = 0;
  for (auto& [kind, devices] : by_kind) {
    std::sort(devices.begin(), devices.end());
    devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
    const auto file = dir / (std::string(core::kind_name(kind)) + ".yaml");
    if (std::filesystem::exists(file)) {
      log->error("{} exists: export does not overwrite; remove it or choose another --output-dir",
                 file.string());
      return kExitError;
    }
    std::ofstream out(file);
    out << "# Exported by thingsync export from " << cfg->api.base_url << " at " << stamp << ": "
        << devices.size() << " " << core::kind_name(kind) << " bindings.\n"
        << "# Passwords are write-only in the Things API and cannot be exported. Fill in the\n"
        << "# password source below (derive, file or env) before using this file; until then\n"
        << "# `thingsync validate` reports the missing key file.\n"
        << "defaults:\n  password:\n    derive:\n      keyFile: FILL-IN-the-fleet-key-file\n"
        << "bindings:\n";
    for (const auto& d : devices) out << "  - deviceId: \"" << d.canonical() << "\"\n";
    out.close();
    if (!out) {
      log->error("cannot write {}", file.string());
      return kExitError;
    }
    written += devices.size();
    std::printf("wrote %s (%zu bindings)\n", file.string().c_str(), devices.size());
  }
  std::printf("exported %zu bindings into %s\n", written, dir.string().c_str());
  return kExitOk;
}

}  // namespace thingsync::cli
