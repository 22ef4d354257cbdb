#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "thingsync/api/bindings.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/core/plan.hpp"
#include "thingsync/engine/desired.hpp"
#include "thingsync/engine/executor.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/sys/zones.hpp"

namespace thingsync::engine {

/// One reconcile pass is: observe, plan, guard, execute, record. `plan`, `apply`, the
/// daemon's full pass and its device-scoped pass all run it through these functions, so they
/// share one idea of what was observed and what is allowed (docs/operations.md,
/// "Reconciliation").
enum class PassKind : std::uint8_t {
  kFull,     ///< the whole fleet: the only kind that deletes (its guard sees every delete)
  kDevices,  ///< some devices only (a desired-state edit): creates and updates, no deletes
};

struct PassPlan {
  core::Plan plan;
  PassKind kind = PassKind::kFull;
  /// The observation is a full list made for this pass: deletes need no further look.
  bool fresh = false;
  /// kDevices: deletes left to the full pass that follows, whose guard counts the whole
  /// fleet's delete set.
  std::size_t deferred_deletes = 0;
};

/// Whether executing the pass would do anything: writes, receipts to record, or (on an older
/// observation) kept bindings of blocked duplicates to look at.
bool needs_execution(const PassPlan& pass);

/// Plans a pass (pure). For kDevices the inputs hold the affected devices only.
PassPlan plan_pass(PassKind kind, bool fresh, std::span<const core::DesiredBinding> desired,
                   const core::ObservedList& observed, const core::AppliedList& applied,
                   const core::SyncPolicy& policy);
/// The same on unpacked inputs (a few devices' bindings).
PassPlan plan_pass(PassKind kind, bool fresh, std::span<const core::DesiredBinding> desired,
                   std::span<const core::RemoteBinding> observed,
                   std::span<const core::AppliedBinding> applied, const core::SyncPolicy& policy);

using DevicePredicate = std::function<bool(const core::DeviceId&)>;

/// The observation and plan of a one-shot pass (`plan`, `apply`): the full list in scope, all
/// or nothing, then the plan on it (fresh: a delete needs no further look). With `only` set
/// (`--target`), the plan covers those devices alone, deletes included, and a percentage
/// delete guard is of the whole list, as in a pass over the whole fleet.
struct OneShotPlan {
  /// The full list, packed as its pages arrived (no page is kept).
  core::ObservedList observed;
  std::vector<std::string> skipped;  ///< remote ids with an unparseable deviceId (left alone)
  PassPlan pass;
  /// With `only` (a --target pass): the plan of the whole fleet on the same list, for the
  /// delete guard, which weighs the whole fleet's delete set, not the targets' part of it.
  std::optional<PassPlan> whole;
};
boost::asio::awaitable<core::Result<OneShotPlan, std::string>> observe_and_plan(
    api::Bindings& api, api::ListQuery scope, const PreparedDesired& prepared,
    const state::StateStore& state, core::SyncPolicy policy, DevicePredicate only = {});

/// observe_and_plan() in its two halves, for a caller that loads the desired state while the
/// list runs: the list alone (`expected`: about how many bindings it holds, room made at once),
/// which needs no desired state ...
boost::asio::awaitable<core::Result<OneShotPlan, std::string>> list_for_plan(
    api::Bindings& api, api::ListQuery scope, std::size_t expected);
/// ... and the plan on that list (pure; `o.observed` as list_for_plan() left it).
void plan_listed(OneShotPlan& o, const PreparedDesired& prepared,
                 const state::StateStore& state, core::SyncPolicy policy,
                 const DevicePredicate& only = {});

/// The listed bindings of the devices `plan` touches (creates, updates, deletes, blocked and
/// waiting deletes) and of `also` (canonical device IDs), unpacked: what a saved plan and the
/// change journal record of the bindings a plan writes.
std::vector<core::RemoteBinding> listed_for(const core::ObservedList& list,
                                            const core::Plan& plan,
                                            std::span<const std::string> also = {});

/// settle_after_full_list() on a one-shot pass's list and desired state.
std::vector<core::DeviceId> settle_after_list(state::StateStore& state,
                                              const core::ObservedList& list,
                                              const PreparedDesired& desired);

/// After a complete list: drops state records of bindings the list does not hold, resolves the
/// pending creates whose device it shows, and forgets the failure backoff and pending creates
/// of devices no longer desired (their bindings, if any, are the delete rules' business).
/// Returns the pending creates of desired devices it does not show: each is looked up right
/// before its create (ExecOptions::unresolved_pending).
std::vector<core::DeviceId> settle_after_full_list(state::StateStore& state,
                                                   const core::BindingIdSet& live_ids,
                                                   const DevicePredicate& listed,
                                                   const DevicePredicate& desired);

/// The rules for deletes a pass that may delete (kFull) holds them to (docs/reference.md,
/// "Deletes"): the grace, the windows, and approvals of a blocked set.
struct DeleteRules {
  std::int64_t delete_after_ms = 0;  ///< sync.deleteAfter
  sys::NextWindow next_window;       ///< sync.deleteWindows; unset: any time
  /// Hashes an operator approved (apply --approve-deletes, sync.approvedDeletesFile).
  std::vector<std::string> approvals;
  DevicePredicate in_pass;  ///< the devices of a --target pass; unset: all
};
struct DeleteOutcome {
  std::string blocked_hash;      ///< of the set still blocked by the guard ("" when none)
  std::string approved;          ///< the approval this pass used ("" when none)
  std::string approval_refused;  ///< why an approval given did not let the set through
  /// A --target pass: the whole fleet's delete set the guard blocked (then the targets' too).
  std::size_t whole_fleet_blocked = 0;
};
/// Holds back the deletes that must wait (core::hold_deletes() on the state's tombstones, which
/// it then replaces), then lets a blocked set through when one of `rules.approvals` is its hash
/// and that approval was not used before (it is recorded as used).
DeleteOutcome apply_delete_rules(PassPlan& pass, state::StateStore& state,
                                 const DeleteRules& rules, std::int64_t now_ms);

/// Executes a planned pass: records the receipts the plan adopted, then runs the executor,
/// which looks again before each delete unless the pass is fresh.
boost::asio::awaitable<ExecReport> execute_pass(const PassPlan& pass,
                                                const config::DesiredState& desired,
                                                const PreparedDesired& prepared,
                                                state::StateStore& state, api::Bindings& api,
                                                ExecOptions options);

}  // namespace thingsync::engine
