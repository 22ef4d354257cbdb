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

/// One MQTT binding as the simulator keeps it: one heap block holding these fields and then
/// their text, the cached API JSON (no password, no clientId) followed by the password and
/// the canonical device ID when the JSON does not hold that already. The id, the deviceId
/// spelling and the username are views into the JSON: a binding costs one allocation and
/// ~350 bytes, not ten allocations and ~1 KB. The password is held in clear (it is a
/// simulator); it never leaves through the API, only through the admin interface.
/// Only the Store makes and frees bindings.
class Binding {
 public:
  Binding(const Binding&) = delete;
  Binding& operator=(const Binding&) = delete;

  std::string_view id() const { return {text() + kIdAt, kIdSize}; }  ///< lower-case UUID
  /// deviceId as the client sent it; returned as sent.
  std::string_view device_spelling() const { return {text() + spelling_at_, spelling_size_}; }
  /// Canonical device ID (core::DeviceId::canonical()).
  std::string_view device() const { return {text() + device_at_, device_size_}; }
  /// Device URN, set by the "platform".
  std::string_view username() const { return {text() + username_at_, username_size_}; }
  /// Owner of the device (the clientId filter); not in the API body.
  std::string_view client_id() const { return *client_id_; }
  std::optional<std::string_view> password() const {
    if (password_size_ == kNoPassword) return std::nullopt;
    return std::string_view(text() + json_size_, password_size_);
  }
  std::string_view created_by() const { return *created_by_; }
  std::string_view modified_by() const { return *modified_by_; }
  std::string_view json() const { return {text(), json_size_}; }  ///< cached API representation

  std::int64_t created_at = 0;  ///< ms since the epoch, UTC
  std::int64_t modified_at = 0;

 private:
  friend class Store;
  friend class CreatedIndex;
  static constexpr std::size_t kIdAt = 7;  // {"id":"
  static constexpr std::size_t kIdSize = 36;
  static constexpr std::uint32_t kNoPassword = 0xffffffff;
  Binding() = default;
  const char* text() const { return reinterpret_cast<const char*>(this + 1); }
  char* text() { return reinterpret_cast<char*>(this + 1); }

  const std::string* client_id_ = nullptr;   ///< client id and principals are interned by the
  const std::string* created_by_ = nullptr;  ///< store: they stay valid as long as the store
  const std::string* modified_by_ = nullptr;
  std::uint32_t json_size_ = 0;
  std::uint32_t password_size_ = kNoPassword;  ///< the password follows the JSON
  std::uint32_t spelling_at_ = 0, username_at_ = 0, device_at_ = 0;
  std::uint16_t spelling_size_ = 0, username_size_ = 0, device_size_ = 0;  ///< device IDs are short
  bool erased_ = false;  ///< out of the hash indexes, left in CreatedIndex until it frees it
  std::uint32_t created_pos_ = 0;  ///< where CreatedIndex holds it (see CreatedIndex::base_)
};

/// The store's ordered index, by (createdAt, id): the default sort. Bindings mostly come in
/// createdAt order (every create is the newest), so a vector of pointers with no per-binding
/// node. An erased binding stays allocated in place (marked, so that searches can still
/// compare it) until it is at the front, where most deletes are, or until erased ones are a
/// quarter of the index; then they are freed together. The index owns the bindings.
class CreatedIndex {
 public:
  CreatedIndex() = default;
  CreatedIndex(const CreatedIndex&) = delete;
  CreatedIndex& operator=(const CreatedIndex&) = delete;
  ~CreatedIndex() { clear(); }

  /// Makes room for one more binding, so that the next insert() allocates nothing.
  void reserve_one() {
    if (entries_.size() == entries_.capacity()) {
      entries_.reserve(std::max<std::size_t>(64, 2 * entries_.capacity()));
    }
  }
  /// Adds `b`; at the end (cheap) when it is the newest, else in order.
  void insert(Binding* b);
  /// Adds `b` at the end, out of order until restore_order(): for bulk loads.
  void append(Binding* b) { place(b, entries_.size()); }
  /// Sorts what append() added out of order.
  void restore_order();
  /// Marks `b` erased and frees it (maybe later, with others).
  void erase(Binding* b);
  /// Puts `now` where `old` was (same createdAt and id) and frees `old`.
  void replace(Binding* old, Binding* now);
  void clear();
  std::size_t size() const { return entries_.size() - head_ - erased_; }

  // Positions [begin(), end()) hold live and erased bindings; at(i) may be an erased one.
  std::size_t begin() const { return head_; }
  std::size_t end() const { return entries_.size(); }
  const Binding* at(std::size_t i) const { return entries_[i]; }
  /// First position whose binding is not below (not above, for upper_bound) the key.
  std::size_t lower_bound(std::int64_t created, std::string_view id) const;
  std::size_t upper_bound(std::int64_t created, std::string_view id) const;

