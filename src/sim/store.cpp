#include "store.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "thingsync/core/time.hpp"

namespace thingsync::sim {
namespace {

using Json = nlohmann::ordered_json;

// What a sort compares: a view of a binding or of a cursor's boundary.
struct KeyView {
  std::int64_t created, modified;
  std::string_view device, username, id;
};
KeyView key_of(const Binding& b) {
  return {b.created_at, b.modified_at, b.device.canonical(), b.username, b.id};
}
KeyView key_of(const Cursor& c) { return {c.created_at, c.modified_at, c.device, c.username, c.id}; }

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// A total order: the sort fields, then the id (in the direction of the first field) so
// that equal keys still have one fixed order.
class Order {
 public:
  explicit Order(const std::vector<SortKey>& keys) : keys_(keys) {
    if (keys_.empty()) keys_.push_back({SortField::kCreatedAt, false});
  }
  int cmp(const KeyView& a, const KeyView& b) const {
    for (const auto& k : keys_) {
      const int c = field_cmp(k.field, a, b);
      if (c != 0) return k.desc ? -c : c;
    }
    const int c = three_way(a.id, b.id);
    return keys_.front().desc ? -c : c;
  }
  bool by_created_only() const {
    return keys_.size() == 1 && keys_.front().field == SortField::kCreatedAt;
  }
  bool desc() const { return keys_.front().desc; }

