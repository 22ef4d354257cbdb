#include "thingsync/engine/daemon.hpp"

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <malloc.h>

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "desired_holder.hpp"
#include "health.hpp"
#include "lifecycle.hpp"
#include "reconciler.hpp"
#include "thingsync/engine/observer.hpp"
#include "thingsync/engine/session.hpp"
#include "thingsync/obs/http_server.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/obs/metrics.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/state/writer_lock.hpp"
#include "thingsync/sys/git.hpp"
#include "thingsync/sys/notify.hpp"
#include "thingsync/sys/tree_watcher.hpp"
#include "thingsync/version.hpp"

namespace thingsync::engine {
namespace net = boost::asio;
namespace {

using Clock = std::chrono::steady_clock;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The daemon idles for most of its life, so what it keeps resident between passes counts more
// than how fast a pass allocates. Two glibc defaults work against that (measured at 100,000
// bindings: 369 -> 329 B/binding of RSS):
//  - each thread that parses desired-state files gets its own arena, whose free top
//    malloc_trim() never shrinks. One arena for all threads keeps the parse's garbage where
//    malloc_trim() reaches it;
//  - the trim threshold grows to twice the largest block ever given back with munmap (a pass's
//    copies of the fleet). A fixed one keeps the heap trimmed.
void fix_malloc_thresholds() {
  if (::mallopt(M_ARENA_MAX, 1) == 0 || ::mallopt(M_TRIM_THRESHOLD, 1 << 20) == 0) {
    obs::logger("daemon")->warn("mallopt failed; memory use may be higher");
  }
}

// `thingsync run` (docs/operations.md): the triggers (timers, file events, signals) and the
// order of things; the passes are the Reconciler's, the observation the Observer's.
class Daemon {
 public:
  Daemon(const config::Config& config, const DaemonOptions& options)
      : config_(config),
        opts_(options),
        observe_only_(options.observe_only || config.sync.mode == config::SyncMode::kObserve),
        metrics_(kVersion),
        health_(notifier_, observe_only_),
        life_(ioc_, notifier_, options.shutdown_grace,
              {[this] { want_reload(); }, [this] { on_stop(); },
               [this] { session_->client().stop(); }}),
        stopping_(life_.stopping()),
        wake_(ioc_, Clock::time_point::max()),
        log_(obs::logger("daemon")) {}

  int run() {
    fix_malloc_thresholds();
    if (!open()) return 1;
    net::co_spawn(ioc_, main_loop(), life_.crash_handler("main loop"));
    net::co_spawn(ioc_, watch_loop(), life_.crash_handler("watcher"));
    life_.start();
    ioc_.run();
    return life_.exit_code();
  }

