#include "thingsync/core/plan.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace thingsync::core {
namespace {

// make_plan sorts index arrays rather than the caller's bindings, and it must stay fast for a
// million of each. Comparing strings through an index costs two cache misses per comparison,
// so every index carries a Key: the first 24 bytes of its string, big-endian, and its length.
// Canonical IMEI and DevEUI IDs fit entirely; UUIDs almost always differ within 24 bytes. Only
// equal prefixes of longer strings fall back to the strings themselves. The order is exactly
// that of std::string::compare.
struct Key {
  std::uint64_t p0, p1, p2;
  std::uint32_t size;
  std::uint32_t idx;
};
constexpr std::size_t kKeyBytes = 24;

std::uint64_t load_be(const char* s, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    v = (v << 8) | (i < n ? static_cast<unsigned char>(s[i]) : 0u);
  }
  return v;
}

Key make_key(const std::string& s, std::size_t idx) {
  const std::size_t n = s.size();
  const char* d = s.data();
  return {load_be(d, n), load_be(d + std::min<std::size_t>(8, n), n > 8 ? n - 8 : 0),
          load_be(d + std::min<std::size_t>(16, n), n > 16 ? n - 16 : 0),
          static_cast<std::uint32_t>(std::min<std::size_t>(n, kKeyBytes + 1)),
          static_cast<std::uint32_t>(idx)};
}

// Three-way comparison of two strings given their keys; `sa`/`sb` give the strings and are
// only called when the keys cannot decide.
template <typename SA, typename SB>
int compare(const Key& a, const SA& sa, const Key& b, const SB& sb) {
  if (a.p0 != b.p0) return a.p0 < b.p0 ? -1 : 1;
  if (a.p1 != b.p1) return a.p1 < b.p1 ? -1 : 1;
  if (a.p2 != b.p2) return a.p2 < b.p2 ? -1 : 1;
  if (a.size <= kKeyBytes || b.size <= kKeyBytes) {  // one string ends within the key
    return a.size == b.size ? 0 : (a.size < b.size ? -1 : 1);
  }
  const int c = sa().compare(sb());
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

void prefetch(const void* p) { __builtin_prefetch(p); }

// Keys of items[i] for every i, sorted by `less`. The strings are read in item order; the
// prefetch hides the latency of the scattered heap blocks they live in.
template <typename T, typename StringOf, typename Less>
std::vector<Key> sorted_keys(std::span<const T> items, StringOf string_of, Less less) {
  constexpr std::size_t kAhead = 8;
  std::vector<Key> keys;
  keys.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i + kAhead < items.size()) prefetch(string_of(items[i + kAhead]).data());
    keys.push_back(make_key(string_of(items[i]), i));
  }
  std::sort(keys.begin(), keys.end(), less);
  return keys;
}

const std::string& device_of(const DesiredBinding& b) { return b.device.canonical(); }
const std::string& device_of(const RemoteBinding& b) { return b.device.canonical(); }
const std::string& device_of(const AppliedBinding& b) { return b.device.canonical(); }

bool by_device_then_id(const PlannedDelete& a, const PlannedDelete& b) {
  if (const int c = a.device.canonical().compare(b.device.canonical()); c != 0) return c < 0;
  return a.binding_id < b.binding_id;
}

// The sorted inputs of one make_plan call and the walk over them.
class Planner {
 public:
  Planner(std::span<const DesiredBinding> desired, std::span<const RemoteBinding> observed,
          std::span<const AppliedBinding> applied, const SyncPolicy& policy)
      : desired_(desired), observed_(observed), applied_(applied), policy_(policy) {}

  Plan run() {
    sort_inputs();
    plan_.delete_limit = policy_.max_deletes.resolve(policy_.managed.value_or(observed_.size()));
    walk();
    resolve_unmatched_state();
    apply_delete_limit();
    return std::move(plan_);
  }