 private:
  static int field_cmp(SortField f, const KeyView& a, const KeyView& b) {
    switch (f) {
      case SortField::kCreatedAt: return three_way(a.created, b.created);
      case SortField::kModifiedAt: return three_way(a.modified, b.modified);
      case SortField::kDeviceId: return three_way(a.device, b.device);
      case SortField::kUsername: return three_way(a.username, b.username);
      case SortField::kId: return three_way(a.id, b.id);
    }
    return 0;
  }
  std::vector<SortKey> keys_;
};

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto v = (std::uint32_t{static_cast<unsigned char>(in[i])} << 16) |
                   (std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8) |
                   std::uint32_t{static_cast<unsigned char>(in[i + 2])};
    for (int s : {18, 12, 6, 0}) out.push_back(kB64[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    const auto v = std::uint32_t{static_cast<unsigned char>(in[i])} << 16;
    for (int s : {18, 12}) out.push_back(kB64[(v >> s) & 63]);
  } else if (i + 2 == in.size()) {
    const auto v = (std::uint32_t{static_cast<unsigned char>(in[i])} << 16) |
                   (std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8);
    for (int s : {18, 12, 6}) out.push_back(kB64[(v >> s) & 63]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const auto pos = kB64.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

template <typename T>
bool parse_int(std::string_view s, T& out, int base = 10) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

void fnv(std::uint64_t& h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  h ^= 0xff;  // field separator
  h *= 1099511628211ULL;
}

constexpr std::array<std::string_view, 3> kSeedClients = {
    "3f1c2a9e-6b1d-4c2e-9a57-0d1e2f3a4b5c", "8a7b6c5d-4e3f-4a1b-8c2d-1e0f9a8b7c6d",
    "c0ffee00-1234-4abc-8def-0123456789ab"};

}  // namespace

bool ListFilter::matches(const Binding& b) const {
  if (client_id && b.client_id != *client_id) return false;
  if (device && b.device.canonical() != *device) return false;
  if (username && b.username != *username) return false;
  if (created_before && !(b.created_at < *created_before)) return false;
  if (created_since && !(b.created_at >= *created_since)) return false;
  if (modified_before && !(b.modified_at < *modified_before)) return false;
  if (modified_since && !(b.modified_at >= *modified_since)) return false;
  return true;
}

std::uint64_t ListFilter::digest() const {
  std::uint64_t h = 14695981039346656037ULL;
  auto opt = [&](const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::optional<std::string>>) {
      fnv(h, v ? "1" + *v : std::string("0"));
    } else {
      fnv(h, v ? "1" + std::to_string(*v) : std::string("0"));
    }
  };
  opt(client_id);
  opt(device);
  opt(username);
  opt(created_before);
  opt(created_since);
  opt(modified_before);
  opt(modified_since);
  return h;
}

std::string Cursor::encode() const {
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(filter_digest));
  std::string raw = "c1";
  for (const std::string& part :
       {std::string(backward ? "b" : "f"), std::to_string(page), sort, std::string(digest),
        std::to_string(created_at), std::to_string(modified_at), device, username, id}) {
    raw.push_back('\x1f');
    raw.append(part);
  }
  return base64url_encode(raw);
}

std::optional<Cursor> Cursor::decode(std::string_view text) {
  const auto raw = base64url_decode(text);
  if (!raw) return std::nullopt;
  std::vector<std::string_view> parts;
  std::string_view rest = *raw;
  for (;;) {
    const auto sep = rest.find('\x1f');
    parts.push_back(rest.substr(0, sep));
    if (sep == std::string_view::npos) break;
    rest.remove_prefix(sep + 1);
  }
  if (parts.size() != 10 || parts[0] != "c1" || (parts[1] != "f" && parts[1] != "b")) {
    return std::nullopt;
  }
  Cursor c;
  c.backward = parts[1] == "b";
  c.sort = parts[3];
  c.device = parts[7];
  c.username = parts[8];
  c.id = parts[9];
  if (!parse_int(parts[2], c.page) || c.page == 0 || !parse_int(parts[4], c.filter_digest, 16) ||
      !parse_int(parts[5], c.created_at) || !parse_int(parts[6], c.modified_at) ||
      !core::is_uuid(c.id)) {
    return std::nullopt;
  }
  return c;
}

std::optional<std::vector<SortKey>> parse_sort(std::string_view spec, std::string& error) {
  std::vector<SortKey> keys;
  for (;;) {
    const auto comma = spec.find(',');
    std::string_view name = spec.substr(0, comma);
    SortKey key{SortField::kId, false};
    if (!name.empty() && name.front() == '-') {
      key.desc = true;
      name.remove_prefix(1);
    }
    if (name == "createdAt") {
      key.field = SortField::kCreatedAt;
    } else if (name == "modifiedAt") {
      key.field = SortField::kModifiedAt;
    } else if (name == "deviceId") {
      key.field = SortField::kDeviceId;
    } else if (name == "username") {
      key.field = SortField::kUsername;
    } else if (name == "id") {
      key.field = SortField::kId;
    } else {
      error = "unknown sort field \"" + std::string(name) +
              "\" (allowed: createdAt, modifiedAt, deviceId, username, id; prefix - for "
              "descending)";
      return std::nullopt;
    }
    for (const auto& k : keys) {
      if (k.field == key.field) {
        error = "sort field \"" + std::string(name) + "\" is given twice";
        return std::nullopt;
      }
    }
    keys.push_back(key);
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return keys;
}

std::string sort_spec_string(const std::vector<SortKey>& keys) {
  static constexpr std::array<std::string_view, 5> kNames = {"createdAt", "modifiedAt",
                                                             "deviceId", "username", "id"};
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out.push_back(',');
    if (k.desc) out.push_back('-');
    out.append(kNames[static_cast<std::size_t>(k.field)]);
  }
  return out;
}

Store::Store(std::uint64_t rng_seed) : rng_(rng_seed) {}

std::string Store::new_uuid() {
  const std::uint64_t hi = rng_();
  const std::uint64_t lo = rng_();
  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 8; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(hi >> (56 - 8 * i));
    b[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(lo >> (56 - 8 * i));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}

std::int64_t Store::next_timestamp(std::int64_t now_ms) {
  // Strictly increasing, so that modifiedSince can tell any two changes apart.
  last_ts_ = std::max(now_ms, last_ts_ + 1);
  return last_ts_;
}

void Store::render(Binding& b) {
  Json j;
  j["id"] = b.id;
  j["deviceId"] = b.device_spelling;
  j["username"] = b.username;
  j["createdAt"] = core::format_iso8601_ms(b.created_at);
  j["createdBy"] = b.created_by;
  j["modifiedAt"] = core::format_iso8601_ms(b.modified_at);
  j["modifiedBy"] = b.modified_by;
  b.json = j.dump();
}

Binding& Store::insert(Binding b) {
  render(b);
  index_device(b);
  by_created_.emplace(b.created_at, b.id);
  last_ts_ = std::max({last_ts_, b.created_at, b.modified_at});
  ++version_;
  auto id = b.id;
  return by_id_.insert_or_assign(std::move(id), std::move(b)).first->second;
}

void Store::index_device(const Binding& b) {
  auto& ids = by_device_[b.device.canonical()];
  ids.push_back(b.id);
  // Oldest first: a device's bindings are few, so a sort on insert is cheap.
  std::sort(ids.begin(), ids.end(), [this, &b](const std::string& x, const std::string& y) {
    auto created = [&](const std::string& id) {
      if (id == b.id) return b.created_at;
      return by_id_.at(id).created_at;
    };
    return std::pair(created(x), x) < std::pair(created(y), y);
  });
}

void Store::unindex_device(const Binding& b) {
  auto it = by_device_.find(b.device.canonical());
  if (it == by_device_.end()) return;
  std::erase(it->second, b.id);
  if (it->second.empty()) by_device_.erase(it);
}

const Binding* Store::find(std::string_view id) const {
  auto it = by_id_.find(std::string(id));
  return it == by_id_.end() ? nullptr : &it->second;
}

std::vector<const Binding*> Store::find_device(const std::string& canonical) const {
  std::vector<const Binding*> out;
  if (auto it = by_device_.find(canonical); it != by_device_.end()) {
    for (const auto& id : it->second) out.push_back(&by_id_.at(id));
  }
  return out;
}

Store::Outcome Store::create(BindingInput in, std::int64_t now_ms, bool allow_duplicate) {
  if (!allow_duplicate) {
    if (auto it = by_device_.find(in.device.canonical()); it != by_device_.end()) {
      return {nullptr, &by_id_.at(it->second.front())};
    }
  }
  const auto ts = next_timestamp(now_ms);
  Binding b{new_uuid(), std::move(in.device_spelling), in.device, in.device.urn(),
            std::move(in.client_id), std::move(in.password), ts, ts, in.principal,
            in.principal, {}};
  return {&insert(std::move(b)), nullptr};
}

std::optional<Store::Outcome> Store::update(std::string_view id, BindingInput in,
                                            std::int64_t now_ms, bool allow_duplicate) {
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  Binding& b = it->second;
  const bool moves = b.device != in.device;
  if (moves && !allow_duplicate) {
    if (auto d = by_device_.find(in.device.canonical()); d != by_device_.end()) {
      return Outcome{nullptr, &by_id_.at(d->second.front())};
    }
  }
  if (moves) unindex_device(b);
  b.device_spelling = std::move(in.device_spelling);
  b.device = in.device;
  b.username = in.device.urn();
  if (in.password) b.password = std::move(in.password);  // omitted: the password stays
  b.modified_at = next_timestamp(now_ms);
  b.modified_by = std::move(in.principal);
  if (moves) index_device(b);
  render(b);
  ++version_;
  return Outcome{&b, nullptr};
}

bool Store::erase(std::string_view id) {
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return false;
  unindex_device(it->second);
  by_created_.erase({it->second.created_at, it->second.id});
  by_id_.erase(it);
  ++version_;
  return true;
}

void Store::clear() {
  by_id_.clear();
  by_device_.clear();
  by_created_.clear();
  ++version_;
}

std::vector<const Binding*> Store::all() const {
  std::vector<const Binding*> out;
  out.reserve(by_created_.size());
  for (const auto& [ts, id] : by_created_) out.push_back(&by_id_.at(id));
  return out;
}

ListPage Store::list(const ListQuery& q) const {
  const Order order(q.sort);
  const bool backward = q.cursor && q.cursor->backward;
  const std::optional<KeyView> bound =
      q.cursor ? std::optional<KeyView>(key_of(*q.cursor)) : std::nullopt;
  const std::size_t want = q.limit + 1;
  std::vector<const Binding*> got;  // in walk order: away from the bound
  bool other_side = false;          // a match on the far side of the bound exists

  if (order.by_created_only()) {
    // The index holds (createdAt, id) ascending; the order is that or its reverse.
    const bool walk_up = backward == order.desc();
    const std::pair<std::int64_t, std::string> key =
        bound ? std::pair(bound->created, std::string(bound->id))
              : std::pair(std::int64_t{0}, std::string());
    auto visit_up = [&](auto it, auto& out, std::size_t max) {
      for (; it != by_created_.end() && out.size() < max; ++it) {
        const Binding& b = by_id_.at(it->second);
        if (q.filter.matches(b)) out.push_back(&b);
      }
    };
    auto visit_down = [&](auto it, auto& out, std::size_t max) {
      while (it != by_created_.begin() && out.size() < max) {
        --it;
        const Binding& b = by_id_.at(it->second);
        if (q.filter.matches(b)) out.push_back(&b);
      }
    };
    std::vector<const Binding*> probe;
    if (walk_up) {
      visit_up(bound ? by_created_.upper_bound(key) : by_created_.begin(), got, want);
      if (bound) visit_down(by_created_.upper_bound(key), probe, 1);
    } else {
      visit_down(bound ? by_created_.lower_bound(key) : by_created_.end(), got, want);
      if (bound) visit_up(by_created_.lower_bound(key), probe, 1);
    }
    other_side = !probe.empty();
  } else {
    for (const auto& [id, b] : by_id_) {
      if (!q.filter.matches(b)) continue;
      if (!bound) {
        got.push_back(&b);
        continue;
      }
      const int c = order.cmp(key_of(b), *bound);
      if (backward ? c < 0 : c > 0) {
        got.push_back(&b);
      } else {
        other_side = true;
      }
    }
    auto away = [&](const Binding* a, const Binding* b) {
      const int c = order.cmp(key_of(*a), key_of(*b));
      return backward ? c > 0 : c < 0;
    };
    const auto n = std::min(want, got.size());
    std::partial_sort(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(n), got.end(),
                      away);
    got.resize(n);
  }

  ListPage page;
  page.page = q.cursor ? q.cursor->page : 1;
  const bool more = got.size() > q.limit;
  if (more) got.resize(q.limit);
  if (backward) std::reverse(got.begin(), got.end());
  page.items = std::move(got);

  auto cursor_at = [&](const Binding& b, bool back, std::uint32_t num) {
    Cursor c;
    c.backward = back;
    c.page = std::max<std::uint32_t>(num, 1);
    c.sort = q.sort_spec;
    c.filter_digest = q.filter.digest();
    c.created_at = b.created_at;
    c.modified_at = b.modified_at;
    c.device = b.device.canonical();
    c.username = b.username;
    c.id = b.id;
    return c;
  };
  const bool has_after = backward ? other_side : more;
  const bool has_before = backward ? more : other_side;
  if (!page.items.empty()) {
    if (has_after) page.next = cursor_at(*page.items.back(), false, page.page + 1);
    if (has_before) page.prev = cursor_at(*page.items.front(), true, page.page - 1);
  } else if (has_before && q.cursor) {
    Cursor c = *q.cursor;  // an empty page past the end still leads back
    c.backward = true;
    c.page = std::max<std::uint32_t>(page.page - 1, 1);
    page.prev = c;
  }
  return page;
}

void Store::seed(std::size_t n, std::int64_t now_ms) {
  for (std::size_t i = 0; i < n; ++i) {
    std::string spelling;
    char buf[40];
    switch (i % 4) {
      case 0:
        std::snprintf(buf, sizeof buf, "imei:35%013zu", i);
        spelling = buf;
        break;
      case 1:
        std::snprintf(buf, sizeof buf, "urn:dev:DEVEUI:%016llx:",
                      static_cast<unsigned long long>(0xea00000000000000ULL + i));
        spelling = buf;
        break;
      case 2: spelling = "dvnuuid:" + new_uuid(); break;
      default: spelling = new_uuid(); break;
    }
    auto device = core::DeviceId::parse(spelling);
    if (!device || by_device_.contains(device->canonical())) continue;
    const std::int64_t ts = now_ms - static_cast<std::int64_t>(n) + static_cast<std::int64_t>(i);
    char pw[40];
    std::snprintf(pw, sizeof pw, "Seed#Password-%010zu", i);
    insert(Binding{new_uuid(), spelling, *device, device->urn(),
                   std::string(kSeedClients[i % kSeedClients.size()]), std::string(pw), ts, ts,
                   "principal/seed", "principal/seed", {}});
  }
}

std::string Store::dump() const {
  Json items = Json::array();
  for (const Binding* b : all()) {
    Json j;
    j["id"] = b->id;
    j["deviceId"] = b->device_spelling;
    j["clientId"] = b->client_id;
    j["password"] = b->password ? Json(*b->password) : Json(nullptr);
    j["createdAt"] = b->created_at;
    j["modifiedAt"] = b->modified_at;
    j["createdBy"] = b->created_by;
    j["modifiedBy"] = b->modified_by;
    items.push_back(std::move(j));
  }
  Json doc;
  doc["format"] = "thingsync-sim/1";
  doc["bindings"] = std::move(items);
  return doc.dump(1);
}

bool Store::load(std::string_view text, std::string& error) {
  const Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("format", "") != "thingsync-sim/1" ||
      !doc.contains("bindings") || !doc["bindings"].is_array()) {
    error = "not a thingsync-sim data file";
    return false;
  }
  std::vector<Binding> loaded;
  try {
    for (const auto& j : doc["bindings"]) {
      const auto spelling = j.at("deviceId").get<std::string>();
      auto device = core::DeviceId::parse(spelling);
      const auto id = j.at("id").get<std::string>();
      if (!device || !core::is_uuid(id)) {
        error = "invalid binding " + id;
        return false;
      }
      std::optional<std::string> pw;
      if (j.contains("password") && j["password"].is_string()) pw = j["password"];
      loaded.push_back(Binding{id, spelling, *device, device->urn(),
                               j.at("clientId").get<std::string>(), pw,
                               j.at("createdAt").get<std::int64_t>(),
                               j.at("modifiedAt").get<std::int64_t>(),
                               j.at("createdBy").get<std::string>(),
                               j.at("modifiedBy").get<std::string>(), {}});
    }
  } catch (const Json::exception& e) {
    error = std::string("malformed binding: ") + e.what();
    return false;
  }
  clear();
  for (auto& b : loaded) insert(std::move(b));
  return true;
}

}  // namespace thingsync::sim
