#include "store.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "json_body.hpp"
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
  return {b.created_at, b.modified_at, b.device(), b.username(), b.id()};
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
  if (client_id && b.client_id() != *client_id) return false;
  if (device && b.device() != *device) return false;
  if (username && b.username() != *username) return false;
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
  std::string raw;
  raw.reserve(64 + sort.size() + device.size() + username.size() + id.size());
  char num[24];
  auto field = [&raw](std::string_view part) { raw.append(1, '\x1f').append(part); };
  auto number = [&](auto v, int base) {
    return std::string_view(num, static_cast<std::size_t>(std::to_chars(num, num + sizeof num, v, base).ptr - num));
  };
  raw.append("c1");
  field(backward ? "b" : "f");
  field(number(page, 10));
  field(sort);
  const std::string_view digest = number(filter_digest, 16);  // zero-padded to 16 digits
  raw.append(1, '\x1f').append(16 - digest.size(), '0').append(digest);
  field(number(created_at, 10));
  field(number(modified_at, 10));
  field(device);
  field(username);
  field(id);
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

void BindingIndex::insert(const Binding* b, std::uint64_t h) {
  reserve_one();
  std::size_t i = h & mask_;
  while (slots_[i].binding != nullptr) i = (i + 1) & mask_;
  slots_[i] = {h, b};
  ++size_;
}

void BindingIndex::erase(const Binding* b) {
  if (slots_.empty()) return;
  std::size_t i = hash(key_of_(*b)) & mask_;
  while (slots_[i].binding != b) {
    if (slots_[i].binding == nullptr) return;
    i = (i + 1) & mask_;
  }
  // Backward-shift deletion: move later members of the probe run into the hole when their
  // home slot does not lie cyclically in (hole, j].
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask_; slots_[j].binding != nullptr; j = (j + 1) & mask_) {
    const std::size_t home = slots_[j].hash & mask_;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = {};
  --size_;
}

void BindingIndex::replace(const Binding* old, const Binding* now) {
  if (slots_.empty()) return;
  for (std::size_t i = hash(key_of_(*old)) & mask_; slots_[i].binding != nullptr;
       i = (i + 1) & mask_) {
    if (slots_[i].binding == old) {
      slots_[i].binding = now;
      return;
    }
  }
}

const Binding* BindingIndex::find(std::string_view key) const {
  const Binding* found = nullptr;
  if (slots_.empty()) return found;
  const std::uint64_t h = hash(key);
  for (std::size_t i = h & mask_; slots_[i].binding != nullptr; i = (i + 1) & mask_) {
    if (slots_[i].hash == h && key_of_(*slots_[i].binding) == key) return slots_[i].binding;
  }
  return found;
}

void BindingIndex::clear() {
  slots_.clear();
  mask_ = 0;
  size_ = 0;
}

std::uint64_t BindingIndex::hash(std::string_view key) {
  // std::hash mixes well enough for linear probing on the low bits only after a finaliser.
  std::uint64_t h = std::hash<std::string_view>{}(key);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

void BindingIndex::grow() {
  // The new slots first: if they cannot be had (bad_alloc), the index stays as it was.
  std::vector<Slot> fresh(slots_.empty() ? 64 : slots_.size() * 2);
  const std::size_t mask = fresh.size() - 1;
  for (const Slot& s : slots_) {
    if (s.binding == nullptr) continue;
    std::size_t i = s.hash & mask;
    while (fresh[i].binding != nullptr) i = (i + 1) & mask;
    fresh[i] = s;
  }
  slots_.swap(fresh);
  mask_ = mask;
}

namespace {
// (createdAt, id) of `b` below the key.
bool below(const Binding& b, std::int64_t created, std::string_view id) {
  return b.created_at != created ? b.created_at < created : b.id() < id;
}
bool above(const Binding& b, std::int64_t created, std::string_view id) {
  return b.created_at != created ? b.created_at > created : b.id() > id;
}
}  // namespace

void CreatedIndex::destroy(Binding* b) {
  b->~Binding();
  ::operator delete(b);
}

void CreatedIndex::place(Binding* b, std::size_t i) {
  entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(i), b);
  for (std::size_t j = i; j < entries_.size(); ++j) {
    entries_[j]->created_pos_ = base_ + static_cast<std::uint32_t>(j);
  }
}