 private:
  static void destroy(Binding* b);
  void place(Binding* b, std::size_t i);
  void sweep();  // frees the erased bindings, renumbering the rest

  std::vector<Binding*> entries_;  ///< [0, head_) are freed
  std::size_t head_ = 0;           ///< first position in use
  std::size_t erased_ = 0;         ///< erased bindings in [head_, end)
  std::uint32_t base_ = 0;         ///< created_pos_ of entries_[0] (positions wrap around)
};

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
  /// modifiedAt (and a create's createdAt) exactly as given, as an API node with a skewed clock
  /// stamps it; it leaves the store's clock alone. Unset: the next tick of the store's clock.
  std::optional<std::int64_t> stamp;
};

/// An open-addressing hash index (linear probing, backward-shift deletion) from a string key
/// of a binding to the binding. Several bindings may share a key. The slots keep the key's
/// hash, so growing never touches the bindings, and a miss seldom does.
class BindingIndex {
 public:
  using KeyOf = std::string_view (*)(const Binding&);
  explicit BindingIndex(KeyOf key_of) : key_of_(key_of) {}

  /// Makes room for one more binding, so that the next insert() allocates nothing.
  void reserve_one() {
    if ((size_ + 1) * 2 > slots_.size()) grow();  // load factor at most 1/2
  }
  /// `h` is hash(key_of(*b)).
  void insert(const Binding* b, std::uint64_t h);
  void insert(const Binding* b) { insert(b, hash(key_of_(*b))); }
  /// Starts loading the slot where a key with hash `h` goes, for an insert a little later:
  /// in a big index it is a cache miss, which then overlaps other work.
  void prefetch(std::uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & mask_], 1);
  }
  /// Removes exactly `b` (indexed under its current key).
  void erase(const Binding* b);
  /// Puts `now` in the place of `old`; both have the same key.
  void replace(const Binding* old, const Binding* now);
  /// Calls `f(const Binding&)` for every binding with key `key`, whose hash is `h`.
  template <typename F>
  void for_each(std::string_view key, std::uint64_t h, F&& f) const {
    if (slots_.empty()) return;
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.binding == nullptr) return;
      if (s.hash == h && key_of_(*s.binding) == key) f(*s.binding);
    }
  }
  const Binding* find(std::string_view key) const;
  std::size_t size() const { return size_; }
  void clear();
  static std::uint64_t hash(std::string_view key);

 private:
  struct Slot {
    std::uint64_t hash = 0;
    const Binding* binding = nullptr;  ///< nullptr: empty
  };
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
  /// A hint that create() or update() for this device follows soon: starts loading its slot
  /// in the device index (a cache miss in a big store) so that it overlaps the work between.
  void prefetch_device(std::string_view canonical) const {
    by_device_.prefetch(BindingIndex::hash(canonical));
  }
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
  /// The last timestamp the store gave (its clock; 0 before any): the wall clock, held where
  /// it was should the wall clock go back. Stamped admin times do not move it.
  std::int64_t clock() const { return last_ts_; }
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
  /// What make_binding() puts into a new binding.
  struct Fields {
    std::string_view id, spelling;
    const core::DeviceId& device;
    std::optional<std::string_view> password;
    const std::string* client_id;
    const std::string* created_by;
    const std::string* modified_by;
    std::int64_t created_at, modified_at;
  };
  std::int64_t next_timestamp(std::int64_t now_ms);
  /// A new binding, indexed nowhere yet. Throws (invalid UTF-8 in a principal) before it
  /// allocates.
  Binding* make_binding(const Fields& f);
  /// Makes a binding of `f` and indexes it; the store owns it. All or nothing: when memory
  /// runs out (bad_alloc), the store is as it was.
  const Binding& insert(const Fields& f, bool bulk = false);
  /// Room for one more binding in every index, so that indexing one allocates nothing.
  void reserve_one();
  const std::string* intern(std::string_view s);
  /// Writes the API JSON of `f` into json_.
  void render(const Fields& f, std::string_view username);

  BindingIndex by_id_;      ///< by id (by_created_ owns the bindings)
  BindingIndex by_device_;  ///< by canonical device ID
  CreatedIndex by_created_;
  std::set<std::string, std::less<>> interned_;  ///< client ids and principals
  const std::string* last_interned_ = nullptr;
  IsoFormatter iso_;
  std::string json_;  ///< render()'s output, reused
  std::int64_t last_ts_ = 0;
  std::uint64_t version_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace thingsync::sim
