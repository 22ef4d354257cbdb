#pragma once
// The plan's inputs in the form a fleet of a million is held: the remote bindings of a full list
// and the state file's records, packed (about 64 bytes a binding instead of ~250 as
// RemoteBinding/AppliedBinding with their strings). make_plan reads them directly; a one-shot
// command fills an ObservedList page by page as the list arrives.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "thingsync/core/binding.hpp"
#include "thingsync/core/packed.hpp"

namespace thingsync::core {

/// Strings that few bindings have or that many share (binding IDs that are not lower-case
/// UUIDs, modifiedBy names), each kept once. A reference is its index + 1; 0 is "".
class TextTable {
 public:
  /// A reference to `s`, shared with every equal string; 0 for "".
  std::uint32_t intern(std::string_view s);
  /// A reference to `s`, never 0 (an empty string too).
  std::uint32_t keep(std::string_view s);
  std::string_view get(std::uint32_t ref) const {
    return ref == 0 ? std::string_view{} : std::string_view{texts_[ref - 1]};
  }

 private:
  std::vector<std::string> texts_;
  std::unordered_map<std::string, std::uint32_t> index_;
};

/// A binding ID: a lower-case UUID in 16 bytes (every ID the API gives), or, for any other
/// spelling, a reference into the list's TextTable.
struct PackedBindingId {
  PackedUuid uuid{};
  std::uint32_t text = 0;  ///< 0: `uuid` holds the ID

  static PackedBindingId of(std::string_view id, TextTable& texts);
  std::string str(const TextTable& texts) const;
  friend bool operator==(const PackedBindingId&, const PackedBindingId&) = default;
};

/// Orders two IDs as their spellings (`ta`, `tb`: the tables they refer to).
int compare_ids(const PackedBindingId& a, const TextTable& ta, const PackedBindingId& b,
                const TextTable& tb);

/// A set of binding IDs (the live ones of a full list), 16 bytes an ID.
class BindingIdSet {
 public:
  BindingIdSet() = default;
  BindingIdSet(std::initializer_list<std::string_view> ids) {
    for (const auto id : ids) add(id);
    seal();
  }
  void reserve(std::size_t n) { uuids_.reserve(n); }
  void add(const PackedUuid& id) { uuids_.push_back(id); }
  void add(std::string_view id);
  /// Call once after the adds, before contains().
  void seal();
  bool contains(const PackedUuid& id) const;
  bool contains(std::string_view id) const;

 private:
  std::vector<PackedUuid> uuids_;
  std::vector<std::string> others_;
};

/// A remote binding with a lower-case UUID ID and no modifiedBy, as the daemon's observed set
/// keeps it (46 bytes). An ObservedList made for a plan borrows these instead of copying them.
struct ObservedRecord {
  PackedUuid id;
  PackedMillis created_at;
  PackedMillis modified_at;
  PackedDevice device;
};

/// The remote bindings of a list, packed: borrowed ObservedRecords first (the daemon's
/// observed set's own, not copied), then the bindings added (a one-shot list's, page by page).
class ObservedList {
 public:
  struct Rec {
    PackedBindingId id;
    PackedDevice device;
    std::int64_t created_at_ms = 0;
    std::int64_t modified_at_ms = 0;
    std::uint32_t modified_by = 0;  ///< into texts()
  };

  ObservedList() = default;
  explicit ObservedList(std::span<const RemoteBinding> bindings);
  /// Borrows `records`: they must outlive this list, unchanged.
  explicit ObservedList(std::span<const ObservedRecord> records) : borrowed_(records) {}

  void reserve(std::size_t n) { recs_.reserve(n); }
  void add(const RemoteBinding& b);
  void add(const PackedUuid& id, const PackedDevice& device, std::int64_t created_at_ms,
           std::int64_t modified_at_ms);
  /// Gives back what growing by doubling left unused.
  void shrink_to_fit() { recs_.shrink_to_fit(); }

  std::size_t size() const { return borrowed_.size() + recs_.size(); }
  bool empty() const { return size() == 0; }
  const PackedDevice& device(std::size_t i) const {
    return i < borrowed_.size() ? borrowed_[i].device : own(i).device;
  }
  PackedBindingId packed_id(std::size_t i) const {
    return i < borrowed_.size() ? PackedBindingId{borrowed_[i].id, 0} : own(i).id;
  }
  std::int64_t created_at_ms(std::size_t i) const {
    return i < borrowed_.size() ? borrowed_[i].created_at.get() : own(i).created_at_ms;
  }
  std::int64_t modified_at_ms(std::size_t i) const {
    return i < borrowed_.size() ? borrowed_[i].modified_at.get() : own(i).modified_at_ms;
  }
  std::string_view modified_by(std::size_t i) const {
    return i < borrowed_.size() ? std::string_view{} : texts_.get(own(i).modified_by);
  }
  const TextTable& texts() const { return texts_; }

  std::string id(std::size_t i) const { return packed_id(i).str(texts_); }
  /// Binding `i` as the rest of the program takes it.
  RemoteBinding binding(std::size_t i) const;
  /// Every binding ID (for the state's retain_only).
  BindingIdSet id_set() const;

 private:
  const Rec& own(std::size_t i) const { return recs_[i - borrowed_.size()]; }

  std::span<const ObservedRecord> borrowed_;
  std::vector<Rec> recs_;
  TextTable texts_;
};

/// A state record of a binding with a lower-case UUID ID, as the state store keeps it (48
/// bytes). An AppliedList made for a plan borrows these instead of copying them.
struct AppliedRecord {
  PackedUuid id;
  Fingerprint fp;
  PackedDevice device;
  PackedMillis receipt;
};

/// The state file's records, packed: borrowed AppliedRecords first (the state store's own, not
/// copied), then the records added (any binding ID).
class AppliedList {
 public:
  struct Rec {
    PackedBindingId id;
    PackedDevice device;
    Fingerprint password_fp{};
    std::int64_t receipt_ms = 0;
  };

  AppliedList() = default;
  explicit AppliedList(std::span<const AppliedBinding> bindings);
  /// Borrows `records`: they must outlive this list, unchanged.
  explicit AppliedList(std::span<const AppliedRecord> records) : borrowed_(records) {}

  void reserve(std::size_t n) { recs_.reserve(n); }
  void add(const AppliedBinding& b);
  void add(const PackedUuid& id, const PackedDevice& device, const Fingerprint& fp,
           std::int64_t receipt_ms);

  std::size_t size() const { return borrowed_.size() + recs_.size(); }
  const PackedDevice& device(std::size_t i) const {
    return i < borrowed_.size() ? borrowed_[i].device : own(i).device;
  }
  const Fingerprint& password_fp(std::size_t i) const {
    return i < borrowed_.size() ? borrowed_[i].fp : own(i).password_fp;
  }
  std::int64_t receipt_ms(std::size_t i) const {
    return i < borrowed_.size() ? borrowed_[i].receipt.get() : own(i).receipt_ms;
  }
  PackedBindingId packed_id(std::size_t i) const {
    return i < borrowed_.size() ? PackedBindingId{borrowed_[i].id, 0} : own(i).id;
  }
  const TextTable& texts() const { return texts_; }
  std::string id(std::size_t i) const { return packed_id(i).str(texts_); }

 private:
  const Rec& own(std::size_t i) const { return recs_[i - borrowed_.size()]; }

  std::span<const AppliedRecord> borrowed_;
  std::vector<Rec> recs_;
  TextTable texts_;
};

}  // namespace thingsync::core
