#include "thingsync/engine/daemon.hpp"

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <malloc.h>

#include <algorithm>
#include <csignal>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/core/packed.hpp"
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

// The remote bindings as last seen. Compact, because the daemon holds them all the time: a
// record of 46 bytes (packed binding id, 6-byte times, packed device) and an open-addressing
// index of 4-byte slots (5-10 bytes a record): about 55 bytes a binding instead of ~500 as
// std::string-keyed maps.
// Bindings whose id is not a lower-case UUID or whose times do not fit 6 bytes (never seen
// from the API, but possible) are kept as they are.
class ObservedSet {
 public:
  std::size_t size() const { return table_.size() + odd_.size(); }

  void reserve(std::size_t n) { table_.reserve(n); }

  // Gives back what growing by doubling left unused.
  void shrink_to_fit() { table_.shrink_to_fit(); }

  // True when `b` is held with the same device and modifiedAt: nothing new.
  bool holds_same(const core::RemoteBinding& b) const {
    if (const auto id = packable(b)) {
      const Rec* r = table_.find(*id);
      return r != nullptr && r->modified_at.get() == b.modified_at_ms && r->device.holds(b.device);
    }
    const auto it = odd_.find(b.id);
    return it != odd_.end() && it->second.modified_at_ms == b.modified_at_ms &&
           it->second.device == b.device;
  }

  bool contains(const std::string& id) const {
    if (const auto p = core::pack_uuid(id); p && table_.find(*p) != nullptr) return true;
    return odd_.contains(id);
  }

  void put(const core::RemoteBinding& b) {
    const auto id = packable(b);
    if (!id) {
      erase(b.id);  // in the table until now, should its times have fitted before
      odd_.insert_or_assign(b.id, b);
      return;
    }
    if (!odd_.empty()) odd_.erase(b.id);
    const Rec rec{*id, core::PackedMillis(b.created_at_ms), core::PackedMillis(b.modified_at_ms),
                  core::PackedDevice(b.device)};
    auto [at, added] = table_.insert(rec);
    if (!added) *at = rec;
  }

  void erase(const std::string& id) {
    if (const auto p = core::pack_uuid(id)) table_.erase(*p);
    if (!odd_.empty()) odd_.erase(id);
  }

  // Everything, as the plan takes it (a transient copy: a full pass only).
  std::vector<core::RemoteBinding> all() const {
    std::vector<core::RemoteBinding> out;
    out.reserve(size());
    for (const auto& r : table_.records()) out.push_back(expand(r));
    for (const auto& [id, b] : odd_) out.push_back(b);
    return out;
  }

  // The bindings of some devices: one scan, a hash lookup per binding.
  std::vector<core::RemoteBinding> of_devices(const std::vector<core::DeviceId>& devices) const {
    std::vector<core::RemoteBinding> out;
    if (devices.empty()) return out;
    std::unordered_set<core::PackedDevice, core::PackedDeviceHash> wanted;
    wanted.reserve(devices.size());
    for (const auto& d : devices) wanted.emplace(d);
    for (const auto& r : table_.records()) {
      if (wanted.contains(r.device)) out.push_back(expand(r));
    }
    for (const auto& [id, b] : odd_) {
      if (wanted.contains(core::PackedDevice(b.device))) out.push_back(b);
    }
    return out;
  }

  std::vector<std::string> ids() const {
    std::vector<std::string> out;
    out.reserve(size());
    for (const auto& r : table_.records()) out.push_back(core::unpack_uuid(r.id));
    for (const auto& [id, b] : odd_) out.push_back(id);
    return out;
  }

 private:
  struct Rec {
    core::PackedUuid id;
    core::PackedMillis created_at;
    core::PackedMillis modified_at;
    core::PackedDevice device;
  };
  static_assert(sizeof(Rec) == 46);

  // The packed id of `b` when its record fits the table.
  static std::optional<core::PackedUuid> packable(const core::RemoteBinding& b) {
    if (!core::PackedMillis::fits(b.created_at_ms) || !core::PackedMillis::fits(b.modified_at_ms)) {
      return std::nullopt;
    }
    return core::pack_uuid(b.id);
  }

  static core::RemoteBinding expand(const Rec& r) {
    return {core::unpack_uuid(r.id), r.device.unpack(), r.created_at.get(), r.modified_at.get()};
  }

  core::PackedUuidTable<Rec> table_;
  std::unordered_map<std::string, core::RemoteBinding> odd_;
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
    fix_malloc_thresholds();
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
      log_->info("ready: desired={} observed={}", desired_.bindings.size(), observed_.size());
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

