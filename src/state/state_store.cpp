#include "thingsync/state/state_store.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <random>

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "thingsync/core/password.hpp"

namespace thingsync::state {
namespace {

using json = nlohmann::json;
constexpr std::string_view kFormat = "thingsync-state";
// Version 4 adds the deletes waiting for their grace ("tombstones") and the approvals used.
// Version 3 adds each binding's receipt; files (and journals) of version 2 and older load with
// none. Version 2 writes 8-byte fingerprints (16 hex digits); version 1 wrote 16 bytes, whose
// first 8 are the same fingerprint: such files load as they are.
constexpr int kVersion = 4;
constexpr int kOldestVersion = 1;

Error corrupt(const std::string& s, const std::string& why) {
  return Error{"state file " + s + " is corrupt: " + why +
               ". thingsync does not guess: move it aside (mv " + s + " " + s +
               ".broken) and run again; the next apply then re-sends each binding's password "
               "once (first adoption), nothing else is lost"};
}

// Appends `s` as a JSON string literal.
void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> unhex(std::string_view h) {
  if (h.size() % 2 != 0) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(h.size() / 2);
  for (std::size_t i = 0; i < h.size(); i += 2) {
    const int hi = val(h[i]);
    const int lo = val(h[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// Streams the snapshot into the store's maps without building a DOM (a million bindings
// would cost hundreds of MiB as nlohmann::json nodes).
class SnapshotReader : public json::json_sax_t {
 public:
  struct Out {
    std::string format;
    int version = 0;
    std::string salt_hex;
    std::optional<std::string> api, scope;  // the owner (version 3 files from 0.2 on)
    /// Takes each binding (id, device, fingerprint, receipt) as it is read, so that a million
    /// of them are never held twice; returns an error, or "" when it took it.
    std::function<std::string(const std::string&, const std::string&, const std::string&,
                              std::int64_t)>
        binding;
    std::vector<std::pair<std::string, std::int64_t>> pending;
    std::vector<std::tuple<std::string, FailureRecord>> failures;
    // id, device, since, confirmed
    std::vector<std::tuple<std::string, std::string, std::int64_t, std::int64_t>> tombstones;
    std::vector<std::pair<std::string, std::int64_t>> approvals;
  };
  explicit SnapshotReader(Out& out) : out_(out) {}

  bool null() override { return fail("unexpected null"); }
  bool boolean(bool) override { return fail("unexpected boolean"); }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return integer(static_cast<std::int64_t>(v));
  }
  bool number_float(number_float_t, const string_t&) override {
    return fail("unexpected number");
  }
  bool binary(binary_t&) override { return fail("unexpected binary"); }
  bool string(string_t& s) override {
    // A time or a count written as text is not read as 0: the file is corrupt (a tombstone
    // read as "since 0" would let its delete go at once).
    if (depth_ == 3 && section_ != Section::kNone && section_ != Section::kPending &&
        (key_[3] == "since" || key_[3] == "confirmed" || key_[3] == "used" ||
         key_[3] == "receipt" || key_[3] == "failures" || key_[3] == "nextAttemptMs")) {
      return fail("'" + key_[3] + "' of " + key_[2] + " is not a number");
    }
    if (depth_ == 3 && section_ == Section::kPending && key_[3] == "since") {
      return fail("'since' of a pending create is not a number");
    }
    if (depth_ == 1 && key_[1] == "format") {
      out_.format = s;
    } else if (depth_ == 1 && key_[1] == "salt") {
      out_.salt_hex = s;
    } else if (depth_ == 1 && key_[1] == "api") {
      out_.api = s;
    } else if (depth_ == 1 && key_[1] == "scope") {
      out_.scope = s;
    } else if (depth_ == 3 && section_ == Section::kBindings) {
      (key_[3] == "device" ? device_ : key_[3] == "fp" ? fp_ : ignored_) = s;
    } else if (depth_ == 3 && section_ == Section::kPending && key_[3] == "device") {
      device_ = s;
    } else if (depth_ == 3 && section_ == Section::kFailures && key_[3] == "lastError") {
      failure_.last_error = s;
    } else if (depth_ == 3 && section_ == Section::kTombstones && key_[3] == "device") {
      device_ = s;
    }
    return true;
  }
  bool start_object(std::size_t) override {
    ++depth_;
    if (depth_ == 3) {
      device_.clear();
      fp_.clear();
      since_ = 0;
      receipt_ = 0;
      failure_ = {};
      confirmed_ = 0;
      used_ = 0;
    }
    return depth_ <= 3 || fail("nesting too deep");
  }
  bool end_object() override {
    if (depth_ == 3) {
      if (section_ == Section::kBindings) {
        if (auto why = out_.binding(key_[2], device_, fp_, receipt_); !why.empty()) {
          return fail(why);
        }
      }
      if (section_ == Section::kPending) out_.pending.emplace_back(device_, since_);
      if (section_ == Section::kFailures) out_.failures.emplace_back(key_[2], failure_);
      if (section_ == Section::kTombstones) {
        out_.tombstones.emplace_back(key_[2], device_, since_, confirmed_);
      }
      if (section_ == Section::kApprovals) out_.approvals.emplace_back(key_[2], used_);
    }
    if (depth_ == 2) section_ = Section::kNone;
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    if (depth_ == 2 && key_[1] == "pending") {
      section_ = Section::kPending;
      return true;
    }
    return fail("unexpected array");
  }
  bool end_array() override {
    section_ = Section::kNone;
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ > 3) return fail("nesting too deep");
    key_[static_cast<std::size_t>(depth_)] = k;
    if (depth_ == 1) {
      section_ = k == "bindings"     ? Section::kBindings
                 : k == "failures"   ? Section::kFailures
                 : k == "tombstones" ? Section::kTombstones
                 : k == "approvals"  ? Section::kApprovals
                                     : Section::kNone;
    }
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = "byte " + std::to_string(pos) + ": " + e.what();
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  enum class Section { kNone, kBindings, kPending, kFailures, kTombstones, kApprovals };
  bool integer(std::int64_t v) {
    if (depth_ == 1 && key_[1] == "version") out_.version = static_cast<int>(v);
    if (depth_ == 3 && section_ == Section::kPending && key_[3] == "since") since_ = v;
    if (depth_ == 3 && section_ == Section::kBindings && key_[3] == "receipt") receipt_ = v;
    if (depth_ == 3 && section_ == Section::kTombstones) {
      if (key_[3] == "since") since_ = v;
      if (key_[3] == "confirmed") confirmed_ = v;
    }
    if (depth_ == 3 && section_ == Section::kApprovals && key_[3] == "used") used_ = v;
    if (depth_ == 3 && section_ == Section::kFailures) {
      if (key_[3] == "failures") failure_.failures = static_cast<std::uint32_t>(v);
      if (key_[3] == "nextAttemptMs") failure_.next_attempt_ms = v;
    }
    return true;
  }
  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }
  Out& out_;
  int depth_ = 0;
  Section section_ = Section::kNone;
  std::string key_[4];
  std::string device_, fp_, ignored_;
  std::int64_t since_ = 0;
  std::int64_t receipt_ = 0;
  std::int64_t confirmed_ = 0;
  std::int64_t used_ = 0;
  FailureRecord failure_;
  std::string error_;
};

}  // namespace

StateStore::StateStore(std::shared_ptr<Medium> medium) : medium_(std::move(medium)) {}

StateStore::~StateStore() = default;

std::string StateStore::random_salt() {
  std::string salt(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
      1) {
    std::random_device rd;  // OpenSSL's RNG failing is near impossible; still never a fixed salt
    for (auto& c : salt) c = static_cast<char>(rd());
  }
  return salt;
}

Result<std::unique_ptr<StateStore>> StateStore::open(const std::filesystem::path& path,
                                                      const std::string& fresh_salt) {
  auto s = open(std::make_shared<FileMedium>(path), fresh_salt);
  if (s) s.value()->path_ = path;
  return s;
}

Result<std::unique_ptr<StateStore>> StateStore::open(std::shared_ptr<Medium> medium,
                                                      const std::string& fresh_salt) {
  std::unique_ptr<StateStore> s(new StateStore(std::move(medium)));
  bool existed = false;
  if (auto r = s->load_snapshot(existed); !r) return Result<std::unique_ptr<StateStore>>::failure(r.error());
  if (!existed) s->salt_ = fresh_salt;
  s->existed_ = existed;
  // A snapshot of an older version is rewritten before the first journal append: a journal of
  // today's records behind an old snapshot would be unreadable to the version that wrote it.
  s->on_disk_ = existed && s->version_ == kVersion;
  if (auto r = s->replay_journal(); !r) return Result<std::unique_ptr<StateStore>>::failure(r.error());
  return s;
}

Result<Ok> StateStore::load_snapshot(bool& existed) {
  auto read = medium_->read_snapshot();
  if (!read) return Result<Ok>::failure(read.error());
  existed = *read != nullptr;
  if (!existed) return Ok{};
  std::istream& text = **read;
  const std::string name = medium_->snapshot_name();

  SnapshotReader::Out out;
  // The first bad binding, reported after the format and version checks: a file of a newer
  // thingsync may hold records this one cannot read, and must not be called corrupt for it.
  std::string bad_binding;
  out.binding = [this, &bad_binding](const std::string& id, const std::string& device,
                                     const std::string& fp_hex,
                                     std::int64_t receipt_ms) -> std::string {
    if (!bad_binding.empty()) return {};
    auto dev = core::DeviceId::parse(device);
    core::Fingerprint fp{};
    if (!dev) {
      bad_binding = "binding " + id + ": bad device ID";
    } else if (!core::from_hex(fp_hex, fp)) {
      bad_binding = "binding " + id + ": bad fingerprint";
    } else {
      put_applied(id, *dev, fp, receipt_ms);
    }
    return {};
  };
  SnapshotReader reader(out);
  if (!json::sax_parse(text, &reader)) return Result<Ok>::failure(corrupt(name, reader.error()));
  if (out.format != kFormat) {
    return Result<Ok>::failure(corrupt(name, "not a thingsync state file"));
  }
  if (out.version > kVersion) {
    return Result<Ok>::failure(
        Error{"state file " + name + " was written by a newer thingsync (state version " +
              std::to_string(out.version) + "; this one reads versions " +
              std::to_string(kOldestVersion) + " to " + std::to_string(kVersion) +
              "): run that version or a newer one. Do not move the file aside: that would "
              "re-send every binding's password"});
  }
  if (out.version < kOldestVersion) {
    return Result<Ok>::failure(corrupt(name, "unsupported version " + std::to_string(out.version)));
  }
  if (!bad_binding.empty()) return Result<Ok>::failure(corrupt(name, bad_binding));
  version_ = out.version;
  if (out.api) owner_ = Owner{*out.api, out.scope.value_or("")};
  auto salt = unhex(out.salt_hex);
  if (!salt || salt->size() < 16) return Result<Ok>::failure(corrupt(name, "missing or bad salt"));
  salt_ = std::move(*salt);

  applied_.shrink_to_fit();
  for (auto& [device, since] : out.pending) {
    auto dev = core::DeviceId::parse(device);
    if (!dev) return Result<Ok>::failure(corrupt(name, "pending create: bad device ID"));
    pending_.insert_or_assign(dev->canonical(), PendingCreate{*dev, since});
  }
  for (auto& [device, rec] : out.failures) {
    auto dev = core::DeviceId::parse(device);
    if (!dev) return Result<Ok>::failure(corrupt(name, "failure record: bad device ID"));
    failures_.insert_or_assign(dev->canonical(), std::move(rec));
  }
  for (auto& [id, device, since, confirmed] : out.tombstones) {
    auto dev = core::DeviceId::parse(device);
    if (!dev || id.empty()) return Result<Ok>::failure(corrupt(name, "tombstone: bad device ID"));
    tombstones_.insert_or_assign(id, core::Tombstone{id, *dev, since, confirmed});
  }
  for (auto& [hash, used] : out.approvals) approvals_.insert_or_assign(hash, used);
  return Ok{};
}

Result<Ok> StateStore::replay_journal() {
  auto opened = medium_->read_journal();
  if (!opened) return Result<Ok>::failure(opened.error());
  if (!*opened) return Ok{};
  std::istream& in = **opened;
  std::string line;
  std::size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    const bool last = in.peek() == std::char_traits<char>::eof();
    if (auto r = apply_line(line); !r) {
      // A torn final line is a write that never completed, so never acknowledged: drop it,
      // and rewrite the files before the next append lands behind it.
      if (last) {
        rewrite_ = true;
        break;
      }
      return Result<Ok>::failure(corrupt(
          medium_->journal_name(), "line " + std::to_string(lineno) + ": " + r.error().message));
    }
    ++journal_records_;
  }
  return Ok{};
}

Result<Ok> StateStore::apply_line(std::string_view line) {
  const auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Result<Ok>::failure(Error{"not a JSON object"});
  const auto str = [&](const char* k) -> std::string {
    const auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
  };
  const auto num = [&](const char* k) -> std::int64_t {
    const auto it = j.find(k);
    return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  };
  const std::string a = str("a");
  const auto device = core::DeviceId::parse(str("device"));
  if (a == "applied") {
    core::Fingerprint fp{};
    if (!device || !core::from_hex(str("fp"), fp) || str("id").empty()) {
      return Result<Ok>::failure(Error{"bad applied record"});
    }
    put_applied(str("id"), *device, fp, num("receipt"));
  } else if (a == "receipt") {
    if (str("id").empty()) return Result<Ok>::failure(Error{"bad receipt record"});
    put_receipt(str("id"), num("receipt"));
  } else if (a == "forget") {
    erase_applied(str("id"));
  } else if (a == "pending" && device) {
    pending_.insert_or_assign(device->canonical(), PendingCreate{*device, num("since")});
  } else if (a == "resolved" && device) {
    pending_.erase(device->canonical());
  } else if (a == "failure" && device) {
    failures_.insert_or_assign(
        device->canonical(),
        FailureRecord{static_cast<std::uint32_t>(num("failures")), num("next"), str("error")});
  } else if (a == "cleared" && device) {
    failures_.erase(device->canonical());
  } else if (a == "tombstone" && (!j.contains("since") || !j["since"].is_number_integer() ||
                                  !j.contains("confirmed") ||
                                  !j["confirmed"].is_number_integer())) {
    return Result<Ok>::failure(Error{"bad tombstone record"});
  } else if (a == "tombstone" && device && !str("id").empty()) {
    tombstones_.insert_or_assign(str("id"),
                                 core::Tombstone{str("id"), *device, num("since"), num("confirmed")});
  } else if (a == "untombstone") {
    tombstones_.erase(str("id"));
  } else if (a == "approval" && !str("hash").empty()) {
    approvals_.insert_or_assign(str("hash"), num("used"));
  } else {
    return Result<Ok>::failure(Error{"unknown record"});
  }
  return Ok{};
}

// A binding is held in exactly one of applied_ and odd_applied_; a new receipt may move it.
void StateStore::put_applied(const std::string& binding_id, const core::DeviceId& device,
                             const core::Fingerprint& fp, std::int64_t receipt_ms) {
  const auto id = core::pack_uuid(binding_id);
  if (!id || !core::PackedMillis::fits(receipt_ms)) {
    if (id) applied_.erase(*id);
    odd_applied_.insert_or_assign(binding_id, Applied{device, fp, receipt_ms});
    return;
  }
  if (!odd_applied_.empty()) odd_applied_.erase(binding_id);
  const AppliedRec rec{*id, fp, core::PackedDevice(device), core::PackedMillis(receipt_ms)};
  auto [at, added] = applied_.insert(rec);
  if (!added) *at = rec;
}

bool StateStore::erase_applied(const std::string& binding_id) {
  const auto id = core::pack_uuid(binding_id);
  if (id && applied_.erase(*id)) return true;
  return !odd_applied_.empty() && odd_applied_.erase(binding_id) > 0;
}

std::vector<core::AppliedBinding> StateStore::applied() const {
  std::vector<core::AppliedBinding> out;
  out.reserve(size());
  for (const auto& r : applied_.records()) {
    out.push_back({core::unpack_uuid(r.id), r.device.unpack(), r.fp, r.receipt.get()});
  }
  for (const auto& [id, a] : odd_applied_) out.push_back({id, a.device, a.fp, a.receipt_ms});
  std::sort(out.begin(), out.end(),
            [](const auto& x, const auto& y) { return x.binding_id < y.binding_id; });
  return out;
}

core::AppliedList StateStore::applied_list() const {
  core::AppliedList out{std::span<const core::AppliedRecord>(applied_.records())};
  out.reserve(odd_applied_.size());
  for (const auto& [id, a] : odd_applied_) out.add({id, a.device, a.fp, a.receipt_ms});
  return out;
}

std::optional<core::AppliedBinding> StateStore::find(const std::string& binding_id) const {
  if (const auto id = core::pack_uuid(binding_id)) {
    if (const AppliedRec* r = applied_.find(*id)) {
      return core::AppliedBinding{binding_id, r->device.unpack(), r->fp, r->receipt.get()};
    }
  }
  if (odd_applied_.empty()) return std::nullopt;
  const auto it = odd_applied_.find(binding_id);
  if (it == odd_applied_.end()) return std::nullopt;
  const Applied& a = it->second;
  return core::AppliedBinding{it->first, a.device, a.fp, a.receipt_ms};
}

std::vector<PendingCreate> StateStore::pending() const {
  std::vector<PendingCreate> out;
  for (const auto& [k, p] : pending_) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.device < b.device; });
  return out;
}