 private:
  bool open() {
    // One writer at a time: another run or apply on this state file stops this one at once.
    // A lock that cannot be taken for another reason (a missing directory) is retried, like a
    // state that cannot be saved; nothing is written meanwhile.
    if (!take_lock()) return false;
    auto st = state::StateStore::open(config_.state_path, state::StateStore::random_salt());
    if (!st) {
      log_->error("{}", st.error().message);
      return false;
    }
    state_ = std::move(st.value());
    if (auto owned = state_->claim(config_.api.base_url, config_.scope_client_id.value_or(""));
        !owned) {
      log_->error("{}", owned.error().message);
      return false;
    }
    auto session =
        Session::create(ioc_.get_executor(), config_, &metrics_, [this] { life_.alive(); });
    if (!session) {
      log_->error("{}", session.error());
      return false;
    }
    session_ = std::move(session.value());
    observer_.emplace(session_->bindings(), session_->scope_query(),
                      config_.sync.modified_since_overlap.count());
    desired_.emplace(config_.desired_state_path, state_->salt());
    reconciler_.emplace(Reconciler::Parts{config_, observe_only_, *desired_, *observer_, *state_,
                                          session_->bindings(), metrics_, health_, stopping_,
                                          may_write_, [this] { life_.alive(); }});
    // A Git checkout in progress at start is waited for (a minute at most).
    for (int waited = 0; !reload_desired(); ++waited) {
      if (!last_deferred_ || waited >= 60) {
        log_->error("the desired state does not load; not starting (fix it and restart){}",
                    last_deferred_ ? ": a Git checkout has been in progress for a minute; if no "
                                     "git is running, remove the stale lock file"
                                   : "");
        return false;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    try {
      metrics_server_ = std::make_unique<obs::HttpServer>(
          ioc_.get_executor(), config_.metrics_host, config_.metrics_port,
          [this](const obs::HttpGet& g) -> obs::HttpReply {
            if (g.path == "/metrics") {
              return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.scrape()};
            }
            return health_.serve(g);
          });
      metrics_server_->start();
      watcher_ = std::make_unique<sys::TreeWatcher>(ioc_.get_executor(), config_.desired_state_path);
      watch_warnings(watcher_->take_warnings());
    } catch (const std::exception& e) {
      log_->error("cannot start: {}", e.what());
      return false;
    }
    log_->info("started version={} mode={} metrics=http://{}:{} desired={} state={}", kVersion,
               observe_only_ ? "observe" : "reconcile", config_.metrics_host,
               metrics_server_->port(), config_.desired_state_path.string(),
               config_.state_path.string());
    return true;
  }

  // ---- triggers -------------------------------------------------------------------------

  void want_reload() {
    desired_->want_full();
    reload_at_ = Clock::now();
    wake_.cancel();
  }

  void on_stop() {
    wake_.cancel();
    if (watcher_) watcher_->close();
  }

  // ---- the state: one writer, saved before anything is sent -------------------------------

  // False only when another process holds the lock (the daemon does not start).
  bool take_lock() {
    auto lock = state::WriterLock::acquire(config_.state_path, "thingsync run");
    if (lock) {
      lock_ = std::move(lock.value());
      return true;
    }
    log_->error("{}", lock.error().message);
    return !lock.error().busy;
  }

  // Before a pass may write: the lock is held and the state can be saved (a snapshot proves
  // it, after a start or a failed save). Otherwise nothing is written, /readyz and STATUS say
  // why, and the next turn of the loop tries again.
  void check_state() {
    std::string problem;
    if (!lock_) {
      auto lock = state::WriterLock::acquire(config_.state_path, "thingsync run");
      if (lock) {
        lock_ = std::move(lock.value());
      } else {
        problem = lock.error().message;
      }
    }
    if (problem.empty() && (state_unsaved_ || reconciler_->state_failed())) {
      if (auto r = state_->checkpoint(); r) {
        state_unsaved_ = false;
        reconciler_->state_saved();
      } else {
        problem = r.error().message;
      }
    }
    may_write_ = problem.empty();
    health_.set_state_error(std::move(problem));
  }

  net::awaitable<void> watch_loop() {
    while (!stopping_) {
      auto changes = co_await watcher_->next();
      if (stopping_) break;
      took_changes(changes, opts_.debounce);
    }
  }

  // A watch that could not be added (max_user_watches reached, say) loses file events: it is
  // an error, counted, and from then on every poll rescans the tree for changes.
  void watch_warnings(const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) {
      log_->error("{}; rescanning the desired state every pollInterval instead", w);
      metrics_.desired_state_watch_error();
      rescan_ = true;
    }
  }

  // File events, or what a periodic look at the root found (a swapped symlink or a replaced
  // directory whose events were lost): a reload after `delay`.
  void took_changes(const sys::TreeChanges& changes, Clock::duration delay) {
    watch_warnings(changes.warnings);
    if (changes.full()) desired_->want_full();
    for (const auto& p : changes.paths) desired_->changed(p);
    if (changes.paths.empty() && !changes.full()) return;
    const auto at = Clock::now() + delay;
    if (!reload_at_ || at < *reload_at_) reload_at_ = at;
    wake_.cancel();
  }