  // Replaces the observed state with a full list, page by page into a fresh set (only the
  // compact form is ever held). False (and nothing replaced) on failure.
  net::awaitable<bool> full_list() {
    const auto mark = watch_mark();
    ObservedSet fresh;
    fresh.reserve(observed_.size());
    bool changed = !first_list_done_;
    std::int64_t newest = watermark_ms_;
    auto pages = co_await session_->bindings().list_pages(
        session_->scope_query(), [&](const api::Page& page) {
          for (const auto& b : page.items) {
            newest = std::max(newest, b.modified_at_ms);
            changed = changed || !observed_.holds_same(b);
            fresh.put(b);
          }
        });
    if (!pages) {
      set_error("full list failed: " + pages.error().to_string());
      last_list_ok_ = false;
      co_return false;
    }
    changed = changed || fresh.size() != observed_.size();
    saw_modified(newest);
    fresh.shrink_to_fit();
    std::swap(observed_, fresh);
    fresh = ObservedSet{};
    first_list_done_ = true;
    last_list_ok_ = true;
    watched_through(mark);
    metrics_.set_observed(observed_.size());
    state_->retain_only(observed_.ids());
    resolve_pending();
    log_->debug("full list: {} bindings in {} pages", observed_.size(), *pages);
    release_memory();
    co_return changed;
  }

  // Creates journaled as pending (before their POST) that a crash or an unknown outcome left
  // open: those the full list shows happened and are resolved here; the others are looked up
  // by device right before their create (execute() hands them to the executor).
  void resolve_pending() {
    const auto pending = state_->pending();
    if (pending.empty()) return;
    std::vector<core::DeviceId> devices;
    devices.reserve(pending.size());
    for (const auto& p : pending) devices.push_back(p.device);
    std::unordered_set<std::string> seen;
    for (const auto& b : observed_.of_devices(devices)) seen.insert(b.device.canonical());
    const auto left = resolve_pending_creates(
        *state_, [&](const core::DeviceId& d) { return seen.contains(d.canonical()); });
    log_->info("pending creates of an earlier pass or run: {} seen in the list, {} to look up "
               "before their create", pending.size() - left.size(), left.size());
  }

  // modifiedSince poll. True when something changed. Nothing here is O(fleet): a poll that
  // brings nothing new costs one request and no plan, and the bindings it re-reads are
  // compared page by page, never collected. All or nothing, like a full list: what it found
  // changed is applied only once every page has come.
  net::awaitable<bool> poll() {
    const auto mark = watch_mark();
    auto q = session_->scope_query();
    q.modified_since_ms = modified_since();
    std::vector<core::RemoteBinding> found;
    std::int64_t newest = watermark_ms_;
    auto pages = co_await session_->bindings().list_pages(q, [&](const api::Page& page) {
      for (const auto& b : page.items) {
        newest = std::max(newest, b.modified_at_ms);
        // Seen already: the overlap re-reads recent changes, ours included.
        if (!observed_.holds_same(b)) found.push_back(b);
      }
    });
    if (!pages) {
      set_error("poll failed: " + pages.error().to_string());
      co_return false;
    }
    saw_modified(newest);
    for (const auto& b : found) {
      if (observed_.contains(b.id)) {
        // Someone else changed this binding (our own writes are in observed_ with the
        // modifiedAt their answers gave): its password may not be ours any more, and the API
        // cannot tell us. Forget the fingerprint so that the desired password is put again.
        log_->warn("binding changed outside thingsync device={} id={}: re-applying its password",
                   b.device.canonical(), b.id);
        state_->forget(b.id);
      }
      observed_.put(b);
    }
    const bool changed = !found.empty();
    watched_through(mark);
    if (changed) metrics_.set_observed(observed_.size());
    if (!changed && last_pass_ok_) metrics_.mark_converged(static_cast<double>(unix_ms()) / 1000.0);
    co_return changed;
  }

  // The modifiedSince of the next poll. A change can become visible to a list a little after
  // bindings with a newer modifiedAt (clocks of several servers, commit delays): so a poll
  // re-reads `overlap` before the newest modifiedAt seen (the watermark), as the original
  // rule says. But it need not go below a point up to which everything is known to be seen
  // (`closed_ms_`): once a poll or list that started `overlap` after the watermark was seen
  // has completed, every change stamped up to that watermark had become visible to it. So a
  // fleet where nothing changes costs one request a poll, and our own writes do not make
  // every poll re-read the last minute of changes (which, right after a fleet converged,
  // is all of it).
  std::int64_t modified_since() const {
    return std::max(closed_ms_, watermark_ms_ - config_.sync.modified_since_overlap.count());
  }