// Empties the journal buffer; a large one (a pass of many operations) gives its memory back
// rather than staying resident for the daemon's life.
void StateStore::release_journal_buffer() {
  if (journal_buffer_.capacity() > (std::size_t{1} << 20)) {
    std::string().swap(journal_buffer_);
  } else {
    journal_buffer_.clear();
  }
}

void StateStore::append(std::string line) {
  journal_buffer_ += line;
  journal_buffer_.push_back('\n');
}

void StateStore::record_applied(const std::string& binding_id, const core::DeviceId& device,
                                const core::Fingerprint& fp, std::int64_t receipt_ms) {
  put_applied(binding_id, device, fp, receipt_ms);
  std::string line = R"({"a":"applied","id":)";
  append_quoted(line, binding_id);
  line += R"(,"device":)";
  append_quoted(line, device.canonical());
  line += R"(,"fp":")" + core::to_hex(fp) + R"(","receipt":)" + std::to_string(receipt_ms) + "}";
  append(std::move(line));
}

bool StateStore::put_receipt(const std::string& binding_id, std::int64_t receipt_ms) {
  const auto a = find(binding_id);
  if (!a || a->receipt_ms == receipt_ms) return false;
  put_applied(binding_id, a->device, a->password_fp, receipt_ms);
  return true;
}