void CreatedIndex::insert(Binding* b) {
  std::size_t i = entries_.size();
  if (i > head_ && !below(*entries_.back(), b->created_at, b->id())) {
    i = upper_bound(b->created_at, b->id());
  }
  place(b, i);
}

void CreatedIndex::erase(Binding* b) {
  b->erased_ = true;
  ++erased_;
  if (b->created_pos_ - base_ == head_) {  // the oldest: free it and erased ones after it
    while (head_ < entries_.size() && entries_[head_]->erased_) {
      destroy(entries_[head_]);
      entries_[head_++] = nullptr;
      --erased_;
    }
    if (head_ * 2 > entries_.size()) {  // drop the freed front (amortised: it is half)
      entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(head_));
      base_ += static_cast<std::uint32_t>(head_);
      head_ = 0;
    }
  }
  // Erased ones elsewhere are freed once they are a quarter, so that a walk over the index
  // skips at most a few of them per live binding (amortised: the sweep costs four erases).
  if (erased_ > 256 && erased_ * 4 > entries_.size() - head_) sweep();
}

void CreatedIndex::replace(Binding* old, Binding* now) {
  entries_[old->created_pos_ - base_] = now;
  now->created_pos_ = old->created_pos_;
  destroy(old);
}

void CreatedIndex::sweep() {
  std::size_t kept = 0;
  for (std::size_t i = head_; i < entries_.size(); ++i) {
    Binding* b = entries_[i];
    if (b->erased_) {
      destroy(b);
      continue;
    }
    b->created_pos_ = base_ + static_cast<std::uint32_t>(kept);
    entries_[kept++] = b;
  }
  entries_.resize(kept);
  head_ = 0;
  erased_ = 0;
}

void CreatedIndex::restore_order() {
  sweep();
  auto less = [](const Binding* a, const Binding* b) { return below(*a, b->created_at, b->id()); };
  if (std::is_sorted(entries_.begin(), entries_.end(), less)) return;
  std::sort(entries_.begin(), entries_.end(), less);
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    entries_[i]->created_pos_ = base_ + static_cast<std::uint32_t>(i);
  }
}

void CreatedIndex::clear() {
  for (std::size_t i = head_; i < entries_.size(); ++i) destroy(entries_[i]);
  entries_.clear();
  head_ = 0;
  erased_ = 0;
}

std::size_t CreatedIndex::lower_bound(std::int64_t created, std::string_view id) const {
  const auto it =
      std::partition_point(entries_.begin() + static_cast<std::ptrdiff_t>(head_), entries_.end(),
                           [&](const Binding* b) { return below(*b, created, id); });
  return static_cast<std::size_t>(it - entries_.begin());
}

std::size_t CreatedIndex::upper_bound(std::int64_t created, std::string_view id) const {
  const auto it =
      std::partition_point(entries_.begin() + static_cast<std::ptrdiff_t>(head_), entries_.end(),
                           [&](const Binding* b) { return !above(*b, created, id); });
  return static_cast<std::size_t>(it - entries_.begin());
}

void IsoFormatter::append(std::string& out, std::int64_t ms) {
  const std::int64_t second = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  if (prefix_.empty() || second != second_) {
    std::string full = core::format_iso8601_ms(second * 1000);  // "….000Z"
    full.resize(full.size() - 5);
    prefix_ = std::move(full);
    second_ = second;
  }
  const auto milli = static_cast<unsigned>(ms - second * 1000);
  const char tail[5] = {'.', static_cast<char>('0' + milli / 100),
                        static_cast<char>('0' + milli / 10 % 10), static_cast<char>('0' + milli % 10),
                        'Z'};
  out.append(prefix_).append(tail, sizeof tail);
}