  struct WatchMark {
    Clock::time_point started;
    std::int64_t watermark_ms;
    Clock::time_point watermark_seen;
  };
  WatchMark watch_mark() const { return {Clock::now(), watermark_ms_, watermark_seen_}; }

  // A modifiedAt seen in a list or in the answer to our own write.
  void saw_modified(std::int64_t ms) {
    if (ms <= watermark_ms_) return;
    watermark_ms_ = ms;
    watermark_seen_ = Clock::now();
  }

  // A poll or full list that started at `mark` has completed.
  void watched_through(const WatchMark& mark) {
    if (mark.started >= mark.watermark_seen + config_.sync.modified_since_overlap) {
      closed_ms_ = std::max(closed_ms_, mark.watermark_ms);
    }
  }

  // Gives the memory of a pass's transient copies back to the system: the daemon idles for
  // most of its life, and its resident size is what a fleet's host budgets for.
  static void release_memory() { ::malloc_trim(0); }

  // The daemon idles for most of its life, so what it keeps resident between passes counts
  // more than how fast a pass allocates. Two glibc defaults work against that (measured at
  // 100,000 bindings: 369 -> 329 B/binding of RSS):
  //  - each thread that parses desired-state files gets its own arena, whose free top
  //    malloc_trim() never shrinks: 2-4 MB resident for nothing. One arena for all threads
  //    (set before any thread starts) keeps the parse's garbage where malloc_trim() reaches it;
  //  - the trim threshold grows to twice the largest block ever given back with munmap (a
  //    pass's copies of the fleet: megabytes). A fixed one (which also fixes the mmap
  //    threshold at its 128 KiB default, so large blocks go back to the system when freed)
  //    keeps the heap trimmed.
  static void fix_malloc_thresholds() {
    if (::mallopt(M_ARENA_MAX, 1) == 0 || ::mallopt(M_TRIM_THRESHOLD, 1 << 20) == 0) {
      obs::logger("daemon")->warn("mallopt failed; memory use may be higher");
    }
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
    auto r = full ? loader_.load_all_packed() : loader_.reload_packed(changed);
    std::size_t warnings = 0;
    for (const auto& d : r.diagnostics) {
      if (d.severity == core::Severity::kError) {
        log_->error("{}", d.to_string());
      } else {
        ++warnings;
      }
    }
    // The loader says what changed since its previous result, whether or not that one came
    // into force: the devices of loads that failed stay affected until a load succeeds.
    const bool all = r.full || full || unapplied_all_;
    if (!all && !unapplied_.empty()) {
      std::vector<core::DeviceId> merged;
      merged.reserve(r.affected.size() + unapplied_.size());
      std::set_union(r.affected.begin(), r.affected.end(), unapplied_.begin(), unapplied_.end(),
                     std::back_inserter(merged));
      r.affected = std::move(merged);
    }
    DesiredFingerprints prepared;
    if (r.ok()) {
      if (all) {
        prepared = fingerprint_desired(r.state, state_->salt(), config::process_env());
      } else {
        prepared = fingerprint_desired_incremental(r.state, desired_, fps_, r.affected,
                                                   state_->salt(), config::process_env());
      }
    }
    if (!r.ok() || !prepared.ok()) {
      for (const auto& d : prepared.diagnostics) log_->error("{}", d.to_string());
      unapplied_all_ = all;
      unapplied_ = all ? std::vector<core::DeviceId>{} : std::move(r.affected);
      metrics_.desired_state_load_error();
      last_load_ok_ = false;
      set_error("desired state does not load; the last good one stays in force");
      return false;
    }
    desired_ = std::move(r.state);
    fps_ = std::move(prepared.fps);
    unapplied_all_ = false;
    unapplied_.clear();
    affected_all_ = all;
    affected_ = std::move(r.affected);
    loaded_once_ = true;
    last_load_ok_ = true;
    metrics_.set_desired(desired_.bindings.size());
    const auto commit = sys::git_head_commit(config_.desired_state_path);
    metrics_.set_desired_commit(commit.value_or(""));
    log_->info("desired state loaded: {} bindings in {} files ({} files parsed{}){}{}{}",
               desired_.bindings.size(), desired_.common.files.size(), r.files_parsed,
               affected_all_ ? "" : ", " + std::to_string(affected_.size()) + " devices affected",
               warnings ? ", " + std::to_string(warnings) + " warnings" : "",
               commit ? " commit=" : "", commit.value_or(""));
    return true;
  }

