#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "thingsync/core/device_id.hpp"

namespace thingsync::sim {

struct Binding;

/// The store's ordered index: (createdAt, binding) by (createdAt, id), the default sort.
struct CreatedOrder {
  using is_transparent = void;
  using Entry = std::pair<std::int64_t, const Binding*>;
  using Key = std::pair<std::int64_t, std::string_view>;
  bool operator()(const Entry& a, const Entry& b) const;
  bool operator()(const Entry& a, const Key& b) const;
  bool operator()(const Key& a, const Entry& b) const;
};
using CreatedIndex = std::set<CreatedOrder::Entry, CreatedOrder>;

/// One MQTT binding as the simulator keeps it. `password` is held in clear (it is a
/// simulator); it never leaves through the API, only through the admin interface.
struct Binding {
  std::string id;               ///< lower-case UUID
  std::string device_spelling;  ///< deviceId as the client sent it; returned as sent
  core::DeviceId device;
  std::string username;        ///< device URN, set by the "platform"
  std::string_view client_id;  ///< owner of the device (the clientId filter); not in the API body
  std::optional<std::string> password;
  std::int64_t created_at = 0;  ///< ms since the epoch, UTC
  std::int64_t modified_at = 0;
  std::string_view created_by;  ///< client_id, created_by and modified_by are interned by the
  std::string_view modified_by;  ///< store: they stay valid as long as the store
  std::string json;  ///< cached API representation (no password, no clientId)
  CreatedIndex::const_iterator created_pos;  ///< its entry in the store's ordered index
};

inline bool CreatedOrder::operator()(const Entry& a, const Entry& b) const {
  return a.first != b.first ? a.first < b.first : a.second->id < b.second->id;
}
inline bool CreatedOrder::operator()(const Entry& a, const Key& b) const {
  return a.first != b.first ? a.first < b.first : std::string_view(a.second->id) < b.second;
}
inline bool CreatedOrder::operator()(const Key& a, const Entry& b) const {
  return a.first != b.first ? a.first < b.first : a.second < std::string_view(b.second->id);
}
/// One field of a `sort` parameter.
enum class SortField : std::uint8_t { kCreatedAt, kModifiedAt, kDeviceId, kUsername, kId };
struct SortKey {
  SortField field;
  bool desc = false;
};

/// Filters of GET /mqtt/bindings, already validated and normalised.
struct ListFilter {
  std::optional<std::string> client_id;  ///< lower case
  std::optional<std::string> device;     ///< canonical device ID
  std::optional<std::string> username;
  std::optional<std::int64_t> created_before, created_since, modified_before, modified_since;

  bool matches(const Binding& b) const;
  /// Stable digest of the filters, bound into cursors.
  std::uint64_t digest() const;
};

/// The position a cursor stands for: after (forward) or before (backward) a sort key.
struct Cursor {
  bool backward = false;
  std::uint32_t page = 1;  ///< 1-based number of the page this cursor fetches
  std::string sort;        ///< normalised sort spec the cursor was made for
  std::uint64_t filter_digest = 0;
  std::int64_t created_at = 0, modified_at = 0;
  std::string device, username, id;

  std::string encode() const;  ///< opaque base64url
  static std::optional<Cursor> decode(std::string_view text);
};

struct ListQuery {
  ListFilter filter;
  std::vector<SortKey> sort;  ///< empty = createdAt ascending
  std::string sort_spec;      ///< normalised, e.g. "createdAt,-modifiedAt"
  std::optional<Cursor> cursor;
  std::size_t limit = 50;
};

struct ListPage {
  std::vector<const Binding*> items;
  std::optional<Cursor> next, prev;
  std::uint32_t page = 1;
};

/// Parses "createdAt,-modifiedAt"; nullopt (with `error`) for unknown or repeated fields.
std::optional<std::vector<SortKey>> parse_sort(std::string_view spec, std::string& error);
std::string sort_spec_string(const std::vector<SortKey>& keys);

/// What a create or update needs; the store fills in the rest. The views need to stay valid
/// only for the call.
struct BindingInput {
  std::string_view device_spelling;
  core::DeviceId device;
  std::optional<std::string_view> password;
  std::string_view principal;
  std::string_view client_id;  ///< used by create only
};

/// An open-addressing hash index (linear probing, backward-shift deletion) from a string key
/// of a binding to the binding. Several bindings may share a key. The slots keep the key's
/// hash, so growing never touches the bindings, and a miss seldom does.
class BindingIndex {
 public:
  using KeyOf = std::string_view (*)(const Binding&);
  explicit BindingIndex(KeyOf key_of) : key_of_(key_of) {}