namespace {
std::string_view id_key(const Binding& b) { return b.id(); }
std::string_view device_key(const Binding& b) { return b.device(); }
}  // namespace

Store::Store(std::uint64_t rng_seed) : by_id_(id_key), by_device_(device_key), rng_(rng_seed) {}

Store::~Store() { clear(); }

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
  std::string out(36, '-');
  std::size_t o = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++o;
    out[o++] = kHex[b[i] >> 4];
    out[o++] = kHex[b[i] & 15];
  }
  return out;
}

std::int64_t Store::next_timestamp(std::int64_t now_ms) {
  // The server's clock, never going back, and shared by the changes of one millisecond as a
  // real API's would be: a clock that ran ahead of the wall clock under load (one change a
  // millisecond) would make every client's modifiedSince watermark, which must not pass the
  // server's Date, re-read minutes of changes after a burst.
  last_ts_ = std::max(now_ms, last_ts_);
  return last_ts_;
}

void Store::render(const Fields& f, std::string_view username) {
  std::string& o = json_;
  o.clear();
  // Written by hand when no string needs escaping (then byte for byte what nlohmann writes).
  if (json_plain(f.id) && json_plain(f.spelling) && json_plain(username) &&
      json_plain(*f.created_by) && json_plain(*f.modified_by)) {
    o.append(R"({"id":")").append(f.id);
    o.append(R"(","deviceId":")").append(f.spelling);
    o.append(R"(","username":")").append(username);
    o.append(R"(","createdAt":")");
    iso_.append(o, f.created_at);
    o.append(R"(","createdBy":")").append(*f.created_by);
    o.append(R"(","modifiedAt":")");
    iso_.append(o, f.modified_at);
    o.append(R"(","modifiedBy":")").append(*f.modified_by);
    o.append(R"("})");
    return;
  }
  Json j;
  j["id"] = f.id;
  j["deviceId"] = f.spelling;
  j["username"] = username;
  j["createdAt"] = core::format_iso8601_ms(f.created_at);
  j["createdBy"] = *f.created_by;
  j["modifiedAt"] = core::format_iso8601_ms(f.modified_at);
  j["modifiedBy"] = *f.modified_by;
  o = j.dump();
}

Binding* Store::make_binding(const Fields& f) {
  const std::string username = f.device.urn();
  render(f, username);
  const std::string_view json = json_;
  const std::string_view device = f.device.canonical();
  if (json.compare(Binding::kIdAt, Binding::kIdSize, f.id) != 0 ||
      std::max({f.spelling.size(), username.size(), device.size()}) > 0xffff) {
    throw std::logic_error("binding " + std::string(f.id) + " does not fit the store");
  }
  // The spelling and the username are where both ways of rendering put them unless they
  // needed escaping (device IDs never do); the device ID is often the spelling. What the
  // JSON does not hold verbatim goes after it and the password.
  const std::size_t spelling_at = Binding::kIdAt + Binding::kIdSize + 14;  // ","deviceId":"
  const std::size_t username_at = spelling_at + f.spelling.size() + 14;    // ","username":"
  const bool spelling_in = json.compare(spelling_at, f.spelling.size(), f.spelling) == 0;
  const bool username_in = json.compare(username_at, username.size(), username) == 0;
  const std::size_t device_in = json.find(device);
  const std::size_t password_size = f.password ? f.password->size() : 0;
  const std::size_t size = json.size() + password_size + (spelling_in ? 0 : f.spelling.size()) +
                           (username_in ? 0 : username.size()) +
                           (device_in != std::string_view::npos ? 0 : device.size());
  if (size > 0xfffffff0) throw std::length_error("binding too large");
  void* mem = ::operator new(sizeof(Binding) + size);
  auto* b = new (mem) Binding();
  char* text = b->text();
  std::size_t end = 0;
  auto put = [&](std::string_view part) {
    std::memcpy(text + end, part.data(), part.size());
    end += part.size();
    return static_cast<std::uint32_t>(end - part.size());
  };
  put(json);
  b->json_size_ = static_cast<std::uint32_t>(json.size());
  if (f.password) {
    put(*f.password);
    b->password_size_ = static_cast<std::uint32_t>(f.password->size());
  }
  b->spelling_at_ = spelling_in ? static_cast<std::uint32_t>(spelling_at) : put(f.spelling);
  b->username_at_ = username_in ? static_cast<std::uint32_t>(username_at) : put(username);
  b->device_at_ =
      device_in != std::string_view::npos ? static_cast<std::uint32_t>(device_in) : put(device);
  b->spelling_size_ = static_cast<std::uint16_t>(f.spelling.size());
  b->username_size_ = static_cast<std::uint16_t>(username.size());
  b->device_size_ = static_cast<std::uint16_t>(device.size());
  b->client_id_ = f.client_id;
  b->created_by_ = f.created_by;
  b->modified_by_ = f.modified_by;
  b->created_at = f.created_at;
  b->modified_at = f.modified_at;
  return b;
}

