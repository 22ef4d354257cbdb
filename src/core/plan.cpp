#include "thingsync/core/plan.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace thingsync::core {
namespace {

int sign(std::strong_ordering c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

// make_plan sorts index arrays rather than its inputs, and it must stay fast for a million of
// each. Every index carries its device's order key (PackedDevice::order_key), so that most
// comparisons look at no record at all; only equal keys (the same device, or a rare shared
// prefix) compare the records.
struct Key {
  std::uint64_t device;
  std::uint32_t idx;
};

// Indices of `n` records by `less`, given each record's device.
template <typename DeviceOf, typename Less>
std::vector<Key> sorted_keys(std::size_t n, DeviceOf device_of, Less less) {
  std::vector<Key> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    keys.push_back({device_of(i).order_key(), static_cast<std::uint32_t>(i)});
  }
  if (!std::is_sorted(keys.begin(), keys.end(), less)) std::sort(keys.begin(), keys.end(), less);
  return keys;
}

bool by_device_then_id(const PlannedDelete& a, const PlannedDelete& b) {
  if (const int c = a.device.canonical().compare(b.device.canonical()); c != 0) return c < 0;
  return a.binding_id < b.binding_id;
}

// The sorted inputs of one make_plan call and the walk over them.
class Planner {
 public:
  Planner(std::span<const DesiredBinding> desired, const ObservedList& observed,
          const AppliedList& applied, const SyncPolicy& policy)
      : desired_(desired), observed_(observed), applied_(applied), policy_(policy) {}

  Plan run() {
    sort_inputs();
    plan_.delete_limit = policy_.max_deletes.resolve(policy_.managed.value_or(observed_.size()));
    // Room for as many as there can be, reserved and not touched: a large block is mapped as
    // it is written, so a converged fleet's plan costs no memory for it, and a first
    // adoption's million updates never hold two copies of the vector while it grows.
    plan_.creates.reserve(desired_.size());
    plan_.updates.reserve(std::min(desired_.size(), observed_.size()));
    walk();
    resolve_unmatched_state();
    apply_delete_limit();
    return std::move(plan_);
  }

 private:
  static int compare_devices(const Key& a, const PackedDevice& da, const Key& b,
                             const PackedDevice& db) {
    if (a.device != b.device) return a.device < b.device ? -1 : 1;
    return sign(canonical_order(da, db));
  }
  const PackedDevice& ddev(const Key& k) const { return desired_[k.idx].device; }
  const PackedDevice& odev(const Key& k) const { return observed_.device(k.idx); }
  const PackedDevice& adev(const Key& k) const { return applied_.device(k.idx); }
  int compare_observed_ids(std::uint32_t a, std::uint32_t b) const {
    return compare_ids(observed_.packed_id(a), observed_.texts(), observed_.packed_id(b),
                       observed_.texts());
  }
  int compare_applied_ids(std::uint32_t a, std::uint32_t b) const {
    return compare_ids(applied_.packed_id(a), applied_.texts(), applied_.packed_id(b),
                       applied_.texts());
  }

  void sort_inputs() {
    // Desired by device; ties (a duplicate the loader should have refused) by caller's index.
    dkeys_ = sorted_keys(
        desired_.size(), [&](std::size_t i) -> const PackedDevice& { return desired_[i].device; },
        [&](const Key& a, const Key& b) {
          const int c = compare_devices(a, ddev(a), b, ddev(b));
          return c != 0 ? c < 0 : desired_[a.idx].index < desired_[b.idx].index;
        });
    // Observed by device, then oldest first (ties by binding ID): the binding to keep of each
    // device comes first in its group.
    okeys_ = sorted_keys(
        observed_.size(), [&](std::size_t i) -> const PackedDevice& { return observed_.device(i); },
        [&](const Key& a, const Key& b) {
          if (const int c = compare_devices(a, odev(a), b, odev(b)); c != 0) return c < 0;
          const std::int64_t x = observed_.created_at_ms(a.idx);
          const std::int64_t y = observed_.created_at_ms(b.idx);
          if (x != y) return x < y;
          return compare_observed_ids(a.idx, b.idx) < 0;
        });
    // Applied by device too, so that the common case (state recorded for this device) is found
    // by the same walk; ties by binding ID and fingerprint keep the walk independent of input
    // order.
    akeys_ = sorted_keys(
        applied_.size(), [&](std::size_t i) -> const PackedDevice& { return applied_.device(i); },
        [&](const Key& a, const Key& b) {
          if (const int c = compare_devices(a, adev(a), b, adev(b)); c != 0) return c < 0;
          if (const int c = compare_applied_ids(a.idx, b.idx); c != 0) return c < 0;
          return applied_.password_fp(a.idx) < applied_.password_fp(b.idx);
        });
  }

  PlannedDelete planned_delete(std::uint32_t o, DeleteReason reason, std::string kept_id) const {
    return {observed_.device(o).unpack(), observed_.id(o), reason, std::move(kept_id)};
  }