void StateStore::set_receipt(const std::string& binding_id, std::int64_t receipt_ms) {
  if (!put_receipt(binding_id, receipt_ms)) return;
  std::string line = R"({"a":"receipt","id":)";
  append_quoted(line, binding_id);
  append(line + ",\"receipt\":" + std::to_string(receipt_ms) + "}");
}

void StateStore::forget(const std::string& binding_id) {
  // A binding gone needs no tombstone either.
  if (tombstones_.erase(binding_id) > 0) {
    std::string line = R"({"a":"untombstone","id":)";
    append_quoted(line, binding_id);
    append(line + "}");
  }
  if (!erase_applied(binding_id)) return;
  std::string line = R"({"a":"forget","id":)";
  append_quoted(line, binding_id);
  append(line + "}");
}

void StateStore::begin_create(const core::DeviceId& device, std::int64_t now_ms) {
  pending_.insert_or_assign(device.canonical(), PendingCreate{device, now_ms});
  std::string line = R"({"a":"pending","device":)";
  append_quoted(line, device.canonical());
  append(line + ",\"since\":" + std::to_string(now_ms) + "}");
}

void StateStore::end_create(const core::DeviceId& device) {
  if (pending_.erase(device.canonical()) == 0) return;
  std::string line = R"({"a":"resolved","device":)";
  append_quoted(line, device.canonical());
  append(line + "}");
}

