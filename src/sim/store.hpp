#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "thingsync/core/device_id.hpp"

namespace thingsync::sim {

/// One MQTT binding as the simulator keeps it. `password` is held in clear (it is a
/// simulator); it never leaves through the API, only through the admin interface.
struct Binding {
  std::string id;               ///< lower-case UUID
  std::string device_spelling;  ///< deviceId as the client sent it; returned as sent
  core::DeviceId device;
  std::string username;   ///< device URN, set by the "platform"
  std::string client_id;  ///< owner of the device (the clientId filter); not in the API body
  std::optional<std::string> password;
  std::int64_t created_at = 0;  ///< ms since the epoch, UTC
  std::int64_t modified_at = 0;
  std::string created_by;
  std::string modified_by;
  std::string json;  ///< cached API representation (no password, no clientId)
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

/// What a create or update needs; the store fills in the rest.
struct BindingInput {
  std::string device_spelling;
  core::DeviceId device;
  std::optional<std::string> password;
  std::string principal;
  std::string client_id;  ///< used by create only
};

/// The in-memory binding store: one map by id, an index by canonical device ID and an
/// ordered index by (createdAt, id) for the default sort. Single-threaded.
class Store {
 public:
  explicit Store(std::uint64_t rng_seed);

  const Binding* find(std::string_view id) const;
  /// Bindings of one device, oldest first.
  std::vector<const Binding*> find_device(const std::string& canonical) const;

  struct Outcome {
    const Binding* binding = nullptr;   ///< the created/updated binding
    const Binding* conflict = nullptr;  ///< another binding already holds the device
  };
  Outcome create(BindingInput in, std::int64_t now_ms, bool allow_duplicate = false);
  /// nullopt when the id is unknown.
  std::optional<Outcome> update(std::string_view id, BindingInput in, std::int64_t now_ms,
                                bool allow_duplicate = false);
  bool erase(std::string_view id);
  void clear();
  std::size_t size() const { return by_id_.size(); }
  /// Increases with every change; the persister compares it.
  std::uint64_t version() const { return version_; }

  ListPage list(const ListQuery& q) const;
  /// Every binding in (createdAt, id) order.
  std::vector<const Binding*> all() const;

  /// Adds `n` generated bindings across all device kinds and three client IDs, created in
  /// the `n` milliseconds before `now_ms`.
  void seed(std::size_t n, std::int64_t now_ms);

  /// The persistence format: a JSON document with every field, passwords included.
  std::string dump() const;
  /// Replaces the content with a dump(); false (content unchanged) with `error` when malformed.
  bool load(std::string_view text, std::string& error);

  std::string new_uuid();
  std::mt19937_64& rng() { return rng_; }

 private:
  std::int64_t next_timestamp(std::int64_t now_ms);
  Binding& insert(Binding b);
  void index_device(const Binding& b);
  void unindex_device(const Binding& b);
  static void render(Binding& b);

  std::unordered_map<std::string, Binding> by_id_;
  std::unordered_map<std::string, std::vector<std::string>> by_device_;
  std::set<std::pair<std::int64_t, std::string>> by_created_;
  std::int64_t last_ts_ = 0;
  std::uint64_t version_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace thingsync::sim