  // ---- reconcile ------------------------------------------------------------------------

  // A pass over the whole fleet, then its copies' memory back to the system.
  net::awaitable<void> reconcile() {
    co_await full_pass();
    release_memory();
  }

  net::awaitable<void> full_pass() {
    const auto start = Clock::now();
    // The plan's inputs are copies made for this pass only; the daemon keeps compact forms.
    const config::DesiredState desired = desired_.unpack();
    const PreparedDesired prepared = with_fingerprints(desired, fps_);
    core::Plan plan;
    {
      const auto observed = observed_.all();
      plan = core::make_plan(prepared.bindings, observed, state_->applied(),
                             {config_.sync.prune, config_.sync.max_deletes});
    }
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
      auto report = co_await execute(plan, desired, prepared);
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

  net::awaitable<ExecReport> execute(const core::Plan& plan, const config::DesiredState& desired,
                                     const PreparedDesired& prepared) {
    ExecOptions eo;
    eo.concurrency = config_.sync.concurrency;
    eo.metrics = &metrics_;
    eo.stop = &stopping_;
    for (const auto& p : state_->pending()) eo.unresolved_pending.push_back(p.device);
    auto report = co_await execute_plan(plan, desired, prepared, *state_, session_->bindings(),
                                        std::move(eo));
    // Our own writes, with the modifiedAt their answers gave, so that the next poll does not
    // take them for someone else's.
    for (const auto& b : report.written_bindings) {
      saw_modified(b.modified_at_ms);
      observed_.put(b);
    }
    for (const auto& id : report.deleted_ids) observed_.erase(id);
    co_return report;
  }

  // A pass over some devices only (those of the files a reload changed): its inputs, and the
  // desired state the executor reads, hold those devices only, so that its cost does not
  // grow with the fleet (but for one scan of the observed set).
  net::awaitable<void> reconcile_devices(const std::vector<core::DeviceId>& devices) {
    config::DesiredState desired;
    desired.files = desired_.common.files;
    desired.sources = desired_.common.sources;
    PreparedDesired prepared;
    for (const auto& d : devices) {
      const core::PackedDevice packed(d);
      const std::size_t i = desired_.bindings.lower_bound(packed);
      if (i < desired_.bindings.size() && desired_.bindings.device(i) == packed) {
        prepared.bindings.push_back(
            {d, fps_[i], static_cast<std::uint32_t>(desired.bindings.size())});
        desired.bindings.push_back(desired_.bindings[i].unpack());
      }
    }
    auto observed = observed_.of_devices(devices);
    std::vector<core::AppliedBinding> applied;
    for (const auto& b : observed) {
      if (auto a = state_->find(b.id)) applied.push_back(std::move(*a));
    }
    // The delete guard still counts against the whole fleet.
    core::SyncPolicy policy{config_.sync.prune,
                            {core::DeleteLimit::Kind::kCount,
                             static_cast<double>(config_.sync.max_deletes.resolve(observed_.size()))}};
    const auto plan = core::make_plan(prepared.bindings, observed, applied, policy);
    if (plan.empty()) co_return;
    if (observe_only_) {
      log_->info("drift (observe mode, nothing written): {}", plan_summary(plan));
      co_return;
    }
    log_->info("reconciling changed devices: {}", plan_summary(plan));
    const auto report = co_await execute(plan, desired, prepared);
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
    std::string s = "desired=" + std::to_string(desired_.bindings.size()) +
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

  config::PackedDesiredState desired_;  // in force: packed, 36 B a binding, shared with loader_
  std::vector<core::Fingerprint> fps_;  // of desired_.bindings, in its order
  config::DesiredStateLoader loader_;
  ObservedSet observed_;
  std::vector<core::DeviceId> affected_;
  bool affected_all_ = true;
  std::vector<core::DeviceId> unapplied_;  // affected by loads that failed (reload_desired)
  bool unapplied_all_ = false;
  bool loaded_once_ = false;
  std::int64_t watermark_ms_ = 0;        // newest modifiedAt seen
  Clock::time_point watermark_seen_{};  // when it was first seen
  std::int64_t closed_ms_ = 0;          // every change stamped up to here seen (modified_since)

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
