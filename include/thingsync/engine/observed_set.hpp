#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "thingsync/core/binding.hpp"
#include "thingsync/core/binding_lists.hpp"
#include "thingsync/core/packed.hpp"

namespace thingsync::engine {

/// The remote bindings as last seen, held by the daemon between passes. Compact: a record of
/// 46 bytes (packed binding id, 6-byte times, packed device) and an open-addressing index of
/// 4-byte slots (5-10 bytes a record): about 55 bytes a binding instead of ~500 as
/// std::string-keyed maps. modifiedBy is not kept (a pass reads it from a fresh list).
/// Bindings whose id is not a lower-case UUID or whose times do not fit 6 bytes (never seen
/// from the API, but possible) are kept as they are. Not thread-safe.
class ObservedSet {
 public:
  std::size_t size() const { return table_.size() + odd_.size(); }
  void reserve(std::size_t n) { table_.reserve(n); }
  /// Gives back what growing by doubling left unused.
  void shrink_to_fit() { table_.shrink_to_fit(); }

  /// True when `b` is held with the same device and modifiedAt: nothing new.
  bool holds_same(const core::RemoteBinding& b) const;
  bool contains(const std::string& id) const;
  std::optional<core::RemoteBinding> find(const std::string& id) const;
  void put(const core::RemoteBinding& b);
  void erase(const std::string& id);

  /// Everything, as the plan takes it: it borrows the set's records (no copy), so use it
  /// before the set changes again.
  core::ObservedList all() const;
  /// The bindings of some devices: one scan, a hash lookup per binding.
  std::vector<core::RemoteBinding> of_devices(const std::vector<core::DeviceId>& devices) const;
  core::BindingIdSet ids() const;

 private:
  using Rec = core::ObservedRecord;  // a plan's ObservedList borrows them
  static_assert(sizeof(Rec) == 46);

  static std::optional<core::PackedUuid> packable(const core::RemoteBinding& b);
  static core::RemoteBinding expand(const Rec& r);

  core::PackedUuidTable<Rec> table_;
  std::unordered_map<std::string, core::RemoteBinding> odd_;
};

}  // namespace thingsync::engine