  // ---- the loop -------------------------------------------------------------------------

  net::awaitable<void> main_loop() {
    // Start: full list (retried until it works), reconcile, READY=1.
    while (!stopping_ && !co_await full_list()) co_await sleep(std::chrono::seconds(5));
    check_state();
    if (!stopping_) co_await reconciler_->full_pass();
    auto next_poll = Clock::now() + config_.sync.poll_interval;
    auto next_full = Clock::now() + config_.sync.full_resync_interval;
    if (!stopping_) {
      notifier_.ready();  // started; /readyz tells whether it is also in sync and saving
      health_.set_ready();
      log_->info("ready: desired={} observed={}", desired_->size(), observer_->set().size());
    }
    while (!stopping_) {
      life_.alive();
      if (inject_crash_) {
        // A fault for the tests of the crash path (docs/reliability.md): an exception that
        // escapes the loop must end the process, not leave a zombie that pings the watchdog.
        throw std::runtime_error("injected crash (THINGSYNC_INJECT_CRASH=main_loop)");
      }
      bool dirty = false;
      const auto now = Clock::now();
      if (reload_at_ && now >= *reload_at_) {
        reload_at_.reset();
        notifier_.reloading();
        const bool loaded = reload_desired();
        notifier_.reloaded();
        if (loaded && !affected_all_ && !stopping_) {
          check_state();
          // The devices of the changed files first: a one-file edit in a big fleet must not
          // wait for a plan over the whole fleet. The full pass below then settles the rest.
          co_await reconciler_->devices_pass(affected_);
        }
        dirty |= loaded;
      }
      if (stopping_) break;
      if (now >= next_full) {
        // A full resync that succeeds always ends in a pass: it is the periodic proof of
        // convergence. One that fails changes nothing.
        dirty |= co_await full_list();
        next_full = Clock::now() + config_.sync.full_resync_interval;
        next_poll = Clock::now() + config_.sync.poll_interval;
      } else if (now >= next_poll) {
        dirty |= co_await poll();
        next_poll = Clock::now() + config_.sync.poll_interval;
        took_changes(watcher_->check_root(), opts_.debounce);  // a backstop for lost events
        if (rescan_) {
          desired_->changed(config_.desired_state_path);  // the loader compares sizes and times
          reload_at_ = std::min(reload_at_.value_or(Clock::time_point::max()), Clock::now());
        }
      }
      if (stopping_) break;
      check_state();
      if (dirty || (reconciler_->retry_pending() && may_write_)) co_await reconciler_->full_pass();

      auto deadline = std::min(next_poll, next_full);
      if (reload_at_) deadline = std::min(deadline, *reload_at_);
      // The watchdog is fed by the loop's turns: it turns at least once a ping interval.
      if (const auto ping = life_.watchdog_interval()) {
        deadline = std::min(deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(*ping));
      }
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
    const auto saved = state_->checkpoint();
    if (!saved) log_->error("{}", saved.error().message);
    life_.finished();
    session_->client().stop();
    if (metrics_server_) metrics_server_->stop();
    wake_.cancel();
    if (saved) {
      log_->info("stopped; state saved to {}", config_.state_path.string());
    } else {
      log_->info("stopped; the state could not be saved");
    }
    co_return;
  }

  // ---- observe --------------------------------------------------------------------------

  net::awaitable<bool> full_list() {
    const auto out = co_await observer_->full_list();
    if (!out.ok) {
      health_.set_error(out.error);
      co_return false;
    }
    metrics_.set_observed(observer_->set().size());
    reconciler_->settle_after_full_list();
    log_->debug("full list: {} bindings in {} pages", observer_->set().size(), out.pages);
    ::malloc_trim(0);
    co_return true;
  }

  net::awaitable<bool> poll() {
    const auto out = co_await observer_->poll();
    if (!out.ok) {
      health_.set_error(out.error);
      co_return false;
    }
    if (out.changed) metrics_.set_observed(observer_->set().size());
    if (!out.changed && reconciler_->last_pass_ok()) metrics_.mark_converged(unix_now());
    co_return out.changed;
  }

  // ---- desired --------------------------------------------------------------------------

  // True when a new desired state is in force; affected_ then says which devices changed
  // (empty with affected_all_: all of them).
  bool reload_desired() {
    if (desired_->full_wanted() && session_) session_->auth().reload();
    auto r = desired_->reload();
    last_deferred_ = !r.deferred.empty();
    if (last_deferred_) {
      // Not a failure at first: the last good state stays in force and the load is tried
      // again. A checkout that never ends (a lock left by a git that crashed) is one after a
      // minute: not ready, counted, and said at error level, once.
      const auto now = Clock::now();
      if (!deferred_since_) deferred_since_ = now;
      if (now - *deferred_since_ >= std::chrono::minutes(1) && !deferred_reported_) {
        deferred_reported_ = true;
        metrics_.desired_state_load_error();
        health_.set_load_ok(false);
        health_.set_error("desired state not loaded for a minute: " + r.deferred +
                          "; if no git is running, remove the stale lock file");
      } else {
        log_->info("desired state not loaded yet: {}; trying again in 1 s", r.deferred);
      }
      reload_at_ = now + std::chrono::seconds(1);
      return false;
    }
    deferred_since_.reset();
    deferred_reported_ = false;
    if (r.root_changed) {
      log_->info("the desired-state path {} now resolves to another tree: loaded it whole",
                 config_.desired_state_path.string());
    }
    for (const auto& d : r.errors) log_->error("{}", d.to_string());
    health_.set_load_ok(r.ok);
    if (!r.ok) {
      metrics_.desired_state_load_error();
      health_.set_error("desired state does not load; the last good one stays in force");
      return false;
    }
    affected_all_ = r.all;
    affected_ = std::move(r.affected);
    metrics_.set_desired(desired_->size());
    const auto& commit = r.commit;
    metrics_.set_desired_commit(commit.value_or(""));
    log_->info("desired state loaded: {} bindings in {} files ({} files parsed{}){}{}{}",
               desired_->size(), desired_->state().common.files.size(), r.files_parsed,
               affected_all_ ? "" : ", " + std::to_string(affected_.size()) + " devices affected",
               r.warnings ? ", " + std::to_string(r.warnings) + " warnings" : "",
               commit ? " commit=" : "", commit.value_or(""));
    return true;
  }

  const config::Config& config_;
  DaemonOptions opts_;
  bool observe_only_;
  net::io_context ioc_;
  obs::Metrics metrics_;
  sys::Notifier notifier_;
  Health health_;
  Lifecycle life_;
  const bool& stopping_;
  net::steady_timer wake_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<Session> session_;
  std::optional<Observer> observer_;
  std::optional<DesiredHolder> desired_;
  std::optional<Reconciler> reconciler_;
  std::unique_ptr<obs::HttpServer> metrics_server_;
  std::unique_ptr<sys::TreeWatcher> watcher_;

  std::vector<core::DeviceId> affected_;
  bool affected_all_ = true;
  std::optional<Clock::time_point> reload_at_;
  bool last_deferred_ = false;  // the last reload waited for a Git checkout
  std::optional<Clock::time_point> deferred_since_;  // since when reloads wait for one
  bool deferred_reported_ = false;
  std::unique_ptr<state::WriterLock> lock_;
  bool state_unsaved_ = true;   // a snapshot must prove the state can be saved before writes
  bool may_write_ = false;
  bool rescan_ = false;         // a watch failed: every poll rescans the tree
  const bool inject_crash_ = [] {
    const char* v = std::getenv("THINGSYNC_INJECT_CRASH");
    return v != nullptr && std::string_view(v) == "main_loop";
  }();
};

}  // namespace

int run_daemon(const config::Config& config, const DaemonOptions& options) {
  Daemon d(config, options);
  return d.run();
}

}  // namespace thingsync::engine