void StateStore::record_failure(const core::DeviceId& device, std::string error,
                                std::int64_t now_ms, std::int64_t base_ms, std::int64_t cap_ms) {
  auto& rec = failures_[device.canonical()];
  rec.failures = std::min<std::uint32_t>(rec.failures + 1, 62);
  std::int64_t delay = base_ms;
  for (std::uint32_t i = 1; i < rec.failures && delay < cap_ms; ++i) delay *= 2;
  rec.next_attempt_ms = now_ms + std::min(delay, cap_ms);
  rec.last_error = std::move(error);
  std::string line = R"({"a":"failure","device":)";
  append_quoted(line, device.canonical());
  line += ",\"failures\":" + std::to_string(rec.failures) +
          ",\"next\":" + std::to_string(rec.next_attempt_ms) + ",\"error\":";
  append_quoted(line, rec.last_error);
  append(line + "}");
}

void StateStore::clear_failure(const core::DeviceId& device) {
  if (failures_.erase(device.canonical()) == 0) return;
  std::string line = R"({"a":"cleared","device":)";
  append_quoted(line, device.canonical());
  append(line + "}");
}

namespace {

// One spelling per API: scheme and host in lower case, no default port, no trailing slash
// ("HTTPS://API.example:443/" is "https://api.example"). The path keeps its case.
std::string normalized_api(std::string_view url) {
  std::string api(url);
  while (api.size() > 1 && api.back() == '/') api.pop_back();
  const auto scheme_end = api.find("://");
  if (scheme_end == std::string::npos) return api;
  const auto host_end = std::min(api.find('/', scheme_end + 3), api.size());
  std::transform(api.begin(), api.begin() + static_cast<std::ptrdiff_t>(host_end), api.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string_view scheme(api.data(), scheme_end);
  const std::string_view port = scheme == "https" ? ":443" : scheme == "http" ? ":80" : "";
  const std::string_view authority(api.data() + scheme_end + 3, host_end - scheme_end - 3);
  if (!port.empty() && authority.ends_with(port)) api.erase(host_end - port.size(), port.size());
  return api;
}

}  // namespace

Result<Ok> StateStore::claim(std::string_view api_base_url, std::string_view scope) {
  std::string api = normalized_api(api_base_url);
  if (!owner_) {
    owner_ = Owner{std::move(api), std::string(scope)};
    on_disk_ = false;  // the next flush writes a snapshot that says whose it is
    return Ok{};
  }
  if (normalized_api(owner_->api) == api && owner_->scope == scope) return Ok{};
  const std::string name = medium_->snapshot_name();
  auto describe = [](const std::string& a, const std::string& s) {
    return a + (s.empty() ? " (no scope)" : " scope " + s);
  };
  return Result<Ok>::failure(Error{
      "state file " + name + " belongs to " + describe(owner_->api, owner_->scope) +
      ", not to " + describe(api, std::string(scope)) +
      ": its records name that API's bindings. If it is the same API spelled otherwise, spell "
      "api.baseUrl as the state file does. Else give this API its own state.path; or, to take "
      "this API's bindings over afresh (one password PUT per binding, nothing else lost), move "
      "the file and its journal aside: mv " + name + " " + name + ".other; mv " +
      medium_->journal_name() + " " + medium_->journal_name() + ".other"});
}

void StateStore::retain_only(const core::BindingIdSet& live) {
  std::vector<std::string> gone;
  for (const auto& r : applied_.records()) {
    if (!live.contains(r.id)) gone.push_back(core::unpack_uuid(r.id));
  }
  for (const auto& [id, a] : odd_applied_) {
    if (!live.contains(id)) gone.push_back(id);
  }
  for (const auto& id : gone) forget(id);
}

std::vector<core::Tombstone> StateStore::tombstones() const {
  std::vector<core::Tombstone> out;
  out.reserve(tombstones_.size());
  for (const auto& [id, t] : tombstones_) out.push_back(t);
  return out;
}

void StateStore::set_tombstones(const std::vector<core::Tombstone>& keep) {
  std::map<std::string_view, const core::Tombstone*> wanted;
  for (const auto& t : keep) wanted.emplace(t.binding_id, &t);
  for (auto it = tombstones_.begin(); it != tombstones_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    std::string line = R"({"a":"untombstone","id":)";
    append_quoted(line, it->first);
    append(line + "}");
    it = tombstones_.erase(it);
  }
  for (const auto& t : keep) {
    const auto it = tombstones_.find(t.binding_id);
    if (it != tombstones_.end() && it->second.device == t.device &&
        it->second.since_ms == t.since_ms && it->second.confirmed_ms == t.confirmed_ms) {
      continue;
    }
    tombstones_.insert_or_assign(t.binding_id, t);
    std::string line = R"({"a":"tombstone","id":)";
    append_quoted(line, t.binding_id);
    line += R"(,"device":)";
    append_quoted(line, t.device.canonical());
    append(line + ",\"since\":" + std::to_string(t.since_ms) +
           ",\"confirmed\":" + std::to_string(t.confirmed_ms) + "}");
  }
}

bool StateStore::approval_used(std::string_view hash) const { return approvals_.contains(hash); }

void StateStore::use_approval(const std::string& hash, std::int64_t now_ms) {
  approvals_.insert_or_assign(hash, now_ms);
  std::string line = R"({"a":"approval","hash":)";
  append_quoted(line, hash);
  append(line + ",\"used\":" + std::to_string(now_ms) + "}");
}

Result<Ok> StateStore::flush() {
  if (journal_buffer_.empty()) return Ok{};
  if (!on_disk_ || rewrite_) {
    // The salt must reach the medium before any fingerprint made with it; a journal tail that
    // cannot take an append must go before anything is appended behind it.
    return checkpoint();
  }
  auto r = medium_->append_journal(journal_buffer_);
  if (r) r = medium_->sync_journal();
  if (!r) {
    // A failed write may have left part of a line behind; after a failed fsync the kernel may
    // have dropped the pages it could not write and report the next fsync clean. Appending
    // again could put a torn line in the middle of the journal or count lost lines durable,
    // so the buffered records go into the next snapshot instead.
    rewrite_ = true;
    return r;
  }
  journal_records_ += static_cast<std::size_t>(
      std::count(journal_buffer_.begin(), journal_buffer_.end(), '\n'));
  release_journal_buffer();
  return Ok{};
}

Result<Ok> StateStore::checkpoint() {
  // Written a megabyte at a time: at a million bindings the snapshot is ~140 MB, never held.
  auto writer = medium_->begin_snapshot();
  if (!writer) return Result<Ok>::failure(writer.error());
  constexpr std::size_t kPiece = std::size_t{1} << 20;
  std::string out;
  out.reserve(kPiece + 4096);
  Result<Ok> written = Ok{};
  const auto spill = [&] {
    if (out.size() < kPiece || !written) return;
    written = writer.value()->write(out);
    out.clear();
  };
  out += "{\"format\":\"" + std::string(kFormat) + "\",\"version\":" + std::to_string(kVersion) +
         ",\"salt\":\"" + hex(salt_) + "\"";
  if (owner_) {
    out += ",\"api\":";
    append_quoted(out, owner_->api);
    out += ",\"scope\":";
    append_quoted(out, owner_->scope);
  }
  out += ",\n\"bindings\":{";
  // Sorted, so that two snapshots of the same state are byte-identical.
  // Packed ids sort as their spellings do; the odd ones are merged in by spelling.
  const auto& recs = applied_.records();
  std::vector<std::uint32_t> rows(recs.size());
  for (std::uint32_t i = 0; i < rows.size(); ++i) rows[i] = i;
  std::sort(rows.begin(), rows.end(),
            [&](std::uint32_t a, std::uint32_t b) { return recs[a].id < recs[b].id; });
  std::vector<const std::pair<const std::string, Applied>*> odd;
  odd.reserve(odd_applied_.size());
  for (const auto& kv : odd_applied_) odd.push_back(&kv);
  std::sort(odd.begin(), odd.end(), [](auto* a, auto* b) { return a->first < b->first; });
  bool first = true;
  const auto row = [&](const std::string& id, const core::DeviceId& device,
                       const core::Fingerprint& fp, std::int64_t receipt_ms) {
    out += first ? "\n" : ",\n";
    first = false;
    append_quoted(out, id);
    out += ":{\"device\":";
    append_quoted(out, device.canonical());
    out += ",\"fp\":\"" + core::to_hex(fp) + "\",\"receipt\":" + std::to_string(receipt_ms) + "}";
  };
  const auto odd_row = [&](const std::pair<const std::string, Applied>* kv) {
    row(kv->first, kv->second.device, kv->second.fp, kv->second.receipt_ms);
  };
  std::size_t o = 0;
  for (const std::uint32_t i : rows) {
    const auto id = core::unpack_uuid(recs[i].id);
    for (; o < odd.size() && odd[o]->first < id; ++o) odd_row(odd[o]);
    row(id, recs[i].device.unpack(), recs[i].fp, recs[i].receipt.get());
    spill();
  }
  for (; o < odd.size(); ++o) odd_row(odd[o]);
  out += "},\n\"pending\":[";
  first = true;
  for (const auto& p : pending()) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"device\":";
    append_quoted(out, p.device.canonical());
    out += ",\"since\":" + std::to_string(p.since_ms) + "}";
  }
  out += "],\n\"failures\":{";
  first = true;
  for (const auto& [device, rec] : failures_) {
    out += first ? "\n" : ",\n";
    first = false;
    append_quoted(out, device);
    out += ":{\"failures\":" + std::to_string(rec.failures) +
           ",\"nextAttemptMs\":" + std::to_string(rec.next_attempt_ms) + ",\"lastError\":";
    append_quoted(out, rec.last_error);
    out += "}";
  }
  out += "},\n\"tombstones\":{";
  first = true;
  for (const auto& [id, t] : tombstones_) {
    out += first ? "\n" : ",\n";
    first = false;
    append_quoted(out, id);
    out += ":{\"device\":";
    append_quoted(out, t.device.canonical());
    out += ",\"since\":" + std::to_string(t.since_ms) +
           ",\"confirmed\":" + std::to_string(t.confirmed_ms) + "}";
  }
  out += "},\n\"approvals\":{";
  first = true;
  for (const auto& [hash, used] : approvals_) {
    out += first ? "\n" : ",\n";
    first = false;
    append_quoted(out, hash);
    out += ":{\"used\":" + std::to_string(used) + "}";
  }
  out += "}}\n";

  if (written) written = writer.value()->write(out);
  if (written) written = writer.value()->commit();
  if (!written) return written;
  on_disk_ = true;
  // The snapshot now holds everything: the journal starts over. While it has not, nothing may
  // be appended behind what it holds.
  auto cleared = medium_->clear_journal();
  rewrite_ = !cleared;
  if (!cleared) return cleared;
  release_journal_buffer();
  journal_records_ = 0;
  return Ok{};
}

}  // namespace thingsync::state