  // One merge over the three sorted lists. Every output list is appended to in device order;
  // within a device the duplicates are sorted by binding ID before they are appended.
  void walk() {
    std::size_t i = 0, j = 0, k = 0;
    while (i < dkeys_.size() || j < okeys_.size()) {
      int c = 0;
      if (i == dkeys_.size()) {
        c = 1;
      } else if (j == okeys_.size()) {
        c = -1;
      } else {
        c = compare_devices(dkeys_[i], ddev(dkeys_[i]), okeys_[j], odev(okeys_[j]));
      }
      if (c < 0) {
        const DesiredBinding& d = desired_[dkeys_[i].idx];
        plan_.creates.push_back({d.device.unpack(), d.index});
        ++i;
        continue;
      }

      std::size_t end = j + 1;  // this device's remote bindings are okeys_[j, end)
      while (end < okeys_.size() &&
             compare_devices(okeys_[j], odev(okeys_[j]), okeys_[end], odev(okeys_[end])) == 0) {
        ++end;
      }
      if (c > 0) {
        not_desired(j, end);
      } else {
        k = check_kept(dkeys_[i], okeys_[j], k);
        if (end > j + 1) {
          const std::string kept_id = observed_.id(okeys_[j].idx);
          for (std::size_t x = j + 1; x < end; ++x) {
            group_.push_back(planned_delete(okeys_[x].idx, DeleteReason::kDuplicate, kept_id));
          }
          flush_group(policy_.prune ? nullptr : &plan_.blocked);
        }
        ++i;
      }
      j = end;
    }
    for (; k < akeys_.size(); ++k) unmatched_state_.push_back(akeys_[k].idx);
  }

  void not_desired(std::size_t j, std::size_t end) {
    if (!policy_.prune) {
      plan_.unmanaged += end - j;
      return;
    }
    for (std::size_t x = j; x < end; ++x) {
      group_.push_back(planned_delete(okeys_[x].idx, DeleteReason::kNotDesired, {}));
    }
    flush_group(nullptr);
  }

  // Decides update or unchanged for the binding kept for a desired device, given the state
  // entries from akeys_[k] on; returns the first state entry past this device.
  std::size_t check_kept(const Key& dkey, const Key& okey, std::size_t k) {
    const DesiredBinding& d = desired_[dkey.idx];
    const PackedBindingId kept_id = observed_.packed_id(okey.idx);
    const std::int64_t kept_modified_at = observed_.modified_at_ms(okey.idx);
    std::optional<std::uint32_t> state;  // the state entry of the kept binding
    for (; k < akeys_.size(); ++k) {
      const int c = compare_devices(akeys_[k], adev(akeys_[k]), dkey, d.device);
      if (c > 0) break;
      const std::uint32_t a = akeys_[k].idx;
      if (c == 0 && !state &&
          compare_ids(applied_.packed_id(a), applied_.texts(), kept_id, observed_.texts()) == 0) {
        state = a;
      } else {
        unmatched_state_.push_back(akeys_[k].idx);
      }
    }
    const auto update = [&](UpdateReason why, std::int64_t at, std::string by) {
      plan_.updates.push_back({d.device.unpack(), observed_.id(okey.idx), why, d.index, at,
                               std::move(by)});
    };
    if (!state) {
      // Not recorded for this device; resolve_unmatched_state() looks for it under another.
      unresolved_.push_back({plan_.updates.size(), okey.idx});
      update(UpdateReason::kNotRecorded, 0, {});
    } else if (const std::int64_t receipt = applied_.receipt_ms(*state);
               receipt != 0 && kept_modified_at != 0 && receipt != kept_modified_at) {
      // Written since thingsync's last write: the password may not be ours any more, and the
      // API cannot tell (it is write-only).
      update(UpdateReason::kChangedOutside, kept_modified_at,
             std::string(observed_.modified_by(okey.idx)));
    } else if (applied_.password_fp(*state) != d.password_fp) {
      update(UpdateReason::kPasswordChanged, 0, {});
    } else {
      if (applied_.receipt_ms(*state) == 0 && kept_modified_at != 0) {
        plan_.receipts.push_back({observed_.id(okey.idx), kept_modified_at});
      }
      ++plan_.unchanged;
    }
    return k;
  }

  // Moves the deletes of one device into the plan: to `blocked` (prune is off) or `deletes`.
  void flush_group(std::vector<BlockedDelete>* blocked) {
    std::sort(group_.begin(), group_.end(), by_device_then_id);
    for (auto& del : group_) {
      if (blocked != nullptr) {
        blocked->push_back({std::move(del), BlockReason::kPruneDisabled});
      } else {
        plan_.deletes.push_back(std::move(del));
      }
    }
    group_.clear();
  }