 private:
  template <typename A, typename B>
  static int compare_devices(std::span<const A> as, const Key& a, std::span<const B> bs,
                             const Key& b) {
    return compare(
        a, [&]() -> const std::string& { return device_of(as[a.idx]); }, b,
        [&]() -> const std::string& { return device_of(bs[b.idx]); });
  }

  void sort_inputs() {
    const auto device = [](const auto& b) -> const std::string& { return device_of(b); };
    // Desired by device; ties (a duplicate the loader should have refused) by caller's index.
    dkeys_ = sorted_keys(desired_, device, [&](const Key& a, const Key& b) {
      const int c = compare_devices(desired_, a, desired_, b);
      return c != 0 ? c < 0 : desired_[a.idx].index < desired_[b.idx].index;
    });
    // Observed by device, then oldest first (ties by binding ID): the binding to keep of each
    // device comes first in its group.
    okeys_ = sorted_keys(observed_, device, [&](const Key& a, const Key& b) {
      if (const int c = compare_devices(observed_, a, observed_, b); c != 0) return c < 0;
      const RemoteBinding& x = observed_[a.idx];
      const RemoteBinding& y = observed_[b.idx];
      if (x.created_at_ms != y.created_at_ms) return x.created_at_ms < y.created_at_ms;
      return x.id < y.id;
    });
    // Applied by device too, so that the common case (state recorded for this device) is found
    // by the same walk; ties by binding ID and fingerprint keep the walk independent of input
    // order.
    akeys_ = sorted_keys(applied_, device, [&](const Key& a, const Key& b) {
      if (const int c = compare_devices(applied_, a, applied_, b); c != 0) return c < 0;
      const AppliedBinding& x = applied_[a.idx];
      const AppliedBinding& y = applied_[b.idx];
      if (x.binding_id != y.binding_id) return x.binding_id < y.binding_id;
      return x.password_fp < y.password_fp;
    });
  }

  // Warms the cache for the bindings the walk reaches a few steps from now: their structs
  // first, then (once those have arrived) the strings they point to.
  void prefetch_ahead(std::size_t i, std::size_t j, std::size_t k) const {
    constexpr std::size_t kFar = 8, kNear = 4;
    if (i + kFar < dkeys_.size()) prefetch(&desired_[dkeys_[i + kFar].idx]);
    if (i + kNear < dkeys_.size()) prefetch(device_of(desired_[dkeys_[i + kNear].idx]).data());
    if (j + kFar < okeys_.size()) prefetch(&observed_[okeys_[j + kFar].idx]);
    if (j + kNear < okeys_.size()) {
      const RemoteBinding& r = observed_[okeys_[j + kNear].idx];
      prefetch(r.id.data());
      prefetch(device_of(r).data());
    }
    if (k + kFar < akeys_.size()) prefetch(&applied_[akeys_[k + kFar].idx]);
    if (k + kNear < akeys_.size()) prefetch(applied_[akeys_[k + kNear].idx].binding_id.data());
  }

