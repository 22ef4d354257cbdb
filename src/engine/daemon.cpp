#include "thingsync/engine/daemon.hpp"

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <csignal>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/engine/desired.hpp"
#include "thingsync/engine/executor.hpp"
#include "thingsync/engine/plan_render.hpp"
#include "thingsync/engine/session.hpp"
#include "thingsync/obs/http_server.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/obs/metrics.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/sys/git.hpp"
#include "thingsync/sys/notify.hpp"
#include "thingsync/sys/tree_watcher.hpp"
#include "thingsync/version.hpp"

namespace thingsync::engine {
namespace net = boost::asio;
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

auto log_crash(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      obs::logger("daemon")->critical("{} crashed: {}", what, x.what());
    }
  };
}

// The remote bindings as last seen, by binding id and by device.
class ObservedSet {
 public:
  std::size_t size() const { return by_id_.size(); }
  const core::RemoteBinding* find(const std::string& id) const {
    const auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
  }
  void put(core::RemoteBinding b) {
    if (auto it = by_id_.find(b.id); it != by_id_.end()) unlink(it->second);
    by_device_[b.device.canonical()].push_back(b.id);
    const std::string id = b.id;
    by_id_.insert_or_assign(id, std::move(b));
  }
  void erase(const std::string& id) {
    if (auto it = by_id_.find(id); it != by_id_.end()) {
      unlink(it->second);
      by_id_.erase(it);
    }
  }
  void clear() {
    by_id_.clear();
    by_device_.clear();
  }
  std::vector<core::RemoteBinding> all() const {
    std::vector<core::RemoteBinding> out;
    out.reserve(by_id_.size());
    for (const auto& [id, b] : by_id_) out.push_back(b);
    return out;
  }
  std::vector<core::RemoteBinding> of_device(const core::DeviceId& d) const {
    std::vector<core::RemoteBinding> out;
    if (auto it = by_device_.find(d.canonical()); it != by_device_.end()) {
      for (const auto& id : it->second) out.push_back(by_id_.at(id));
    }
    return out;
  }
  std::vector<std::string> ids() const {
    std::vector<std::string> out;
    out.reserve(by_id_.size());
    for (const auto& [id, b] : by_id_) out.push_back(id);
    return out;
  }

 private:
  void unlink(const core::RemoteBinding& b) {
    auto it = by_device_.find(b.device.canonical());
    if (it == by_device_.end()) return;
    std::erase(it->second, b.id);
    if (it->second.empty()) by_device_.erase(it);
  }
  std::unordered_map<std::string, core::RemoteBinding> by_id_;
  std::unordered_map<std::string, std::vector<std::string>> by_device_;
};

class Daemon {
 public:
  Daemon(const config::Config& config, const DaemonOptions& options)
      : config_(config),
        opts_(options),
        observe_only_(options.observe_only || config.sync.mode == config::SyncMode::kObserve),
        metrics_(kVersion),
        wake_(ioc_, Clock::time_point::max()),
        signals_(ioc_, SIGINT, SIGTERM, SIGHUP),
        log_(obs::logger("daemon")),
        loader_(config.desired_state_path) {}

  int run() {
    auto st = state::StateStore::open(config_.state_path, state::StateStore::random_salt());
    if (!st) {
      log_->error("{}", st.error().message);
      return 1;
    }
    state_ = std::move(st.value());
    auto session = Session::create(ioc_.get_executor(), config_, &metrics_);
    if (!session) {
      log_->error("{}", session.error());
      return 1;
    }
    session_ = std::move(session.value());
    full_reload_ = true;
    if (!reload_desired()) {
      log_->error("the desired state does not load; not starting (fix it and restart)");
      return 1;
    }
    try {
      metrics_server_ = std::make_unique<obs::HttpServer>(
          ioc_.get_executor(), config_.metrics_host, config_.metrics_port,
          [this](const obs::HttpGet& g) { return serve(g); });
      metrics_server_->start();
      watcher_ = std::make_unique<sys::TreeWatcher>(ioc_.get_executor(), config_.desired_state_path);
    } catch (const std::exception& e) {
      log_->error("cannot start: {}", e.what());
      return 1;
    }
    log_->info("started version={} mode={} metrics=http://{}:{} desired={} state={}", kVersion,
               observe_only_ ? "observe" : "reconcile", config_.metrics_host,
               metrics_server_->port(), config_.desired_state_path.string(),
               config_.state_path.string());

    net::co_spawn(ioc_, main_loop(), log_crash("main loop"));
    net::co_spawn(ioc_, watch_loop(), log_crash("watcher"));
    if (notifier_.watchdog_interval()) net::co_spawn(ioc_, watchdog_loop(), log_crash("watchdog"));
    wait_signal();
    ioc_.run();
    return exit_code_;
  }

