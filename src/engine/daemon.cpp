#include "thingsync/engine/daemon.hpp"

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <malloc.h>

#include <cstdlib>
#include <exception>
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
#include "desired_reloads.hpp"
#include "health.hpp"
#include "lifecycle.hpp"
#include "reconciler.hpp"
#include "state_gate.hpp"
#include "thingsync/engine/observer.hpp"
#include "thingsync/engine/session.hpp"
#include "thingsync/obs/http_server.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/obs/metrics.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/sys/notify.hpp"
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
// order of things. The passes are the Reconciler's, the observation the Observer's, the
// reloads DesiredReloads', the state's guard StateGate's, the process's life Lifecycle's.
class Daemon {
 public:
  Daemon(const config::Config& config, const DaemonOptions& options)
      : config_(config),
        opts_(options),
        observe_only_(options.observe_only || config.sync.mode == config::SyncMode::kObserve),
        metrics_(kVersion),
        health_(notifier_, observe_only_),
        life_(ioc_, notifier_, options.shutdown_grace,
              {[this] { reloads_->full_now(); }, [this] { on_stop(); },
               [this] {
                 session_->client().stop();
                 session_->auth().stop();
               }}),
        stopping_(life_.stopping()),
        gate_(config.state_path, health_),
        wake_(ioc_, Clock::time_point::max()),
        log_(obs::logger("daemon")) {}

  int run() {
    fix_malloc_thresholds();
    // Signals count from the start: a SIGTERM while the start waits (for a Git checkout, say)
    // stops it.
    life_.start();
    if (!open()) {
      end_first_list();
      if (!stopping_) return 1;
      log_->info("stopped before the start was done");
      return 0;
    }
    net::co_spawn(ioc_, main_loop(), life_.crash_handler("main loop"));
    net::co_spawn(ioc_, reloads_->watch_loop(stopping_, opts_.debounce),
                  life_.crash_handler("watcher"));
    ioc_.run();
    return life_.exit_code();
  }