const std::string* Store::intern(std::string_view s) {
  if (last_interned_ != nullptr && s == *last_interned_) return last_interned_;
  auto it = interned_.find(s);
  if (it == interned_.end()) it = interned_.emplace(s).first;
  last_interned_ = &*it;
  return last_interned_;
}

const Binding& Store::insert(const Fields& f, bool bulk) {
  reserve_one();  // then nothing below allocates but make_binding, before any index changes
  Binding* b = make_binding(f);
  by_id_.insert(b);
  by_device_.insert(b);
  if (bulk) {
    by_created_.append(b);
  } else {
    by_created_.insert(b);
  }
  last_ts_ = std::max({last_ts_, b->created_at, b->modified_at});
  ++version_;
  return *b;
}

const Binding* Store::find(std::string_view id) const { return by_id_.find(id); }

std::vector<const Binding*> Store::find_device(std::string_view canonical) const {
  std::vector<const Binding*> out;
  by_device_.for_each(canonical, BindingIndex::hash(canonical),
                      [&](const Binding& b) { out.push_back(&b); });
  std::sort(out.begin(), out.end(), [](const Binding* x, const Binding* y) {
    return std::pair(x->created_at, x->id()) < std::pair(y->created_at, y->id());
  });
  return out;
}

namespace {
// The oldest binding of a device other than `except`, or nullptr; `h` is the hash of
// `canonical`.
const Binding* oldest_holder(const BindingIndex& by_device, std::string_view canonical,
                             std::uint64_t h, const Binding* except = nullptr) {
  const Binding* oldest = nullptr;
  by_device.for_each(canonical, h, [&](const Binding& b) {
    if (&b == except) return;
    if (!oldest || std::pair(b.created_at, b.id()) < std::pair(oldest->created_at, oldest->id())) {
      oldest = &b;
    }
  });
  return oldest;
}
}  // namespace

Store::Outcome Store::create(BindingInput in, std::int64_t now_ms, bool allow_duplicate) {
  const std::uint64_t h = BindingIndex::hash(in.device.canonical());
  if (!allow_duplicate) {
    if (const Binding* holder = oldest_holder(by_device_, in.device.canonical(), h)) {
      return {nullptr, holder};
    }
  }
  const auto ts = in.stamp ? *in.stamp : next_timestamp(now_ms);
  const std::string id = new_uuid();
  const std::uint64_t id_hash = BindingIndex::hash(id);
  reserve_one();
  by_id_.prefetch(id_hash);  // a random slot: its cache miss overlaps make_binding()
  const std::string* principal = intern(in.principal);
  Binding* b = make_binding({id, in.device_spelling, in.device, in.password, intern(in.client_id),
                             principal, principal, ts, ts});
  by_id_.insert(b, id_hash);
  by_device_.insert(b, h);
  by_created_.insert(b);  // the newest, at the end, unless stamped
  ++version_;
  return {b, nullptr};
}

