#include "thingsync/core/binding_lists.hpp"

#include <algorithm>

namespace thingsync::core {

std::uint32_t TextTable::intern(std::string_view s) { return s.empty() ? 0 : keep(s); }

std::uint32_t TextTable::keep(std::string_view s) {
  std::string key(s);
  if (const auto it = index_.find(key); it != index_.end()) return it->second;
  texts_.push_back(key);
  const auto ref = static_cast<std::uint32_t>(texts_.size());
  index_.emplace(std::move(key), ref);
  return ref;
}

PackedBindingId PackedBindingId::of(std::string_view id, TextTable& texts) {
  if (auto u = pack_uuid(id)) return {*u, 0};
  return {{}, texts.keep(id)};
}

std::string PackedBindingId::str(const TextTable& texts) const {
  if (text == 0) return unpack_uuid(uuid);
  return std::string(texts.get(text));
}

int compare_ids(const PackedBindingId& a, const TextTable& ta, const PackedBindingId& b,
                const TextTable& tb) {
  if (a.text == 0 && b.text == 0) {
    // A packed UUID's bytes sort as its lower-case spelling does.
    const auto c = a.uuid <=> b.uuid;
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  const int c = a.str(ta).compare(b.str(tb));
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

ObservedList::ObservedList(std::span<const RemoteBinding> bindings) {
  recs_.reserve(bindings.size());
  for (const auto& b : bindings) add(b);
}

void ObservedList::add(const RemoteBinding& b) {
  recs_.push_back({PackedBindingId::of(b.id, texts_), PackedDevice(b.device), b.created_at_ms,
                   b.modified_at_ms, texts_.intern(b.modified_by)});
}

void ObservedList::add(const PackedUuid& id, const PackedDevice& device,
                       std::int64_t created_at_ms, std::int64_t modified_at_ms) {
  recs_.push_back({{id, 0}, device, created_at_ms, modified_at_ms, 0});
}

RemoteBinding ObservedList::binding(std::size_t i) const {
  return {id(i), device(i).unpack(), created_at_ms(i), modified_at_ms(i),
          std::string(modified_by(i))};
}

BindingIdSet ObservedList::id_set() const {
  BindingIdSet out;
  out.reserve(size());
  for (std::size_t i = 0; i < size(); ++i) {
    const PackedBindingId id = packed_id(i);
    if (id.text == 0) {
      out.add(id.uuid);
    } else {
      out.add(texts_.get(id.text));
    }
  }
  out.seal();
  return out;
}

void BindingIdSet::add(std::string_view id) {
  if (auto u = pack_uuid(id)) {
    uuids_.push_back(*u);
  } else {
    others_.emplace_back(id);
  }
}

void BindingIdSet::seal() {
  std::sort(uuids_.begin(), uuids_.end());
  std::sort(others_.begin(), others_.end());
}

bool BindingIdSet::contains(const PackedUuid& id) const {
  return std::binary_search(uuids_.begin(), uuids_.end(), id);
}

bool BindingIdSet::contains(std::string_view id) const {
  if (auto u = pack_uuid(id)) return contains(*u);
  return std::binary_search(others_.begin(), others_.end(), id,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

AppliedList::AppliedList(std::span<const AppliedBinding> bindings) {
  recs_.reserve(bindings.size());
  for (const auto& b : bindings) add(b);
}

void AppliedList::add(const AppliedBinding& b) {
  recs_.push_back({PackedBindingId::of(b.binding_id, texts_), PackedDevice(b.device),
                   b.password_fp, b.receipt_ms});
}

void AppliedList::add(const PackedUuid& id, const PackedDevice& device, const Fingerprint& fp,
                      std::int64_t receipt_ms) {
  recs_.push_back({{id, 0}, device, fp, receipt_ms});
}

}  // namespace thingsync::core
