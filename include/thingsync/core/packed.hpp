#pragma once

// Compact forms of binding and device IDs, for what a long-running process holds for every
// binding of a fleet (the observed set, the state store's records): a std::string-keyed map
// costs ~200 bytes a binding, these ~50-80.

#include <array>
#include <cassert>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/core/device_id.hpp"

namespace thingsync::core {

/// A lower-case UUID (binding ids) in 16 bytes. Byte order is the text's order, so packed
/// ids sort as their spellings do.
using PackedUuid = std::array<std::uint8_t, 16>;

/// nullopt unless `s` is a UUID in lower-case 8-4-4-4-12 form (other spellings do not
/// round-trip, so callers keep them as text).
std::optional<PackedUuid> pack_uuid(std::string_view s);
std::string unpack_uuid(const PackedUuid& id);

/// A time in ms since the epoch in 6 bytes (48-bit two's complement): exact for any time within
/// about 4,400 years of 1970, which every timestamp the API gives is.
class PackedMillis {
 public:
  static constexpr std::int64_t kMax = (std::int64_t{1} << 47) - 1;
  static constexpr std::int64_t kMin = -(std::int64_t{1} << 47);
  static bool fits(std::int64_t ms) { return ms >= kMin && ms <= kMax; }

  PackedMillis() = default;
  /// `ms` must fit().
  explicit PackedMillis(std::int64_t ms) {
    assert(fits(ms));
    const auto u = static_cast<std::uint64_t>(ms);
    for (std::size_t i = 0; i < bytes_.size(); ++i) {
      bytes_[i] = static_cast<std::uint8_t>(u >> (8 * i));
    }
  }
  std::int64_t get() const {
    std::uint64_t u = 0;
    for (std::size_t i = 0; i < bytes_.size(); ++i) u |= std::uint64_t{bytes_[i]} << (8 * i);
    if (u >> 47) u |= ~std::uint64_t{0} << 48;  // sign-extend
    return static_cast<std::int64_t>(u);
  }

 private:
  std::array<std::uint8_t, 6> bytes_{};
};

/// A device ID in 18 bytes, exact for every kind (IMEI digits, DevEUI hex, UUIDs):
/// unpack() gives back an equal DeviceId.
class PackedDevice {
 public:
  PackedDevice() = default;
  explicit PackedDevice(const DeviceId& id);
  DeviceId unpack() const;
  DeviceKind kind() const { return kind_; }
  /// DeviceId::canonical() of the device (unpacks it: for messages, not for hot loops).
  std::string canonical() const { return unpack().canonical(); }
  /// True when this holds `id` (cheaper than unpack() == id).
  bool holds(const DeviceId& id) const { return *this == PackedDevice(id); }
  friend bool operator==(const PackedDevice&, const PackedDevice&) = default;
  /// An order of the packed bytes, for sorted lookups; not the canonical order of DeviceId.
  friend auto operator<=>(const PackedDevice&, const PackedDevice&) = default;
  /// A hash of the packed bytes (for hash sets of devices).
  std::size_t hash() const {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, bytes_.data(), 8);
    std::memcpy(&b, bytes_.data() + 8, 8);
    std::uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull) ^ (std::uint64_t{digits_} << 8) ^
                      static_cast<std::uint64_t>(kind_);
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return static_cast<std::size_t>(h);
  }
  /// The order of the canonical forms (DeviceId's order), without unpacking.
  friend std::strong_ordering canonical_order(const PackedDevice& a, const PackedDevice& b);
  /// A number that never decreases in canonical order, for sorting: devices with different
  /// keys are ordered by them; equal keys need canonical_order() to decide.
  std::uint64_t order_key() const;
  /// Writes the device into `out`, reusing its memory (no allocation when it has room).
  void unpack_into(DeviceId& out) const;

 private:
  std::array<std::uint8_t, 16> bytes_{};
  DeviceKind kind_ = DeviceKind::kUuid;
  std::uint8_t digits_ = 0;  ///< IMEI: its number of digits (15 or 16); leading zeros count
};

struct PackedDeviceHash {
  std::size_t operator()(const PackedDevice& d) const noexcept { return d.hash(); }
};

/// An index from PackedUuid to records kept in one vector: open addressing (linear probing)
/// with 4-byte slots at a load of at most 0.8, so about 5-10 bytes a record beside the record
/// itself. A slot holds the record's index in its low bits and bits of the id's hash above
/// them (as many as the table's size leaves: 15 at 100,000 records, 11 at 1,000,000), so a
/// probe looks at a record only when those bits match. `Rec` has a `PackedUuid id` member.
/// Erasing moves the last record into the hole, so record order is insertion order only until
/// the first erase.
template <typename Rec>
class PackedUuidTable {
 public:
  std::size_t size() const { return recs_.size(); }
  bool empty() const { return recs_.empty(); }
  const std::vector<Rec>& records() const { return recs_; }
  std::vector<Rec>& records() { return recs_; }  ///< for in-place updates; never change ids

