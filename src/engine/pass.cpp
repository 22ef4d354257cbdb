#include "thingsync/engine/pass.hpp"

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {

PassPlan plan_pass(PassKind kind, bool fresh, std::span<const core::DesiredBinding> desired,
                   std::span<const core::RemoteBinding> observed,
                   std::span<const core::AppliedBinding> applied, const core::SyncPolicy& policy) {
  PassPlan out;
  out.kind = kind;
  out.fresh = fresh;
  if (kind == PassKind::kFull) {
    out.plan = core::make_plan(desired, observed, applied, policy);
    return out;
  }
  // Some devices only: a guard over a part of the fleet would count a part of its delete set,
  // so the deletes wait for the full pass.
  core::SyncPolicy unguarded = policy;
  unguarded.max_deletes = {core::DeleteLimit::Kind::kCount,
                           static_cast<double>(std::numeric_limits<std::uint32_t>::max())};
  out.plan = core::make_plan(desired, observed, applied, unguarded);
  out.deferred_deletes = out.plan.deletes.size();
  out.plan.deletes.clear();
  out.plan.delete_limit = 0;
  return out;
}

boost::asio::awaitable<core::Result<OneShotPlan, std::string>> observe_and_plan(
    api::Bindings& api, api::ListQuery scope, const PreparedDesired& prepared,
    const state::StateStore& state, core::SyncPolicy policy, DevicePredicate only) {
  using R = core::Result<OneShotPlan, std::string>;
  auto list = co_await api.list_all(std::move(scope));
  if (!list) {
    co_return R::failure("listing the remote bindings failed, so nothing was planned or changed: " +
                         list.error().to_string());
  }
  OneShotPlan o{std::move(list.value()), {}};
  if (!o.list.skipped.empty()) {
    obs::logger("reconcile")->warn(
        "{} remote bindings have a device ID thingsync cannot parse; they are left alone "
        "(first: id={})", o.list.skipped.size(), o.list.skipped.front());
  }
  if (!only) {
    o.pass = plan_pass(PassKind::kFull, true, prepared.bindings, o.list.bindings,
                       state.applied(), policy);
    co_return o;
  }
  std::vector<core::DesiredBinding> desired;
  std::copy_if(prepared.bindings.begin(), prepared.bindings.end(), std::back_inserter(desired),
               [&](const core::DesiredBinding& b) { return only(b.device); });
  std::vector<core::RemoteBinding> observed;
  std::copy_if(o.list.bindings.begin(), o.list.bindings.end(), std::back_inserter(observed),
               [&](const core::RemoteBinding& b) { return only(b.device); });
  // The records of those devices, and of their bindings under whatever device they name.
  std::unordered_set<std::string_view> ids;
  for (const auto& b : observed) ids.insert(b.id);
  std::vector<core::AppliedBinding> applied;
  const auto all_applied = state.applied();
  std::copy_if(all_applied.begin(), all_applied.end(), std::back_inserter(applied),
               [&](const core::AppliedBinding& a) {
                 return only(a.device) || ids.contains(a.binding_id);
               });
  o.whole = plan_pass(PassKind::kFull, true, prepared.bindings, o.list.bindings,
                      all_applied, policy);
  policy.managed = o.list.bindings.size();
  o.pass = plan_pass(PassKind::kFull, true, desired, observed, applied, policy);
  co_return o;
}

DeleteOutcome apply_delete_rules(PassPlan& pass, state::StateStore& state,
                                 const DeleteRules& rules, std::int64_t now_ms) {
  DeleteOutcome out;
  core::DeleteTiming timing;
  timing.now_ms = now_ms;
  timing.delete_after_ms = rules.delete_after_ms;
  timing.full_list = pass.fresh;
  timing.next_window = rules.next_window;
  timing.in_pass = rules.in_pass;
  auto keep = core::hold_deletes(pass.plan, state.tombstones(), timing);
  state.set_tombstones(keep);
  out.blocked_hash = core::blocked_deletes_hash(pass.plan);
  if (out.blocked_hash.empty()) return out;
  for (const auto& a : rules.approvals) {
    if (a != out.blocked_hash) continue;
    if (state.approval_used(a)) {
      out.approval_refused = "the approval " + a + " was used already: an approval lets one "
                             "delete set through once";
      return out;
    }
    core::approve_blocked_deletes(pass.plan, a);
    state.use_approval(a, now_ms);
    out.approved = a;
    out.blocked_hash.clear();
    return out;
  }
  if (!rules.approvals.empty()) {
    out.approval_refused = "no approval given matches the blocked set, whose hash is " +
                           out.blocked_hash + " (one binding more or less changes it)";
  }
  return out;
}

std::vector<core::DeviceId> settle_after_list(state::StateStore& state, const api::ListResult& list,
                                              const PreparedDesired& desired) {
  std::vector<std::string> live;
  live.reserve(list.bindings.size());
  std::unordered_set<std::string> seen;
  for (const auto& b : list.bindings) {
    live.push_back(b.id);
    seen.insert(b.device.canonical());
  }
  std::unordered_set<std::string> wanted;
  wanted.reserve(desired.bindings.size());
  for (const auto& b : desired.bindings) wanted.insert(b.device.canonical());
  return settle_after_full_list(
      state, live, [&](const core::DeviceId& d) { return seen.contains(d.canonical()); },
      [&](const core::DeviceId& d) { return wanted.contains(d.canonical()); });
}

bool needs_execution(const PassPlan& pass) {
  if (!pass.plan.empty() || !pass.plan.receipts.empty()) return true;
  if (pass.fresh) return false;
  return std::any_of(pass.plan.blocked.begin(), pass.plan.blocked.end(),
                     [](const core::BlockedDelete& b) { return !b.del.kept_id.empty(); });
}

std::vector<core::DeviceId> settle_after_full_list(state::StateStore& state,
                                                   const std::vector<std::string>& live_ids,
                                                   const DevicePredicate& listed,
                                                   const DevicePredicate& desired) {
  state.retain_only(live_ids);
  std::vector<core::DeviceId> undesired;
  for (const auto& [canonical, rec] : state.failures()) {
    auto d = core::DeviceId::parse(canonical);
    if (d && !desired(*d)) undesired.push_back(std::move(*d));
  }
  for (const auto& d : undesired) state.clear_failure(d);
  auto unresolved = resolve_pending_creates(state, listed);
  std::erase_if(unresolved, [&](const core::DeviceId& d) {
    if (desired(d)) return false;
    state.end_create(d);  // a create that did land shows up as an undesired binding
    return true;
  });
  return unresolved;
}

boost::asio::awaitable<ExecReport> execute_pass(const PassPlan& pass,
                                                const config::DesiredState& desired,
                                                const PreparedDesired& prepared,
                                                state::StateStore& state, api::Bindings& api,
                                                ExecOptions options) {
  for (const auto& r : pass.plan.receipts) state.set_receipt(r.binding_id, r.modified_at_ms);
  options.look_first = !pass.fresh;
  co_return co_await execute_plan(pass.plan, desired, prepared, state, api, std::move(options));
}

}  // namespace thingsync::engine
