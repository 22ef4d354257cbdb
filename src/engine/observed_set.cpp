#include "thingsync/engine/observed_set.hpp"

#include <unordered_set>

namespace thingsync::engine {

bool ObservedSet::holds_same(const core::RemoteBinding& b) const {
  if (const auto id = packable(b)) {
    const Rec* r = table_.find(*id);
    return r != nullptr && r->modified_at.get() == b.modified_at_ms && r->device.holds(b.device);
  }
  const auto it = odd_.find(b.id);
  return it != odd_.end() && it->second.modified_at_ms == b.modified_at_ms &&
         it->second.device == b.device;
}

bool ObservedSet::contains(const std::string& id) const {
  if (const auto p = core::pack_uuid(id); p && table_.find(*p) != nullptr) return true;
  return odd_.contains(id);
}

std::optional<core::RemoteBinding> ObservedSet::find(const std::string& id) const {
  if (const auto p = core::pack_uuid(id)) {
    if (const Rec* r = table_.find(*p)) return expand(*r);
  }
  const auto it = odd_.find(id);
  if (it == odd_.end()) return std::nullopt;
  return it->second;
}

void ObservedSet::put(const core::RemoteBinding& b) {
  const auto id = packable(b);
  if (!id) {
    erase(b.id);  // in the table until now, should its times have fitted before
    core::RemoteBinding kept = b;
    kept.modified_by.clear();
    odd_.insert_or_assign(b.id, std::move(kept));
    return;
  }
  if (!odd_.empty()) odd_.erase(b.id);
  const Rec rec{*id, core::PackedMillis(b.created_at_ms), core::PackedMillis(b.modified_at_ms),
                core::PackedDevice(b.device)};
  auto [at, added] = table_.insert(rec);
  if (!added) *at = rec;
}

void ObservedSet::erase(const std::string& id) {
  if (const auto p = core::pack_uuid(id)) table_.erase(*p);
  if (!odd_.empty()) odd_.erase(id);
}

core::ObservedList ObservedSet::all() const {
  core::ObservedList out{std::span<const core::ObservedRecord>(table_.records())};
  out.reserve(odd_.size());
  for (const auto& [id, b] : odd_) out.add(b);
  return out;
}

std::vector<core::RemoteBinding> ObservedSet::of_devices(
    const std::vector<core::DeviceId>& devices) const {
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

core::BindingIdSet ObservedSet::ids() const {
  core::BindingIdSet out;
  out.reserve(size());
  for (const auto& r : table_.records()) out.add(r.id);
  for (const auto& [id, b] : odd_) out.add(id);
  out.seal();
  return out;
}

std::optional<core::PackedUuid> ObservedSet::packable(const core::RemoteBinding& b) {
  if (!core::PackedMillis::fits(b.created_at_ms) || !core::PackedMillis::fits(b.modified_at_ms)) {
    return std::nullopt;
  }
  return core::pack_uuid(b.id);
}

core::RemoteBinding ObservedSet::expand(const Rec& r) {
  return {core::unpack_uuid(r.id), r.device.unpack(), r.created_at.get(), r.modified_at.get(), {}};
}

}  // namespace thingsync::engine