  void reserve(std::size_t n) {
    recs_.reserve(n);
    rehash(n);
  }
  void shrink_to_fit() { recs_.shrink_to_fit(); }
  void clear() {
    recs_.clear();
    slots_.clear();
  }

  Rec* find(const PackedUuid& id) {
    if (slots_.empty()) return nullptr;
    const std::uint32_t s = slots_[slot_of(id, hash(id))];
    return s == kEmpty ? nullptr : &recs_[s & index_mask_];
  }
  const Rec* find(const PackedUuid& id) const {
    return const_cast<PackedUuidTable*>(this)->find(id);
  }

  /// The record of `id`, added as `rec` (whose id must be `id`) when there was none. The
  /// bool says whether it was added.
  std::pair<Rec*, bool> insert(const Rec& rec) {
    if (too_full(recs_.size() + 1, slots_.size())) rehash(recs_.size() + 1);
    const std::uint64_t h = hash(rec.id);
    const std::size_t s = slot_of(rec.id, h);
    if (slots_[s] != kEmpty) return {&recs_[slots_[s] & index_mask_], false};
    slots_[s] = tag(h) | static_cast<std::uint32_t>(recs_.size());
    recs_.push_back(rec);
    return {&recs_.back(), true};
  }

  /// False when `id` was not held. `on_erase(rec)` sees the record before it goes.
  template <typename F>
  bool erase(const PackedUuid& id, F&& on_erase) {
    if (slots_.empty()) return false;
    std::size_t hole = slot_of(id, hash(id));
    if (slots_[hole] == kEmpty) return false;
    const std::uint32_t r = slots_[hole] & index_mask_;
    on_erase(recs_[r]);
    // Backward-shift deletion keeps every probe sequence unbroken without tombstones.
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t j = (hole + 1) & mask; slots_[j] != kEmpty; j = (j + 1) & mask) {
      const std::size_t home = hash(recs_[slots_[j] & index_mask_].id) & mask;
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = kEmpty;
    const auto last = static_cast<std::uint32_t>(recs_.size() - 1);
    if (r != last) {
      recs_[r] = recs_[last];
      const std::uint64_t h = hash(recs_[r].id);
      slots_[slot_of(recs_[r].id, h)] = tag(h) | r;
    }
    recs_.pop_back();
    return true;
  }
  bool erase(const PackedUuid& id) {
    return erase(id, [](const Rec&) {});
  }

 private:
  // No slot is ever all ones: a record's index is below 0.8 of the slot count.
  static constexpr std::uint32_t kEmpty = 0xffffffffu;

  static bool too_full(std::size_t records, std::size_t slots) { return records * 5 > slots * 4; }

  static std::uint64_t hash(const PackedUuid& id) {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, id.data(), 8);
    std::memcpy(&b, id.data() + 8, 8);
    std::uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull);
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
  }
  // The hash bits a slot keeps above the index: the hash's top 32 bits, the index's cleared
  // (the home slot comes from the low bits).
  std::uint32_t tag(std::uint64_t h) const {
    return static_cast<std::uint32_t>(h >> 32) & ~index_mask_;
  }

  // The slot that holds `id`, or the empty slot where it would go.
  std::size_t slot_of(const PackedUuid& id, std::uint64_t h) const {
    const std::size_t mask = slots_.size() - 1;
    const std::uint32_t t = tag(h);
    std::size_t i = h & mask;
    for (std::uint32_t s; (s = slots_[i]) != kEmpty; i = (i + 1) & mask) {
      if ((s & ~index_mask_) == t && recs_[s & index_mask_].id == id) break;
    }
    return i;
  }

  // Room for `n` records at a load of at most 0.8.
  void rehash(std::size_t n) {
    std::size_t cap = 16;
    while (too_full(n, cap)) cap *= 2;
    if (cap <= slots_.size()) return;
    assert(cap <= (std::size_t{1} << 32));
    slots_.assign(cap, kEmpty);
    index_mask_ = static_cast<std::uint32_t>(cap - 1);
    for (std::uint32_t r = 0; r < recs_.size(); ++r) {
      const std::uint64_t h = hash(recs_[r].id);
      slots_[slot_of(recs_[r].id, h)] = tag(h) | r;
    }
  }

  std::vector<Rec> recs_;
  std::vector<std::uint32_t> slots_;  // tag | index into recs_, or kEmpty; a power of two
  std::uint32_t index_mask_ = 0;      // slots_.size() - 1: the index bits of a slot
};

}  // namespace thingsync::core