std::optional<Store::Outcome> Store::update(std::string_view id, BindingInput in,
                                            std::int64_t now_ms, bool allow_duplicate) {
  auto* old = const_cast<Binding*>(by_id_.find(id));  // the store owns its bindings
  if (old == nullptr) return std::nullopt;
  const bool moves = old->device() != in.device.canonical();
  if (moves && !allow_duplicate) {
    if (const Binding* holder = oldest_holder(by_device_, in.device.canonical(),
                                              BindingIndex::hash(in.device.canonical()), old)) {
      return Outcome{nullptr, holder};
    }
  }
  // A new block replaces the old one in every index (the password stays when omitted).
  if (moves) by_device_.reserve_one();
  // A write stamps its binding with the clock, and never with the time it had: 1 ms on when the
  // clock has not moved since. (A binding stamped in the future by a skewed node gets today's
  // time, as a server with a right clock would give it; it does not drag the clock along.)
  std::int64_t ts = 0;
  if (in.stamp) {
    ts = *in.stamp;
  } else {
    ts = next_timestamp(now_ms);
    if (ts == old->modified_at) last_ts_ = ++ts;
  }
  Binding* b = make_binding({old->id(), in.device_spelling, in.device,
                             in.password ? in.password : old->password(), old->client_id_,
                             old->created_by_, intern(in.principal), old->created_at, ts});
  by_id_.replace(old, b);
  if (moves) {
    by_device_.erase(old);
    by_device_.insert(b);
  } else {
    by_device_.replace(old, b);
  }
  by_created_.replace(old, b);
  ++version_;
  return Outcome{b, nullptr};
}

void Store::reserve_one() {
  by_id_.reserve_one();
  by_device_.reserve_one();
  by_created_.reserve_one();
}

bool Store::erase(std::string_view id) {
  const Binding* b = by_id_.find(id);
  if (b == nullptr) return false;
  erase(b);
  return true;
}

void Store::erase(const Binding* b) {
  by_id_.erase(b);
  by_device_.erase(b);
  by_created_.erase(const_cast<Binding*>(b));  // the store owns its bindings
  ++version_;
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
  for (std::size_t i = by_created_.begin(); i < by_created_.end(); ++i) {
    if (!by_created_.at(i)->erased_) out.push_back(by_created_.at(i));
  }
  return out;
}

