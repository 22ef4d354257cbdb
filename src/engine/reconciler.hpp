#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "desired_holder.hpp"
#include "health.hpp"
#include "thingsync/api/bindings.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/engine/change_journal.hpp"
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
  explicit Reconciler(Parts parts) : p_(parts), changes_({p_.config.journal_path}) {}

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
  /// thingsync_oldest_drift_age_seconds as of now (each turn of the loop).
  void refresh_drift_age();
  /// When the first waiting delete may go (its grace ends, or a delete window opens), in ms
  /// since the epoch: the daemon makes a full list and pass then.
  std::optional<std::int64_t> next_delete_due_ms() const { return next_delete_due_ms_; }

 private:
  boost::asio::awaitable<bool> one_full_pass();  // true: plan again
  boost::asio::awaitable<ExecReport> execute(const PassPlan& pass,
                                             const config::DesiredState& desired,
                                             const PreparedDesired& prepared);
  core::SyncPolicy policy() const;
  DeleteOutcome hold_deletes(PassPlan& pass);

  Parts p_;
  ChangeJournal changes_;  // every write, to state.journalPath and journald
  bool retry_pending_ = false;
  bool last_pass_ok_ = false;
  bool state_failed_ = false;
  std::string scope_error_;  // a create landed outside scope.clientId: no more creates
  double drift_since_ = 0;   // unix seconds: passes have ended with differences since then
  std::optional<sys::NextWindow> schedule_;         // sync.deleteWindows
  std::optional<std::int64_t> next_delete_due_ms_;  // of the last full pass's waiting deletes
  std::string last_refusal_;                        // of an approval, said once
};

}  // namespace thingsync::engine
