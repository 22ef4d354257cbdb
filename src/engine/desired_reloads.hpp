#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "desired_holder.hpp"
#include "health.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/obs/metrics.hpp"
#include "thingsync/sys/tree_watcher.hpp"

namespace thingsync::engine {

/// When the daemon reloads its desired state, and what it makes of a reload: the file watcher
/// (and a look at the root every poll, for lost events and swapped checkouts; a rescan every
/// poll once a watch could not be added), the debounce, a Git checkout in progress waited out,
/// and the logs, metrics and health a load reports. Not thread-safe (the event loop's).
class DesiredReloads {
 public:
  using Clock = std::chrono::steady_clock;
  struct Parts {
    const config::Config& config;
    DesiredHolder& desired;
    Health& health;
    obs::Metrics& metrics;
    std::function<void()> wake;          ///< a reload became due: wake the loop
    std::function<void()> reload_token;  ///< a full reload re-reads the token too
  };
  explicit DesiredReloads(Parts parts) : p_(std::move(parts)) {}

  /// Starts watching the desired-state path (throws what TreeWatcher throws).
  void watch(boost::asio::any_io_executor ex);
  /// Takes file events until `stopping`; each schedules a reload after `debounce`.
  boost::asio::awaitable<void> watch_loop(const bool& stopping, Clock::duration debounce);
  void close();

  /// SIGHUP: everything, now.
  void full_now();
  /// After each poll: the backstop for lost events (the root looked at again, or the tree
  /// rescanned when a watch failed).
  void after_poll(Clock::duration debounce);
  /// When the next reload is due, if one is.
  std::optional<Clock::time_point> due() const { return at_; }

  /// Reloads now. True when a new desired state is in force; affected() then says which
  /// devices changed (all(): all of them). A checkout in progress is retried a second later.
  /// With `serve`, the files are read and fingerprinted on another thread, and this one runs
  /// serve(done) meanwhile (the daemon serves its io_context: signals, the first full list),
  /// which must return soon after done() turns true and must not touch the desired state.
  bool reload(const std::function<void(const std::function<bool()>& done)>& serve = {});
  /// The last reload waited for a Git checkout in progress.
  bool deferred() const { return deferred_; }
  bool all() const { return all_; }
  const std::vector<core::DeviceId>& affected() const { return affected_; }

 private:
  void took_changes(const sys::TreeChanges& changes, Clock::duration delay);
  void watch_warnings(const std::vector<std::string>& warnings);
  void at(Clock::time_point t);

  Parts p_;
  std::unique_ptr<sys::TreeWatcher> watcher_;
  std::optional<Clock::time_point> at_;
  bool rescan_ = false;  // a watch failed: every poll rescans the tree
  bool loading_ = false;       // a load runs on another thread (reload with `serve`)
  bool full_pending_ = false;  // full_now() during it: want_full() once it ends
  bool deferred_ = false;
  std::optional<Clock::time_point> deferred_since_;  // since when reloads wait for a checkout
  bool deferred_reported_ = false;
  bool all_ = true;
  std::vector<core::DeviceId> affected_;
};

}  // namespace thingsync::engine
