#include "thingsync/engine/pass.hpp"

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {

PassPlan plan_pass(PassKind kind, bool fresh, std::span<const core::DesiredBinding> desired,
                   std::span<const core::RemoteBinding> observed,
                   std::span<const core::AppliedBinding> applied, const core::SyncPolicy& policy) {
  return plan_pass(kind, fresh, desired, core::ObservedList(observed), core::AppliedList(applied),
                   policy);
}

PassPlan plan_pass(PassKind kind, bool fresh, std::span<const core::DesiredBinding> desired,
                   const core::ObservedList& observed, const core::AppliedList& applied,
                   const core::SyncPolicy& policy) {
  PassPlan out;
  out.kind = kind;
  out.fresh = fresh;
  if (kind == PassKind::kFull) {
    out.plan = core::make_fleet_plan(desired, observed, applied, policy);
    return out;
  }
  // Some devices only: a guard over a part of the fleet would count a part of its delete set,
  // so the deletes wait for the full pass.
  core::SyncPolicy unguarded = policy;
  unguarded.max_deletes = {core::DeleteLimit::Kind::kCount,
                           static_cast<double>(std::numeric_limits<std::uint32_t>::max())};
  out.plan = core::make_fleet_plan(desired, observed, applied, unguarded);
  out.deferred_deletes = out.plan.deletes.size();
  out.plan.deletes.clear();
  out.plan.delete_limit = 0;
  return out;
}

namespace {

// The full list, packed page by page: a million bindings never exist as a whole-list DOM or a
// vector of full records.
boost::asio::awaitable<core::Result<api::ListSummary, api::ApiError>> list_packed(
    api::Bindings& api, api::ListQuery scope, OneShotPlan& o) {
  co_return co_await api.list_pages(std::move(scope), [&o](const api::Page& page) {
    for (const auto& b : page.items) o.observed.add(b);
    o.skipped.insert(o.skipped.end(), page.skipped.begin(), page.skipped.end());
  });
}

}  // namespace

boost::asio::awaitable<core::Result<OneShotPlan, std::string>> list_for_plan(
    api::Bindings& api, api::ListQuery scope, std::size_t expected) {
  using R = core::Result<OneShotPlan, std::string>;
  OneShotPlan o;
  // Room for about as many as expected at once, so that growing the list never holds two
  // copies of it.
  o.observed.reserve(expected + expected / 64);
  auto list = co_await list_packed(api, std::move(scope), o);
  if (!list) {
    co_return R::failure("listing the remote bindings failed, so nothing was planned or changed: " +
                         list.error().to_string());
  }
  o.observed.shrink_to_fit();
  if (!o.skipped.empty()) {
    obs::logger("reconcile")->warn(
        "{} remote bindings have a device ID thingsync cannot parse; they are left alone "
        "(first: id={})", o.skipped.size(), o.skipped.front());
  }
  co_return o;
}

void plan_listed(OneShotPlan& o, const PreparedDesired& prepared,
                 const state::StateStore& state, core::SyncPolicy policy,
                 const DevicePredicate& only) {
  const auto all_applied = state.applied_list();
  if (!only) {
    o.pass = plan_pass(PassKind::kFull, true, prepared.bindings, o.observed, all_applied, policy);
    return;
  }
  std::vector<core::DesiredBinding> desired;
  std::copy_if(prepared.bindings.begin(), prepared.bindings.end(), std::back_inserter(desired),
               [&](const core::DesiredBinding& b) { return only(b.device.unpack()); });
  std::vector<core::RemoteBinding> observed;
  for (std::size_t i = 0; i < o.observed.size(); ++i) {
    if (only(o.observed.device(i).unpack())) observed.push_back(o.observed.binding(i));
  }
  // The records of those devices, and of their bindings under whatever device they name.
  core::BindingIdSet ids;
  for (const auto& b : observed) ids.add(b.id);
  ids.seal();
  std::vector<core::AppliedBinding> applied;
  for (auto& a : state.applied()) {
    if (only(a.device) || ids.contains(a.binding_id)) applied.push_back(std::move(a));
  }
  o.whole = plan_pass(PassKind::kFull, true, prepared.bindings, o.observed, all_applied, policy);
  policy.managed = o.observed.size();
  o.pass = plan_pass(PassKind::kFull, true, desired, observed, applied, policy);
}

boost::asio::awaitable<core::Result<OneShotPlan, std::string>> observe_and_plan(
    api::Bindings& api, api::ListQuery scope, const PreparedDesired& prepared,
    const state::StateStore& state, core::SyncPolicy policy, DevicePredicate only) {
  auto o = co_await list_for_plan(api, std::move(scope), state.size());
  if (o) plan_listed(o.value(), prepared, state, policy, only);
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

std::vector<core::DeviceId> settle_after_list(state::StateStore& state,
                                              const core::ObservedList& list,
                                              const PreparedDesired& desired) {
  // Sorted packed devices: 18 bytes each, where sets of strings would take ~100.
  const auto sorted = [](std::vector<core::PackedDevice> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  std::vector<core::PackedDevice> seen;
  seen.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) seen.push_back(list.device(i));
  seen = sorted(std::move(seen));
  std::vector<core::PackedDevice> wanted;
  wanted.reserve(desired.bindings.size());
  for (const auto& b : desired.bindings) wanted.push_back(b.device);
  wanted = sorted(std::move(wanted));
  const auto in = [](const std::vector<core::PackedDevice>& v) {
    return [&v](const core::DeviceId& d) {
      return std::binary_search(v.begin(), v.end(), core::PackedDevice(d));
    };
  };
  return settle_after_full_list(state, list.id_set(), in(seen), in(wanted));
}

std::vector<core::RemoteBinding> listed_for(const core::ObservedList& list,
                                            const core::Plan& plan,
                                            std::span<const std::string> also) {
  std::unordered_set<core::PackedDevice, core::PackedDeviceHash> touched;
  for (const auto& c : plan.creates) touched.emplace(c.device);
  for (const auto& u : plan.updates) touched.emplace(u.device);
  for (const auto& d : plan.deletes) touched.emplace(d.device);
  for (const auto& b : plan.blocked) touched.emplace(b.del.device);
  for (const auto& w : plan.waiting) touched.emplace(w.del.device);
  for (const auto& a : also) {
    if (auto d = core::DeviceId::parse(a)) touched.emplace(*d);
  }
  std::vector<core::RemoteBinding> out;
  if (touched.empty()) return out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (touched.contains(list.device(i))) out.push_back(list.binding(i));
  }
  return out;
}

bool needs_execution(const PassPlan& pass) {
  if (!pass.plan.empty() || !pass.plan.receipts.empty()) return true;
  if (pass.fresh) return false;
  return std::any_of(pass.plan.blocked.begin(), pass.plan.blocked.end(),
                     [](const core::BlockedDelete& b) { return !b.del.kept_id.empty(); });
}

std::vector<core::DeviceId> settle_after_full_list(state::StateStore& state,
                                                   const core::BindingIdSet& live_ids,
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