  // A kept binding without state for its device may have state recorded for another device.
  void resolve_unmatched_state() {
    if (unresolved_.empty() || unmatched_state_.empty()) return;
    auto by_id = [&](std::uint32_t a, std::uint32_t b) { return compare_applied_ids(a, b) < 0; };
    std::sort(unmatched_state_.begin(), unmatched_state_.end(), by_id);
    for (const auto& [u, o] : unresolved_) {
      const PackedBindingId id = observed_.packed_id(o);
      const auto it = std::lower_bound(
          unmatched_state_.begin(), unmatched_state_.end(), o, [&](std::uint32_t a, std::uint32_t) {
            return compare_ids(applied_.packed_id(a), applied_.texts(), id, observed_.texts()) < 0;
          });
      if (it != unmatched_state_.end() &&
          compare_ids(applied_.packed_id(*it), applied_.texts(), id, observed_.texts()) == 0) {
        plan_.updates[u].reason = UpdateReason::kDeviceChanged;
      }
    }
  }

  void apply_delete_limit() {
    if (plan_.deletes.size() <= plan_.delete_limit) return;
    const bool merge = !plan_.blocked.empty();
    plan_.blocked.reserve(plan_.blocked.size() + plan_.deletes.size());
    for (auto& d : plan_.deletes) plan_.blocked.push_back({std::move(d), BlockReason::kMaxDeletes});
    plan_.deletes.clear();
    if (merge) {
      std::sort(plan_.blocked.begin(), plan_.blocked.end(),
                [](const BlockedDelete& a, const BlockedDelete& b) {
                  return by_device_then_id(a.del, b.del);
                });
    }
  }

  std::span<const DesiredBinding> desired_;
  const ObservedList& observed_;
  const AppliedList& applied_;
  const SyncPolicy& policy_;
  std::vector<Key> dkeys_, okeys_, akeys_;
  std::vector<PlannedDelete> group_;
  std::vector<std::uint32_t> unmatched_state_;  ///< applied indices not matched by device
  /// plan_.updates positions to look up by ID, with the observed binding of each.
  std::vector<std::pair<std::size_t, std::uint32_t>> unresolved_;
  Plan plan_;
};

}  // namespace

std::size_t DeleteLimit::resolve(std::size_t managed) const {
  if (!(value > 0)) return 0;  // also NaN
  double limit = kind == Kind::kCount ? value : value * static_cast<double>(managed) / 100.0;
  // 1e-9 absorbs the rounding of value/100 (e.g. 7% of 100 computing as 6.9999…).
  limit = std::floor(limit + 1e-9);
  if (limit >= static_cast<double>(std::numeric_limits<std::size_t>::max())) {
    return std::numeric_limits<std::size_t>::max();
  }
  return static_cast<std::size_t>(limit);
}

std::optional<DeleteLimit> parse_delete_limit(std::string_view s) {
  const bool percent = !s.empty() && s.back() == '%';
  if (percent) s.remove_suffix(1);
  if (s.empty() || s.size() > 20) return std::nullopt;
  double x = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (ec != std::errc() || end != s.data() + s.size() || !(x >= 0)) return std::nullopt;
  if (percent) {
    if (x > 100) return std::nullopt;
    return DeleteLimit{DeleteLimit::Kind::kPercent, x};
  }
  if (x != std::floor(x) || x > 1e12) return std::nullopt;
  return DeleteLimit{DeleteLimit::Kind::kCount, x};
}

std::string to_string(const DeleteLimit& limit) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, limit.value);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (limit.kind == DeleteLimit::Kind::kPercent) s += '%';
  return s;
}

std::string_view to_string(UpdateReason r) {
  switch (r) {
    case UpdateReason::kPasswordChanged: return "password changed";
    case UpdateReason::kNotRecorded: return "not recorded in state (first adoption)";
    case UpdateReason::kDeviceChanged: return "device changed";
    case UpdateReason::kChangedOutside: return "changed outside thingsync";
  }
  return "unknown";
}

std::string_view to_string(DeleteReason r) {
  switch (r) {
    case DeleteReason::kNotDesired: return "not desired";
    case DeleteReason::kDuplicate: return "duplicate binding";
  }
  return "unknown";
}

std::string_view to_string(BlockReason r) {
  switch (r) {
    case BlockReason::kMaxDeletes: return "exceeds maxDeletes";
    case BlockReason::kPruneDisabled: return "prune is off";
  }
  return "unknown";
}

bool Plan::guard_blocked() const {
  return std::any_of(blocked.begin(), blocked.end(),
                     [](const BlockedDelete& b) { return b.reason == BlockReason::kMaxDeletes; });
}

Plan make_fleet_plan(std::span<const DesiredBinding> desired, const ObservedList& observed,
               const AppliedList& applied, const SyncPolicy& policy) {
  return Planner(desired, observed, applied, policy).run();
}

Plan make_plan(std::span<const DesiredBinding> desired, std::span<const RemoteBinding> observed,
               std::span<const AppliedBinding> applied, const SyncPolicy& policy) {
  return make_fleet_plan(desired, ObservedList(observed), AppliedList(applied), policy);
}

}  // namespace thingsync::core