  // One merge over the three sorted lists. Every output list is appended to in device order;
  // within a device the duplicates are sorted by binding ID before they are appended.
  void walk() {
    std::size_t i = 0, j = 0, k = 0;
    while (i < dkeys_.size() || j < okeys_.size()) {
      prefetch_ahead(i, j, k);
      int c = 0;
      if (i == dkeys_.size()) {
        c = 1;
      } else if (j == okeys_.size()) {
        c = -1;
      } else {
        c = compare_devices(desired_, dkeys_[i], observed_, okeys_[j]);
      }
      if (c < 0) {
        const DesiredBinding& d = desired_[dkeys_[i].idx];
        plan_.creates.push_back({d.device, d.index});
        ++i;
        continue;
      }

      std::size_t end = j + 1;  // this device's remote bindings are okeys_[j, end)
      while (end < okeys_.size() &&
             compare_devices(observed_, okeys_[j], observed_, okeys_[end]) == 0) {
        ++end;
      }
      if (c > 0) {
        not_desired(j, end);
      } else {
        k = check_kept(dkeys_[i], okeys_[j], k);
        const std::string& kept_id = observed_[okeys_[j].idx].id;
        for (std::size_t x = j + 1; x < end; ++x) {
          const RemoteBinding& r = observed_[okeys_[x].idx];
          group_.push_back({r.device, r.id, DeleteReason::kDuplicate, kept_id});
        }
        flush_group(policy_.prune ? nullptr : &plan_.blocked);
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
      const RemoteBinding& r = observed_[okeys_[x].idx];
      group_.push_back({r.device, r.id, DeleteReason::kNotDesired, {}});
    }
    flush_group(nullptr);
  }

  // Decides update or unchanged for the binding kept for a desired device, given the state
  // entries from akeys_[k] on; returns the first state entry past this device.
  std::size_t check_kept(const Key& dkey, const Key& okey, std::size_t k) {
    const DesiredBinding& d = desired_[dkey.idx];
    const RemoteBinding& kept = observed_[okey.idx];
    const AppliedBinding* state = nullptr;
    for (; k < akeys_.size(); ++k) {
      const int c = compare_devices(applied_, akeys_[k], desired_, dkey);
      if (c > 0) break;
      const AppliedBinding& a = applied_[akeys_[k].idx];
      if (c == 0 && state == nullptr && a.binding_id == kept.id) {
        state = &a;
      } else {
        unmatched_state_.push_back(akeys_[k].idx);
      }
    }
    if (state == nullptr) {
      // Not recorded for this device; resolve_unmatched_state() looks for it under another.
      unresolved_.push_back(plan_.updates.size());
      plan_.updates.push_back({d.device, kept.id, UpdateReason::kNotRecorded, d.index, 0, {}});
    } else if (state->receipt_ms != 0 && kept.modified_at_ms != 0 &&
               state->receipt_ms != kept.modified_at_ms) {
      // Written since thingsync's last write: the password may not be ours any more, and the
      // API cannot tell (it is write-only).
      plan_.updates.push_back({d.device, kept.id, UpdateReason::kChangedOutside, d.index,
                               kept.modified_at_ms, kept.modified_by});
    } else if (state->password_fp != d.password_fp) {
      plan_.updates.push_back(
          {d.device, kept.id, UpdateReason::kPasswordChanged, d.index, 0, {}});
    } else {
      if (state->receipt_ms == 0 && kept.modified_at_ms != 0) plan_.receipts.push_back({kept.id, kept.modified_at_ms});
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
    auto by_id = [&](std::uint32_t a, std::uint32_t b) {
      return applied_[a].binding_id < applied_[b].binding_id;
    };
    std::sort(unmatched_state_.begin(), unmatched_state_.end(), by_id);
    for (const std::size_t u : unresolved_) {
      PlannedUpdate& update = plan_.updates[u];
      const auto it = std::lower_bound(
          unmatched_state_.begin(), unmatched_state_.end(), update.binding_id,
          [&](std::uint32_t a, const std::string& id) { return applied_[a].binding_id < id; });
      if (it != unmatched_state_.end() && applied_[*it].binding_id == update.binding_id) {
        update.reason = UpdateReason::kDeviceChanged;
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
  std::span<const RemoteBinding> observed_;
  std::span<const AppliedBinding> applied_;
  const SyncPolicy& policy_;
  std::vector<Key> dkeys_, okeys_, akeys_;
  std::vector<PlannedDelete> group_;
  std::vector<std::uint32_t> unmatched_state_;  ///< applied indices not matched by device
  std::vector<std::size_t> unresolved_;         ///< plan_.updates positions to look up by ID
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

Plan make_plan(std::span<const DesiredBinding> desired, std::span<const RemoteBinding> observed,
               std::span<const AppliedBinding> applied, const SyncPolicy& policy) {
  return Planner(desired, observed, applied, policy).run();
}

}  // namespace thingsync::core