 private:
  bool open() {
    // One writer at a time: another run or apply on this state file stops this one at once.
    if (!gate_.take_lock()) return false;
    auto st = state::StateStore::open(config_.state_path, state::StateStore::random_salt());
    if (!st) {
      log_->error("{}", st.error().message);
      return false;
    }
    state_ = std::move(st.value());
    start_.state_opened = Clock::now();
    if (auto owned = state_->claim(config_.api.base_url, config_.scope_client_id.value_or(""));
        !owned) {
      log_->error("{}", owned.error().message);
      return false;
    }
    const auto ping = life_.watchdog_interval();
    auto session = Session::create(
        ioc_.get_executor(), config_, &metrics_, [this] { life_.alive(); },
        ping ? std::chrono::duration_cast<std::chrono::milliseconds>(*ping)
             : std::chrono::milliseconds(0));
    if (!session) {
      log_->error("{}", session.error());
      return false;
    }
    session_ = std::move(session.value());
    observer_.emplace(session_->bindings(), session_->scope_query(),
                      config_.sync.modified_since_overlap.count());
    observer_->on_list_progress([this](std::size_t n) {
      life_.alive();
      health_.set_activity("listing: " + std::to_string(n) + " bindings so far");
    });
    desired_.emplace(config_.desired_state_path, state_->salt());
    reloads_.emplace(DesiredReloads::Parts{config_, *desired_, health_, metrics_,
                                           [this] { wake_.cancel(); },
                                           [this] { session_->auth().reload(); }});
    reconciler_.emplace(Reconciler::Parts{config_, observe_only_, *desired_, *observer_, *state_,
                                          session_->bindings(), metrics_, health_, stopping_,
                                          gate_.may_write(), [this] { life_.alive(); }});
    // The first load runs while the remote is listed for the first time: neither needs the
    // other, and together they are most of the time to READY. A Git checkout in progress at
    // start is waited for (a minute at most).
    start_first_list();
    for (int waited = 0; !reloads_->reload(waited == 0 ? serve_while_loading() : Serve());
         ++waited) {
      if (stopping_) return false;
      if (!reloads_->deferred() || waited >= 60) {
        log_->error("the desired state does not load; not starting (fix it and restart){}",
                    reloads_->deferred()
                        ? ": a Git checkout has been in progress for a minute; if no git is "
                          "running, remove the stale lock file"
                        : "");
        return false;
      }
      ioc_.run_for(std::chrono::seconds(1));  // a second, signals served
      if (stopping_) return false;
    }
    start_.desired_loaded = Clock::now();
    if (stopping_) return false;  // a stop during the load: not started

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
      reloads_->watch(ioc_.get_executor());
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

  void on_stop() {
    wake_.cancel();
    if (reloads_) reloads_->close();
    // Requests in flight run to their answer; nothing new is sent, no retry waits.
    if (session_) session_->client().drain();
  }

  // READY=1 once the first full pass ran with writes allowed (or in observe mode): a daemon
  // that cannot save its state has not started its work, and says why on /readyz and STATUS.
  void announce_ready() {
    if (announced_ || stopping_ || !(observe_only_ || gate_.may_write())) return;
    announced_ = true;
    notifier_.ready();  // started; /readyz tells whether it is also in sync and saving
    health_.set_ready();
    const auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    const auto now = Clock::now();
    // Where the start went: an operator sizing a machine, or facing a slow API, sees it here.
    log_->info("ready: desired={} observed={} after {:.2f} s (state file {:.2f} s; then side by "
               "side the first full list {:.2f} s and the desired state {:.2f} s; first pass "
               "{:.2f} s)",
               desired_->size(), observer_->set().size(), secs(now - start_.began),
               secs(start_.state_opened - start_.began), secs(start_.listed - start_.state_opened),
               secs(start_.desired_loaded - start_.state_opened), secs(now - start_.pass_began));
  }

  // A full pass; READY=1 after the first one that could write.
  net::awaitable<void> full_pass() {
    const bool could_write = observe_only_ || gate_.may_write();
    co_await reconciler_->full_pass();
    if (could_write) announce_ready();
  }

  // Before a pass may write: the lock is held and the state can be saved.
  void check_state() {
    if (gate_.check(*state_, reconciler_->state_failed())) reconciler_->state_saved();
  }

  // ---- the loop -------------------------------------------------------------------------

  net::awaitable<void> main_loop() {
    // Start: full list (retried until it works, unless open() made it), reconcile, READY=1.
    if (!first_list_done_) {  // still running, as open() left it
      boost::system::error_code ec;
      co_await first_list_wait_.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    if (first_listed_) {
      settle();  // the list's settling needs the desired state, loaded now
    } else {
      while (!stopping_ && !co_await full_list()) co_await sleep(std::chrono::seconds(5));
      start_.listed = Clock::now();
    }
    start_.pass_began = Clock::now();
    check_state();
    if (!stopping_) co_await full_pass();
    auto next_poll = Clock::now() + config_.sync.poll_interval;
    auto next_full = Clock::now() + config_.sync.full_resync_interval;
    while (!stopping_) {
      life_.alive();
      if (inject_crash_) {
        // A fault for the tests of the crash path (docs/operations.md, "Liveness"): an
        // exception that escapes the loop must end the process.
        throw std::runtime_error("injected crash (THINGSYNC_INJECT_CRASH=main_loop)");
      }
      bool dirty = false;
      const auto now = Clock::now();
      if (const auto due = reloads_->due(); due && now >= *due) {
        notifier_.reloading();
        const bool loaded = reloads_->reload();
        notifier_.reloaded();
        if (loaded && !reloads_->all() && !stopping_) {
          check_state();
          // The devices of the changed files first: a one-file edit in a big fleet must not
          // wait for a plan over the whole fleet. The full pass below then settles the rest.
          co_await reconciler_->devices_pass(reloads_->affected());
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
        reloads_->after_poll(opts_.debounce);
      }
      if (stopping_) break;
      check_state();
      if (dirty || (reconciler_->retry_pending() && gate_.may_write())) {
        co_await full_pass();
      } else if (!reconciler_->retry_pending()) {
        announce_ready();  // the state can be saved again and nothing was left undone
      }
      reconciler_->refresh_drift_age();
      if (const auto due = reconciler_->next_delete_due_ms()) {
        // A waiting delete may go then: its grace ends (a full list must confirm it) or a delete
        // window opens. A full list and pass at that time, not at the next resync.
        const auto wall_now = std::chrono::system_clock::now();
        const auto in = std::chrono::milliseconds(*due) -
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                            wall_now.time_since_epoch());
        // At least a second on: a list that fails must not be retried in a tight loop.
        next_full = std::min(next_full, Clock::now() + std::max(in, std::chrono::milliseconds(1000)));
      }
      co_await wait_until(std::min(next_poll, next_full));
    }
    co_await shutdown();
  }

  // Until `deadline`, a due reload or a wake-up, whichever is first; and at least once a
  // watchdog ping interval: the watchdog is fed by the loop's turns.
  net::awaitable<void> wait_until(Clock::time_point deadline) {
    if (const auto due = reloads_->due()) deadline = std::min(deadline, *due);
    if (const auto ping = life_.watchdog_interval()) {
      deadline =
          std::min(deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(*ping));
    }
    if (deadline <= Clock::now()) co_return;
    wake_.expires_at(deadline);
    boost::system::error_code ec;
    co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
  }

  net::awaitable<void> sleep(Clock::duration d) { co_await wait_until(Clock::now() + d); }

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
      log_->error("stopped; the state could not be saved");
      life_.failed();
    }
    co_return;
  }