  void insert(const Binding* b);
  /// Removes exactly `b` (indexed under its current key).
  void erase(const Binding* b);
  /// Calls `f(const Binding&)` for every binding with key `key`.
  template <typename F>
  void for_each(std::string_view key, F&& f) const {
    if (slots_.empty()) return;
    const std::uint64_t h = hash(key);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.binding == nullptr) return;
      if (s.hash == h && key_of_(*s.binding) == key) f(*s.binding);
    }
  }
  const Binding* find(std::string_view key) const;
  std::size_t size() const { return size_; }
  void clear();

 private:
  struct Slot {
    std::uint64_t hash = 0;
    const Binding* binding = nullptr;  ///< nullptr: empty
  };
  static std::uint64_t hash(std::string_view key);
  void grow();

  KeyOf key_of_;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

/// Formats ms timestamps as core::format_iso8601_ms does, reusing the formatted second.
class IsoFormatter {
 public:
  /// Appends the ISO 8601 form of `ms` to `out`.
  void append(std::string& out, std::int64_t ms);

 private:
  std::int64_t second_ = 0;
  std::string prefix_;  ///< "2025-09-01T23:00:00" of second_; empty before the first use
};

/// The in-memory binding store: an index by id, an index by canonical device ID and an
/// ordered index by (createdAt, id) for the default sort. Single-threaded.
class Store {
 public:
  explicit Store(std::uint64_t rng_seed);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const Binding* find(std::string_view id) const;
  /// Bindings of one device, oldest first.
  std::vector<const Binding*> find_device(std::string_view canonical) const;

  struct Outcome {
    const Binding* binding = nullptr;   ///< the created/updated binding
    const Binding* conflict = nullptr;  ///< another binding already holds the device
  };
  Outcome create(BindingInput in, std::int64_t now_ms, bool allow_duplicate = false);
  /// nullopt when the id is unknown.
  std::optional<Outcome> update(std::string_view id, BindingInput in, std::int64_t now_ms,
                                bool allow_duplicate = false);
  bool erase(std::string_view id);
  /// Erases a binding that find() returned.
  void erase(const Binding* b);
  void clear();
  std::size_t size() const { return by_id_.size(); }
  /// Increases with every change; the persister compares it.
  std::uint64_t version() const { return version_; }

  ListPage list(const ListQuery& q) const;
  /// Every binding in (createdAt, id) order.
  std::vector<const Binding*> all() const;

  /// Adds `n` generated bindings across all device kinds and three client IDs, created in
  /// the `n` milliseconds before `now_ms`; calls `progress` (when given) every 1024.
  void seed(std::size_t n, std::int64_t now_ms, void (*progress)() = nullptr);

  /// The persistence format: a JSON document with every field, passwords included.
  std::string dump() const;
  /// Replaces the content with a dump(); false (content unchanged) with `error` when malformed.
  bool load(std::string_view text, std::string& error);

  std::string new_uuid();
  std::mt19937_64& rng() { return rng_; }

 private:
  std::int64_t next_timestamp(std::int64_t now_ms);
  /// Takes ownership of `b` and indexes it.
  const Binding& insert(std::unique_ptr<Binding> b);
  std::string_view intern(std::string_view s);
  void render(Binding& b);

  BindingIndex by_id_;      ///< owns the bindings
  BindingIndex by_device_;  ///< by canonical device ID
  CreatedIndex by_created_;
  std::set<std::string, std::less<>> interned_;  ///< client ids and principals
  std::string_view last_interned_;
  IsoFormatter iso_;
  std::int64_t last_ts_ = 0;
  std::uint64_t version_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace thingsync::sim