 private:
  // ---- triggers -------------------------------------------------------------------------

  void wait_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        log_->info("SIGHUP: reloading the desired state, password files and token");
        full_reload_ = true;
        reload_at_ = Clock::now();
        wake_.cancel();
        wait_signal();
        return;
      }
      begin_shutdown(sig);
    });
  }

  void begin_shutdown(int sig) {
    if (stopping_) return;
    log_->info("signal {}: stopping (in-flight requests get {} ms)", sig,
               opts_.shutdown_grace.count());
    stopping_ = true;
    notifier_.stopping();
    wake_.cancel();
    if (watcher_) watcher_->close();
    // Requests still running after the grace period are abandoned.
    auto grace = std::make_shared<net::steady_timer>(ioc_, opts_.shutdown_grace);
    grace->async_wait([this, grace](const boost::system::error_code& ec) {
      if (!ec && !finished_) {
        log_->warn("abandoning requests still in flight");
        session_->client().stop();
      }
    });
  }

  net::awaitable<void> watch_loop() {
    while (!stopping_) {
      auto changes = co_await watcher_->next();
      if (stopping_) break;
      if (changes.overflow) full_reload_ = true;
      for (auto& p : changes.paths) changed_.insert(p.string());
      reload_at_ = Clock::now() + opts_.debounce;
      wake_.cancel();
    }
  }

  net::awaitable<void> watchdog_loop() {
    net::steady_timer t(ioc_);
    while (!finished_) {
      notifier_.watchdog();  // from the event loop itself: a stuck loop stops the pings
      t.expires_after(*notifier_.watchdog_interval());
      boost::system::error_code ec;
      co_await t.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  }

  // ---- the loop -------------------------------------------------------------------------

  net::awaitable<void> main_loop() {
    // Start: full list (retried until it works), reconcile, READY=1.
    while (!stopping_ && !co_await full_list()) {
      co_await sleep(std::chrono::seconds(5));
    }
    if (!stopping_) co_await reconcile();
    auto next_poll = Clock::now() + config_.sync.poll_interval;
    auto next_full = Clock::now() + config_.sync.full_resync_interval;
    if (!stopping_) {
      ready_ = true;
      notifier_.ready();
      update_status();
      log_->info("ready: desired={} observed={}", prepared_.bindings.size(), observed_.size());
    }

    while (!stopping_) {
      bool dirty = false;
      const auto now = Clock::now();
      if (reload_at_ && now >= *reload_at_) {
        reload_at_.reset();
        notifier_.reloading();
        const bool loaded = reload_desired();
        notifier_.reloaded();
        if (loaded && !affected_all_ && first_list_done_ && !stopping_) {
          // The devices of the changed files first: a one-file edit in a big fleet must not
          // wait for a plan over the whole fleet. The full pass below then settles metrics.
          co_await reconcile_devices(affected_);
        }
        dirty |= loaded;
      }
      if (stopping_) break;
      if (now >= next_full) {
        // A full resync always ends in a pass: it is the periodic proof of convergence.
        dirty |= co_await full_list();
        dirty |= last_list_ok_;
        next_full = Clock::now() + config_.sync.full_resync_interval;
        next_poll = Clock::now() + config_.sync.poll_interval;
      } else if (now >= next_poll) {
        dirty |= co_await poll();
        next_poll = Clock::now() + config_.sync.poll_interval;
      }
      if (stopping_) break;
      if (dirty || retry_pending_) co_await reconcile();

      auto deadline = std::min(next_poll, next_full);
      if (reload_at_) deadline = std::min(deadline, *reload_at_);
      if (deadline > Clock::now()) {
        wake_.expires_at(deadline);
        boost::system::error_code ec;
        co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
      }
    }
    co_await shutdown();
  }

  net::awaitable<void> sleep(Clock::duration d) {
    wake_.expires_after(d);
    boost::system::error_code ec;
    co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
  }

  net::awaitable<void> shutdown() {
    if (auto r = state_->checkpoint(); !r) log_->error("{}", r.error().message);
    finished_ = true;
    session_->client().stop();
    if (metrics_server_) metrics_server_->stop();
    signals_.cancel();
    wake_.cancel();
    log_->info("stopped; state saved to {}", config_.state_path.string());
    co_return;
  }

  // ---- observe --------------------------------------------------------------------------

  // Replaces the observed state with a full list. False (and nothing replaced) on failure.
  net::awaitable<bool> full_list() {
    auto list = co_await session_->bindings().list_all(session_->scope_query());
    if (!list) {
      set_error("full list failed: " + list.error().to_string());
      last_list_ok_ = false;
      co_return false;
    }
    bool changed = list->bindings.size() != observed_.size() || !first_list_done_;
    for (const auto& b : list->bindings) {
      watermark_ms_ = std::max(watermark_ms_, b.modified_at_ms);
      const auto* old = observed_.find(b.id);
      changed = changed || !old || old->modified_at_ms != b.modified_at_ms || old->device != b.device;
    }
    observed_.clear();
    for (auto& b : list->bindings) observed_.put(std::move(b));
    first_list_done_ = true;
    last_list_ok_ = true;
    metrics_.set_observed(observed_.size());
    state_->retain_only(observed_.ids());
    log_->debug("full list: {} bindings in {} pages", observed_.size(), list->pages);
    co_return changed;
  }

  // modifiedSince poll from the watermark minus the overlap. True when something changed.
  net::awaitable<bool> poll() {
    auto q = session_->scope_query();
    q.modified_since_ms = watermark_ms_ - config_.sync.modified_since_overlap.count();
    auto list = co_await session_->bindings().list_all(q);
    if (!list) {
      set_error("poll failed: " + list.error().to_string());
      co_return false;
    }
    bool changed = false;
    for (auto& b : list->bindings) {
      watermark_ms_ = std::max(watermark_ms_, b.modified_at_ms);
      const auto* old = observed_.find(b.id);
      if (old && old->modified_at_ms == b.modified_at_ms && old->device == b.device) {
        continue;  // seen already (the overlap re-reads recent changes)
      }
      if (old) {
        // Someone else changed this binding (our own writes are in observed_ with the
        // modifiedAt their answers gave): its password may not be ours any more, and the API
        // cannot tell us. Forget the fingerprint so that the desired password is put again.
        log_->warn("binding changed outside thingsync device={} id={}: re-applying its password",
                   b.device.canonical(), b.id);
        state_->forget(b.id);
      }
      changed = true;
      observed_.put(std::move(b));
    }
    if (changed) metrics_.set_observed(observed_.size());
    if (!changed && last_pass_ok_) metrics_.mark_converged(static_cast<double>(unix_ms()) / 1000.0);
    co_return changed;
  }

  // ---- desired --------------------------------------------------------------------------

  // Loads the desired state (only the changed files, unless a full reload is due); all or
  // nothing. True when a new state is in force; affected_ then says which devices changed
  // (empty with affected_all_: all of them).
  bool reload_desired() {
    const bool full = full_reload_ || !loaded_once_;
    full_reload_ = false;
    std::vector<std::filesystem::path> changed(changed_.begin(), changed_.end());
    changed_.clear();
    if (full && session_) session_->auth().reload();
    auto r = full ? loader_.load_all() : loader_.reload(changed);
    std::size_t warnings = 0;
    for (const auto& d : r.result.diagnostics) {
      if (d.severity == core::Severity::kError) {
        log_->error("{}", d.to_string());
      } else {
        ++warnings;
      }
    }
    PreparedDesired prepared;
    if (r.result.ok()) {
      prepared = (r.full || full || !loaded_once_)
                     ? prepare_desired(r.result.state, state_->salt(), config::process_env())
                     : prepare_desired_incremental(r.result.state, prepared_, r.affected,
                                                   state_->salt(), config::process_env());
    }
    if (!r.result.ok() || !prepared.ok()) {
      for (const auto& d : prepared.diagnostics) log_->error("{}", d.to_string());
      loader_.recycle(std::move(r.result.state));
      metrics_.desired_state_load_error();
      last_load_ok_ = false;
      set_error("desired state does not load; the last good one stays in force");
      return false;
    }
    std::swap(desired_, r.result.state);
    loader_.recycle(std::move(r.result.state));
    prepared_ = std::move(prepared);
    affected_all_ = r.full || full;
    affected_ = std::move(r.affected);
    loaded_once_ = true;
    last_load_ok_ = true;
    metrics_.set_desired(prepared_.bindings.size());
    const auto commit = sys::git_head_commit(config_.desired_state_path);
    metrics_.set_desired_commit(commit.value_or(""));
    log_->info("desired state loaded: {} bindings in {} files ({} files parsed{}){}{}{}",
               desired_.bindings.size(), desired_.files.size(), r.files_parsed,
               affected_all_ ? "" : ", " + std::to_string(affected_.size()) + " devices affected",
               warnings ? ", " + std::to_string(warnings) + " warnings" : "",
               commit ? " commit=" : "", commit.value_or(""));
    return true;
  }

  // ---- reconcile ------------------------------------------------------------------------

  net::awaitable<void> reconcile() {
    const auto start = Clock::now();
    const auto plan = core::make_plan(prepared_.bindings, observed_.all(), state_->applied(),
                                      {config_.sync.prune, config_.sync.max_deletes});
    std::size_t blocked_guard = 0;
    for (const auto& b : plan.blocked) blocked_guard += b.reason == core::BlockReason::kMaxDeletes;
    metrics_.set_drift(plan.creates.size(), plan.updates.size(),
                       plan.deletes.size() + plan.blocked.size());
    metrics_.set_deletes_blocked(plan.blocked.size());
    drift_ = plan.creates.size() + plan.updates.size() + plan.deletes.size();
    if (plan.guard_blocked()) {
      log_->warn("delete guard: {} deletes blocked (maxDeletes allows {}); creates and updates go on",
                 blocked_guard, plan.delete_limit);
    }
    bool ok = true;
    retry_pending_ = false;
    if (plan.empty()) {
      log_->debug("in sync: {}", plan_summary(plan));
    } else if (observe_only_) {
      log_->info("drift (observe mode, nothing written): {}", plan_summary(plan));
    } else {
      log_->info("reconciling: {}", plan_summary(plan));
      auto report = co_await execute(plan);
      metrics_.set_observed(observed_.size());
      ok = report.failed == 0 && report.state_error.empty();
      drift_ = report.failed;
      // What is left after the pass: failed operations and blocked deletes.
      std::size_t failed[3] = {0, 0, 0};
      for (const auto& f : report.failures) ++failed[static_cast<int>(f.action)];
      metrics_.set_drift(failed[0], failed[1], failed[2] + plan.blocked.size());
      // Transient failures are retried at the next poll; permanent ones wait out their backoff.
      retry_pending_ = has_transient(report);
      if (!ok) {
        set_error(std::to_string(report.failed) + " operations failed");
      }
      log_->info("reconciled: {} created, {} updated, {} deleted, {} failed", report.created,
                 report.updated, report.deleted, report.failed);
      if (state_->journal_records() > std::max<std::size_t>(50'000, state_->size() / 2)) {
        if (auto r = state_->checkpoint(); !r) log_->error("{}", r.error().message);
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    metrics_.reconcile_finished(secs, ok, static_cast<double>(unix_ms()) / 1000.0);
    last_pass_ok_ = ok;
    if (ok) last_error_.clear();
    update_status();
  }

  net::awaitable<ExecReport> execute(const core::Plan& plan) {
    ExecOptions eo;
    eo.concurrency = config_.sync.concurrency;
    eo.metrics = &metrics_;
    eo.stop = &stopping_;
    auto report = co_await execute_plan(plan, desired_, prepared_, *state_, session_->bindings(),
                                        std::move(eo));
    // Our own writes, with the modifiedAt their answers gave, so that the next poll does not
    // take them for someone else's.
    for (auto& b : report.written_bindings) {
      watermark_ms_ = std::max(watermark_ms_, b.modified_at_ms);
      observed_.put(std::move(b));
    }
    for (const auto& id : report.deleted_ids) observed_.erase(id);
    co_return report;
  }

  // A pass over some devices only (those of the files a reload changed).
  net::awaitable<void> reconcile_devices(const std::vector<core::DeviceId>& devices) {
    std::vector<core::DesiredBinding> desired;
    std::vector<core::RemoteBinding> observed;
    std::vector<core::AppliedBinding> applied;
    for (const auto& d : devices) {
      const auto it = std::lower_bound(
          desired_.bindings.begin(), desired_.bindings.end(), d,
          [](const config::DesiredEntry& e, const core::DeviceId& x) { return e.device < x; });
      if (it != desired_.bindings.end() && it->device == d) {
        desired.push_back(prepared_.bindings[static_cast<std::size_t>(it - desired_.bindings.begin())]);
      }
      for (auto& b : observed_.of_device(d)) {
        if (auto a = state_->find(b.id)) applied.push_back(std::move(*a));
        observed.push_back(std::move(b));
      }
    }
    // The delete guard still counts against the whole fleet.
    core::SyncPolicy policy{config_.sync.prune,
                            {core::DeleteLimit::Kind::kCount,
                             static_cast<double>(config_.sync.max_deletes.resolve(observed_.size()))}};
    const auto plan = core::make_plan(desired, observed, applied, policy);
    if (plan.empty()) co_return;
    if (observe_only_) {
      log_->info("drift (observe mode, nothing written): {}", plan_summary(plan));
      co_return;
    }
    log_->info("reconciling changed devices: {}", plan_summary(plan));
    const auto report = co_await execute(plan);
    log_->info("reconciled changed devices: {} created, {} updated, {} deleted, {} failed",
               report.created, report.updated, report.deleted, report.failed);
  }

  static bool has_transient(const ExecReport& r) {
    for (const auto& f : r.failures) {
      if (!f.permanent) return true;
    }
    return false;
  }

  void set_error(std::string e) {
    log_->error("{}", e);
    last_error_ = std::move(e);
    update_status();
  }

  void update_status() {
    std::string s = "desired=" + std::to_string(prepared_.bindings.size()) +
                    " observed=" + std::to_string(observed_.size()) +
                    " drift=" + std::to_string(drift_);
    if (observe_only_) s += " mode=observe";
    if (!last_error_.empty()) s += " last error: " + last_error_;
    notifier_.status(s);
  }

  obs::HttpReply serve(const obs::HttpGet& g) {
    if (g.path == "/metrics") {
      return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.scrape()};
    }
    if (g.path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
    if (g.path == "/readyz") {
      if (ready_ && last_load_ok_) return {200, "text/plain; charset=utf-8", "ready\n"};
      return {503, "text/plain; charset=utf-8",
              !ready_ ? "not ready: first reconcile not finished\n"
                      : "not ready: the last desired-state load failed\n"};
    }
    return {404, "text/plain; charset=utf-8", "not found\n"};
  }

  const config::Config& config_;
  DaemonOptions opts_;
  bool observe_only_;
  net::io_context ioc_;
  obs::Metrics metrics_;
  sys::Notifier notifier_;
  net::steady_timer wake_;
  net::signal_set signals_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<obs::HttpServer> metrics_server_;
  std::unique_ptr<sys::TreeWatcher> watcher_;

  config::DesiredState desired_;
  PreparedDesired prepared_;
  config::DesiredStateLoader loader_;
  ObservedSet observed_;
  std::vector<core::DeviceId> affected_;
  bool affected_all_ = true;
  bool loaded_once_ = false;
  std::int64_t watermark_ms_ = 0;

  std::optional<Clock::time_point> reload_at_;
  std::unordered_set<std::string> changed_;
  bool full_reload_ = false;
  bool first_list_done_ = false;
  bool ready_ = false;
  bool last_load_ok_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  bool retry_pending_ = false;
  bool last_pass_ok_ = false;
  bool last_list_ok_ = false;
  std::size_t drift_ = 0;
  std::string last_error_;
  int exit_code_ = 0;
};

}  // namespace

int run_daemon(const config::Config& config, const DaemonOptions& options) {
  Daemon d(config, options);
  return d.run();
}

}  // namespace thingsync::engine