  // ---- observe --------------------------------------------------------------------------

  net::awaitable<bool> full_list() {
    // Not `if (!co_await ...) co_return ...`: GCC 12 compiled that into a trap here (SIGILL).
    const bool listed = co_await list_only();
    if (listed) settle();
    co_return listed;
  }

  // A full list into the observed set, without the settling that needs the desired state.
  net::awaitable<bool> list_only() {
    const auto out = co_await observer_->full_list();
    health_.set_activity("");
    if (!out.ok) {
      if (!stopping_) health_.set_error(out.error);  // a stop cut it: no error
      co_return false;
    }
    metrics_.set_observed(observer_->set().size());
    log_->debug("full list: {} bindings in {} pages", observer_->set().size(), out.pages);
    co_return true;
  }

  // After a full list: the state's records settled against it and the desired state.
  void settle() {
    reconciler_->settle_after_full_list();
    ::malloc_trim(0);
  }

  // The first full list starts at once: it needs nothing of the desired state, which loads on
  // another thread meanwhile (serve_while_loading). main_loop() waits for its end.
  void start_first_list() {
    net::co_spawn(
        ioc_,
        [this]() -> net::awaitable<void> {
          first_listed_ = co_await list_only();
          start_.listed = Clock::now();
          first_list_done_ = true;
          first_list_wait_.cancel();
        },
        [this](const std::exception_ptr& e) {
          first_list_done_ = true;
          if (e) std::rethrow_exception(e);  // out of the io_context's run: a crash
        });
  }

  // A start that gives up: the first list, if it still runs, is cut and run to its end before
  // the parts it uses go.
  void end_first_list() {
    if (!session_ || first_list_done_) return;
    session_->client().stop();
    session_->auth().stop();
    if (ioc_.stopped()) ioc_.restart();
    while (!first_list_done_ && ioc_.run_one() > 0) {
    }
  }

  // While the first desired-state load runs on another thread: this thread serves the
  // io_context (signals, the first list), looking at the load every 10 ms.
  using Serve = std::function<void(const std::function<bool()>&)>;
  Serve serve_while_loading() {
    return [this](const std::function<bool()>& done) {
      while (!done()) {
        if (ioc_.stopped()) ioc_.restart();
        // Out of work (a stop ended the list and the grace): wait without spinning.
        if (ioc_.run_for(std::chrono::milliseconds(10)) == 0 && ioc_.stopped()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    };
  }

  net::awaitable<bool> poll() {
    const auto out = co_await observer_->poll();
    if (!out.ok) {
      if (!stopping_) health_.set_error(out.error);
      co_return false;
    }
    if (out.changed) metrics_.set_observed(observer_->set().size());
    if (!out.changed && reconciler_->last_pass_ok()) metrics_.mark_converged(unix_now());
    co_return out.changed;
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
  StateGate gate_;
  net::steady_timer wake_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<Session> session_;
  std::optional<Observer> observer_;
  std::optional<DesiredHolder> desired_;
  std::optional<DesiredReloads> reloads_;
  std::optional<Reconciler> reconciler_;
  std::unique_ptr<obs::HttpServer> metrics_server_;
  bool announced_ = false;  // READY=1 sent
  struct StartTimes {  // for the "ready" line
    Clock::time_point began = Clock::now();
    Clock::time_point state_opened, listed, desired_loaded, pass_began;
  } start_;
  bool first_listed_ = false;    // the first full list (started by open()) worked
  bool first_list_done_ = false;  // ... and has ended
  net::steady_timer first_list_wait_{ioc_, net::steady_timer::time_point::max()};
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
