#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "desired_holder.hpp"
#include "health.hpp"
#include "thingsync/api/bindings.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/engine/observer.hpp"
#include "thingsync/engine/pass.hpp"
#include "thingsync/obs/metrics.hpp"
#include "thingsync/state/state_store.hpp"

namespace thingsync::engine {

/// The daemon's passes, each one reconcile pass (pass.hpp) over what the daemon holds: the
/// desired state in force, the observed set, the state store. Not thread-safe.
class Reconciler {
 public:
  struct Parts {
    const config::Config& config;
    bool observe_only;
    DesiredHolder& desired;
    Observer& observer;
    state::StateStore& state;
    api::Bindings& api;
    obs::Metrics& metrics;
    Health& health;
    const bool& stopping;
    const bool& may_write;              ///< the state can be saved: writes may be sent
    std::function<void()> alive;        ///< progress, for the watchdog
    /// The wall clock of the executor (pending-create times, failure backoff); unset: the
    /// system clock. A simulation drives it.
    std::function<std::int64_t()> now_ms = {};
    /// How often a pass flushes its state records at least (ExecOptions::flush_interval).
    std::chrono::milliseconds flush_interval{1000};
  };
  explicit Reconciler(Parts parts) : p_(parts) {}

  /// After a complete list: state records of vanished bindings go, pending creates the list
  /// shows are resolved.
  void settle_after_full_list();
  /// A pass over the whole fleet, planned again (at most a few times) while it finds that the
  /// world moved under its plan (a kept binding gone).
  boost::asio::awaitable<void> full_pass();
  /// Creates and updates for some devices (a desired-state edit); deletes wait for the full
  /// pass, whose guard counts the whole fleet.
  boost::asio::awaitable<void> devices_pass(const std::vector<core::DeviceId>& devices);

  /// Transient failures are retried at the next poll.
  bool retry_pending() const { return retry_pending_; }
  bool last_pass_ok() const { return last_pass_ok_; }
  /// The last pass could not save the state (its writes stopped): check it before the next.
  bool state_failed() const { return state_failed_; }
  /// The state was saved since (a snapshot holds what the failed pass could not journal).
  void state_saved() { state_failed_ = false; }

 private:
  boost::asio::awaitable<bool> one_full_pass();  // true: plan again
  boost::asio::awaitable<ExecReport> execute(const PassPlan& pass,
                                             const config::DesiredState& desired,
                                             const PreparedDesired& prepared);
  core::SyncPolicy policy() const;

  Parts p_;
  bool retry_pending_ = false;
  bool last_pass_ok_ = false;
  bool state_failed_ = false;
};

}  // namespace thingsync::engine