ListPage Store::list(const ListQuery& q) const {
  const Order order(q.sort);
  const bool backward = q.cursor && q.cursor->backward;
  // A flag and a plain value, not std::optional<KeyView>: GCC 12 at -O3 takes the optional's
  // payload for maybe-uninitialized where it is only read behind has_value() (a false warning).
  const bool bounded = q.cursor.has_value();
  const KeyView bound = bounded ? key_of(*q.cursor) : KeyView{};
  const std::size_t want = q.limit + 1;
  std::vector<const Binding*> got;  // in walk order: away from the bound
  bool other_side = false;          // a match on the far side of the bound exists

  if (order.by_created_only()) {
    // The index holds (createdAt, id) ascending; the order is that or its reverse.
    const bool walk_up = backward == order.desc();
    const auto& index = by_created_;
    auto visit_up = [&](std::size_t i, auto& out, std::size_t max) {
      for (; i < index.end() && out.size() < max; ++i) {
        const Binding& b = *index.at(i);
        if (!b.erased_ && q.filter.matches(b)) out.push_back(&b);
      }
    };
    auto visit_down = [&](std::size_t i, auto& out, std::size_t max) {
      while (i > index.begin() && out.size() < max) {
        const Binding& b = *index.at(--i);
        if (!b.erased_ && q.filter.matches(b)) out.push_back(&b);
      }
    };
    std::vector<const Binding*> probe;
    if (walk_up) {
      const std::size_t from = bounded ? index.upper_bound(bound.created, bound.id) : index.begin();
      visit_up(from, got, want);
      if (bounded) visit_down(from, probe, 1);
    } else {
      const std::size_t from = bounded ? index.lower_bound(bound.created, bound.id) : index.end();
      visit_down(from, got, want);
      if (bounded) visit_up(from, probe, 1);
    }
    other_side = !probe.empty();
  } else {
    for (std::size_t i = by_created_.begin(); i < by_created_.end(); ++i) {
      const Binding& b = *by_created_.at(i);
      if (b.erased_ || !q.filter.matches(b)) continue;
      if (!bounded) {
        got.push_back(&b);
        continue;
      }
      const int c = order.cmp(key_of(b), bound);
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
    c.device = b.device();
    c.username = b.username();
    c.id = b.id();
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

void Store::seed(std::size_t n, std::int64_t now_ms, void (*progress)()) {
  for (std::size_t i = 0; i < n; ++i) {
    if (progress && i % 1024 == 0) progress();
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
    if (!device || by_device_.find(device->canonical()) != nullptr) continue;
    const std::int64_t ts = now_ms - static_cast<std::int64_t>(n) + static_cast<std::int64_t>(i);
    char pw[40];
    std::snprintf(pw, sizeof pw, "Seed#Password-%010zu", i);
    const std::string id = new_uuid();
    const std::string* principal = intern("principal/seed");
    insert({id, spelling, *device, std::string_view(pw),
            intern(kSeedClients[i % kSeedClients.size()]), principal, principal, ts, ts},
           true);
  }
  by_created_.restore_order();  // the store may have held newer bindings
}

std::string Store::dump() const {
  Json items = Json::array();
  for (const Binding* b : all()) {
    Json j;
    j["id"] = b->id();
    j["deviceId"] = b->device_spelling();
    j["clientId"] = b->client_id();
    j["password"] = b->password() ? Json(*b->password()) : Json(nullptr);
    j["createdAt"] = b->created_at;
    j["modifiedAt"] = b->modified_at;
    j["createdBy"] = b->created_by();
    j["modifiedBy"] = b->modified_by();
    items.push_back(std::move(j));
  }
  Json doc;
  doc["format"] = "thingsync-sim/1";
  // The store's clock: not the newest time in the bindings, which may be a stamped one.
  doc["clock"] = last_ts_;
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
  // Files written before stamped times existed have no clock: the newest time in them is it.
  std::optional<std::int64_t> clock;
  if (doc.contains("clock")) {
    if (!doc["clock"].is_number_integer()) {
      error = "clock must be an integer";
      return false;
    }
    clock = doc["clock"].get<std::int64_t>();
  }
  // Read whole first: a malformed file leaves the content unchanged.
  struct Loaded {
    std::string id, spelling;
    core::DeviceId device;
    std::optional<std::string> password;
    const std::string* client_id;
    std::int64_t created_at, modified_at;
    const std::string *created_by, *modified_by;
  };
  std::vector<Loaded> loaded;
  try {
    for (const auto& j : doc["bindings"]) {
      auto spelling = j.at("deviceId").get<std::string>();
      auto device = core::DeviceId::parse(spelling);
      auto id = j.at("id").get<std::string>();
      if (!device || !core::is_uuid(id)) {
        error = "invalid binding " + id;
        return false;
      }
      std::optional<std::string> pw;
      if (j.contains("password") && j["password"].is_string()) pw = j["password"];
      loaded.push_back({std::move(id), std::move(spelling), std::move(*device), std::move(pw),
                        intern(j.at("clientId").get<std::string>()),
                        j.at("createdAt").get<std::int64_t>(),
                        j.at("modifiedAt").get<std::int64_t>(),
                        intern(j.at("createdBy").get<std::string>()),
                        intern(j.at("modifiedBy").get<std::string>())});
    }
  } catch (const Json::exception& e) {
    error = std::string("malformed binding: ") + e.what();
    return false;
  }
  const std::int64_t clock_before = last_ts_;
  clear();
  for (const Loaded& l : loaded) {
    erase(l.id);  // a repeated id: the later entry wins
    insert({l.id, l.spelling, l.device, l.password, l.client_id, l.created_by, l.modified_by,
            l.created_at, l.modified_at},
           true);
  }
  by_created_.restore_order();
  if (clock) last_ts_ = std::max(clock_before, *clock);
  return true;
}

}  // namespace thingsync::sim
