#include "service.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "thingsync/core/device_id.hpp"
#include "thingsync/core/password.hpp"
#include "thingsync/core/time.hpp"

namespace thingsync::sim {
namespace {

using Json = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kCollection = "/mqtt/bindings";
constexpr std::string_view kPortalUser = "principal/portal-user";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

std::string_view problem_slug(int status) {
  switch (status) {
    case 400: return "bad-request";
    case 401: return "unauthorized";
    case 404: return "not-found";
    case 405: return "method-not-allowed";
    case 409: return "conflict";
    case 413: return "content-too-large";
    case 415: return "unsupported-media-type";
    case 429: return "too-many-requests";
    case 502: return "bad-gateway";
    case 503: return "service-unavailable";
    case 504: return "gateway-timeout";
    default: return "internal-error";
  }
}

/// Client input may hold invalid UTF-8; it is replaced rather than thrown on.
std::string safe_dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

/// RFC 9457 problem details. `extra` members are merged in (for example the id of the
/// binding a 409 collided with).
Response problem(int status, std::string detail, Json extra = Json::object()) {
  Json j;
  j["type"] = "/problems/" + std::string(problem_slug(status));
  j["title"] = std::string(reason(status));
  j["status"] = status;
  j["detail"] = std::move(detail);
  for (auto& [k, v] : extra.items()) j[k] = v;
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = safe_dump(j);
  return r;
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

/// A body the service keeps (a binding's cached JSON, the list buffer): see Response::body_ref.
Response json_ref(int status, std::string_view body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body_ref = body;
  return r;
}

Response no_content() {
  Response r;
  r.status = 204;
  return r;
}

Response method_not_allowed(std::string_view allow) {
  Response r = problem(405, "method not allowed here; allowed: " + std::string(allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// True when the Content-Type's media type (parameters ignored) is `want`.
bool media_type_is(std::string_view content_type, std::string_view want) {
  return iequals(trim(content_type.substr(0, content_type.find(';'))), want);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// application/x-www-form-urlencoded decoding ('+' is a space); nullopt on a bad escape.
std::optional<std::string> form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct Param {
  std::string name, value;
  std::string_view raw;  ///< "name=value" as received, for next links
};

/// Splits a query or form body; `error` is set for bad escapes and repeated names.
std::vector<Param> parse_params(std::string_view s, std::string& error) {
  std::vector<Param> out;
  while (!s.empty()) {
    const auto amp = s.find('&');
    const std::string_view raw = s.substr(0, amp);
    s = amp == std::string_view::npos ? std::string_view() : s.substr(amp + 1);
    if (raw.empty()) continue;
    const auto eq = raw.find('=');
    auto name = form_decode(raw.substr(0, eq));
    auto value = form_decode(eq == std::string_view::npos ? std::string_view() : raw.substr(eq + 1));
    if (!name || !value) {
      error = "malformed percent-encoding in \"" + std::string(raw) + "\"";
      return {};
    }
    for (const auto& p : out) {
      if (p.name == *name) {
        error = "query parameter \"" + *name + "\" is given more than once";
        return {};
      }
    }
    out.push_back({std::move(*name), std::move(*value), raw});
  }
  return out;
}

std::string iso_now() { return core::format_iso8601_ms(wall_ms()); }

Json admin_json(const Binding& b) {
  Json j = Json::parse(b.json());
  j["clientId"] = b.client_id();
  j["password"] = b.password() ? Json(*b.password()) : Json(nullptr);
  return j;
}

bool write_file_atomically(const std::string& path, const std::string& content, std::string& error) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "open " + tmp + ": " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    error = "fsync " + tmp + ": " + std::strerror(errno);
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "rename " + tmp + ": " + std::strerror(errno);
    return false;
  }
  auto dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

}  // namespace

Service::Service(Options opts)
    : opts_(std::move(opts)),
      faults_(opts_.faults),
      store_(opts_.random_seed ? *opts_.random_seed : std::random_device{}()),
      fault_rng_(opts_.random_seed ? *opts_.random_seed + 1 : std::random_device{}()) {
  if (opts_.request_log) {
    request_log_ = std::fopen(opts_.request_log->c_str(), "a");
    if (!request_log_) {
      throw std::runtime_error("cannot open request log " + *opts_.request_log + ": " +
                               std::strerror(errno));
    }
  }
}

Service::~Service() {
  if (request_log_) std::fclose(request_log_);
}

bool Service::load_data(std::string& error) {
  if (!opts_.data_file) return true;
  std::ifstream in(*opts_.data_file, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(*opts_.data_file)) return true;  // first start
    error = "cannot read " + *opts_.data_file;
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (!store_.load(ss.str(), error)) {
    error = *opts_.data_file + ": " + error;
    return false;
  }
  persisted_version_ = store_.version();
  return true;
}

void Service::persist_if_changed() {
  if (!opts_.data_file || store_.version() == persisted_version_) return;
  std::string error;
  if (write_file_atomically(*opts_.data_file, store_.dump(), error)) {
    persisted_version_ = store_.version();
  } else {
    std::fprintf(stderr, "thingsync-sim: persisting failed: %s\n", error.c_str());
  }
}

Response Service::handle(const Request& req, bool tls) {
  const std::string_view path = req.target.substr(0, req.target.find('?'));
  const bool is_admin = path == "/_sim" || path.starts_with("/_sim/");
  if (!is_admin) {
    ++in_flight_;
    peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
  }
  bool authorized = false;
  Response res;
  try {
    res = dispatch(req, tls, authorized);
  } catch (const std::exception& e) {
    res = problem(500, std::string("simulator error: ") + e.what());
  }
  if (!is_admin) {
    res.accounted = true;
    if (!res.device.empty()) enter_device(res);
    count(req.method, res.status);
    log_request(req, res, authorized);
    res.delay = std::chrono::milliseconds(faults_.latency_ms);
  }
  res.device = {};
  if (req.body_too_large) res.close = true;
  return res;
}

void Service::enter_device(Response& res) {
  // Few requests are in flight at once (one, unless latency or slow clients hold them), so a
  // short table beats a map that allocates per request.
  std::size_t free_slot = device_in_flight_.size();
  for (std::size_t i = 0; i < device_in_flight_.size(); ++i) {
    auto& e = device_in_flight_[i];
    if (e.n == 0) {
      free_slot = std::min(free_slot, i);
    } else if (e.device == res.device) {
      res.device_slot = static_cast<std::int32_t>(i);
      max_per_device_ = std::max<std::uint64_t>(max_per_device_, ++e.n);
      return;
    }
  }
  if (free_slot == device_in_flight_.size()) device_in_flight_.emplace_back();
  auto& e = device_in_flight_[free_slot];
  e.device.assign(res.device);
  e.n = 1;
  res.device_slot = static_cast<std::int32_t>(free_slot);
  max_per_device_ = std::max<std::uint64_t>(max_per_device_, 1);
}

void Service::finish(const Response& res) {
  if (!res.accounted) return;
  if (in_flight_ > 0) --in_flight_;
  if (res.device_slot >= 0) {
    auto& e = device_in_flight_[static_cast<std::size_t>(res.device_slot)];
    if (e.n > 0) --e.n;
  }
}

Response Service::dispatch(const Request& req, bool tls, bool& authorized) {
  const auto q = req.target.find('?');
  const std::string_view path = req.target.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : req.target.substr(q + 1);
  if (path == "/_sim" || path.starts_with("/_sim/")) {
    if (!opts_.admin) return problem(404, "no such resource (the admin interface needs --admin)");
    return admin(req, path);
  }
  if (path == "/oauth2/token") {
    if (!query.empty()) return problem(400, "the token endpoint takes no query parameters");
    return token_endpoint(req, authorized);
  }
  if (path == kCollection || path.starts_with("/mqtt/bindings/")) {
    return api(req, path, query, tls, authorized);
  }
  return problem(404, "no such resource: " + std::string(path));
}

Service::Principal Service::authenticate(std::string_view authorization) {
  Principal p;
  authorization = trim(authorization);
  if (authorization.empty()) {
    p.why = "missing Authorization header";
    return p;
  }
  if (authorization.size() < 7 || !iequals(authorization.substr(0, 7), "bearer ")) {
    p.why = "Authorization must use the Bearer scheme";
    return p;
  }
  const std::string_view token = trim(authorization.substr(7));
  if (token.empty()) {
    p.why = "empty bearer token";
    return p;
  }
  if (opts_.token && token == *opts_.token) {
    return {true, "principal/static", {}};
  }
  if (auto it = tokens_.find(std::string(token)); it != tokens_.end()) {
    if (SteadyClock::now() >= it->second.second) {
      p.why = "token expired";
      return p;
    }
    return {true, it->second.first, {}};
  }
  if (!opts_.token && opts_.oauth_clients.empty()) {
    return {true, "principal/anonymous", {}};  // open mode: no credentials configured
  }
  p.why = "unknown token";
  return p;
}

bool Service::take_rate_token(SteadyClock::time_point now, double& retry_after_s) {
  const double rate = faults_.rate_limit;
  const double capacity = std::max(1.0, rate);
  if (bucket_at_ == SteadyClock::time_point{}) {
    bucket_tokens_ = capacity;
  } else {
    const double elapsed = std::chrono::duration<double>(now - bucket_at_).count();
    bucket_tokens_ = std::min(capacity, bucket_tokens_ + elapsed * rate);
  }
  bucket_at_ = now;
  if (bucket_tokens_ >= 1.0) {
    bucket_tokens_ -= 1.0;
    return true;
  }
  retry_after_s = (1.0 - bucket_tokens_) / rate;
  return false;
}

Response Service::api(const Request& req, std::string_view path, std::string_view query,
                      bool tls, bool& authorized) {
  // Authenticate first so that the request log says whether a valid token came, even for
  // a request the rate limit turns away (as a gateway would, before the service).
  const Principal who = authenticate(req.authorization);
  authorized = who.valid;
  if (faults_.rate_limit > 0) {
    double wait = 0;
    if (!take_rate_token(SteadyClock::now(), wait)) {
      Response r = problem(429, "rate limit of " + std::to_string(faults_.rate_limit) +
                                    " requests per second exceeded");
      if (faults_.rate_limit_retry_after) {
        r.headers.emplace_back(
            "Retry-After", std::to_string(std::max<long long>(1, std::llround(std::ceil(wait)))));
      }
      return r;
    }
  }
  if (!who.valid) {
    Response r = problem(401, std::string(who.why));
    std::string challenge = "Bearer realm=\"thingsync-sim\"";
    if (!req.authorization.empty()) {
      challenge.append(", error=\"invalid_token\", error_description=\"").append(who.why).append("\"");
    }
    r.headers.emplace_back("WWW-Authenticate", std::move(challenge));
    return r;
  }
  if (faults_.fail_rate > 0 && std::uniform_real_distribution<double>(0, 1)(fault_rng_) <
                                   faults_.fail_rate) {
    const bool unavailable = (fault_rng_() & 1) != 0;
    Response r = problem(unavailable ? 503 : 500, "injected failure (--fail-rate)");
    if (unavailable && (fault_rng_() & 1) != 0) r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  if (req.body_too_large) {
    return problem(413, "request body exceeds " + std::to_string(opts_.max_body) + " bytes");
  }

  if (path == kCollection) {
    if (req.method == "GET") return list(req, query, tls);
    if (req.method == "POST") {
      if (!query.empty()) return problem(400, "POST /mqtt/bindings takes no query parameters");
      return write_binding(req, {}, who.name, false);
    }
    return method_not_allowed("GET, POST");
  }
  const std::string_view id = path.substr(kCollection.size() + 1);
  if (id.find('/') != std::string_view::npos) return problem(404, "no such resource");
  if (req.method != "GET" && req.method != "PUT" && req.method != "DELETE") {
    return method_not_allowed("GET, PUT, DELETE");
  }
  if (!core::is_uuid(id)) return problem(400, "bindingId must be a UUID");
  if (!query.empty()) return problem(400, "this operation takes no query parameters");
  std::array<char, 36> lower_buf{};  // is_uuid: exactly 36 characters
  std::transform(id.begin(), id.end(), lower_buf.begin(), lower);
  const std::string_view lower_id(lower_buf.data(), lower_buf.size());
  if (req.method == "PUT") return write_binding(req, lower_id, who.name, false);
  const Binding* b = store_.find(lower_id);
  if (!b) return problem(404, "no binding with id " + std::string(lower_id));
  if (req.method == "GET") {
    Response r = json_ref(200, b->json());
    r.device = b->device();
    return r;
  }
  device_copy_ = b->device();  // the binding goes; the accounting needs its device
  store_.erase(b);
  Response r = no_content();
  r.device = device_copy_;
  after_commit(r, false);
  return r;
}

Response Service::write_binding(const Request& req, std::string_view id,
                                std::string_view principal, bool admin) {
  if (!req.has_content_type || !media_type_is(req.content_type, "application/json")) {
    return problem(415, "Content-Type must be application/json");
  }
  BindingBody& body = body_;
  switch (body.parse(req.body)) {
    case BindingBody::Status::kInvalid: return problem(400, "request body is not valid JSON");
    case BindingBody::Status::kNotObject: return problem(400, "request body must be a JSON object");
    case BindingBody::Status::kObject: break;
  }
  if (body.device_id.type == JsonType::kAbsent) return problem(400, "deviceId is required");
  if (body.device_id.type != JsonType::kString) return problem(400, "deviceId must be a string");
  const std::string_view spelling = body.device_id.text;
  auto parsed = core::DeviceId::parse_with_reason(spelling);
  if (!parsed.id) return problem(400, "invalid deviceId: " + parsed.reason);
  store_.prefetch_device(parsed.id->canonical());
  if (!admin && !faults_.reject_devices.empty() &&
      faults_.reject_devices.contains(parsed.id->canonical())) {
    return problem(400, "device rejected by the platform (simulated fault)");
  }
  std::optional<std::string_view> password;
  if (body.password.type != JsonType::kAbsent) {
    if (body.password.type != JsonType::kString) return problem(400, "password must be a string");
    password = body.password.text;
    if (auto why = core::password_policy_violation(*password); !why.empty()) {
      return problem(400, "password does not meet the policy: " + why);
    }
  }
  bool allow_duplicate = faults_.duplicates == Duplicates::kAllow;
  std::string_view client_id = opts_.client_id;
  std::string lower_client;
  std::optional<std::int64_t> stamp;
  if (admin) {
    if (body.allow_duplicate.type != JsonType::kAbsent) {
      if (body.allow_duplicate.type != JsonType::kBoolean) {
        return problem(400, "allowDuplicate must be a boolean");
      }
      allow_duplicate = body.allow_duplicate.boolean;
    }
    if (body.client_id.type != JsonType::kAbsent) {
      if (body.client_id.type != JsonType::kString || !core::is_uuid(body.client_id.text)) {
        return problem(400, "clientId must be a UUID");
      }
      lower_client = body.client_id.text;
      std::transform(lower_client.begin(), lower_client.end(), lower_client.begin(), lower);
      client_id = lower_client;
    }
    // As the portal would write: another user, and a time from another node's clock.
    if (body.modified_by.type != JsonType::kAbsent) {
      if (body.modified_by.type != JsonType::kString || body.modified_by.text.empty()) {
        return problem(400, "modifiedBy must be a non-empty string");
      }
      principal = body.modified_by.text;
    }
    if (body.modified_at.type != JsonType::kAbsent) {
      if (body.modified_at.type == JsonType::kString) {
        stamp = core::parse_iso8601_ms(body.modified_at.text);
      }
      if (!stamp) {
        return problem(400, "modifiedAt must be an RFC 3339 date-time such as "
                            "2025-09-01T23:00:00.000Z (years 0000-9999)");
      }
    }
  }
  BindingInput in{spelling, *parsed.id, password, principal, client_id, stamp};
  Store::Outcome out;
  if (id.empty()) {
    out = store_.create(std::move(in), wall_ms(), allow_duplicate);
  } else {
    auto updated = store_.update(id, std::move(in), wall_ms(), allow_duplicate);
    if (!updated) return problem(404, "no binding with id " + std::string(id));
    out = *updated;
  }
  if (out.conflict) {
    Response r = problem(409,
                         "device " + parsed.id->canonical() + " already has binding " +
                             std::string(out.conflict->id()) +
                             " (one binding per device: --duplicates reject)",
                         Json{{"bindingId", out.conflict->id()}});
    r.device = out.conflict->device();  // the same device
    return r;
  }
  Response r = admin ? json_response(id.empty() ? 201 : 200, admin_json(*out.binding).dump())
                     : json_ref(id.empty() ? 201 : 200, out.binding->json());
  if (id.empty()) {
    r.location_base = admin ? "/_sim/bindings/" : "/mqtt/bindings/";
    r.location_id = out.binding->id();
  }
  r.device = out.binding->device();
  if (!admin) after_commit(r, id.empty());
  return r;
}

void Service::after_commit(Response& res, bool create) {
  auto strikes = [this](double rate) {
    return rate > 0 && std::uniform_real_distribution<double>(0, 1)(fault_rng_) < rate;
  };
  if (create && strikes(faults_.drop_after_create)) {
    res.drop = true;
    return;
  }
  if (!strikes(faults_.fail_after_commit)) return;
  // What a gateway answers when the API behind it took too long or broke off its answer.
  const bool timeout = (fault_rng_() & 1) != 0;
  Response gateway = problem(timeout ? 504 : 502,
                             timeout ? "the upstream service did not answer in time"
                                     : "the upstream service sent no valid answer");
  gateway.device = res.device;
  gateway.failed_after_commit = true;
  res = std::move(gateway);
  ++failed_after_commit_;
}

Response Service::list(const Request& req, std::string_view query, bool tls) {
  std::string error;
  const auto params = parse_params(query, error);
  if (!error.empty()) return problem(400, error);
  ListQuery q;
  q.limit = opts_.page_size;
  std::string link_params;  // the query as given, minus cursor and limit
  std::optional<std::string> cursor_text;
  for (const auto& p : params) {
    auto date = [&](std::optional<std::int64_t>& out) -> bool {
      out = core::parse_iso8601_ms(p.value);
      if (!out) error = p.name + " must be an ISO 8601 date-time, got \"" + p.value + "\"";
      return out.has_value();
    };
    if (p.name == "cursor") {
      cursor_text = p.value;
      continue;
    }
    if (p.name == "limit") {
      std::size_t n = 0;
      const auto r = std::from_chars(p.value.data(), p.value.data() + p.value.size(), n);
      if (p.value.empty() || r.ec != std::errc() || r.ptr != p.value.data() + p.value.size() ||
          n < 1 || n > opts_.max_page_size) {
        return problem(400, "limit must be an integer from 1 to " +
                                std::to_string(opts_.max_page_size) + ", got \"" + p.value + "\"");
      }
      q.limit = n;
      continue;
    }
    if (p.name == "sort") {
      auto keys = parse_sort(p.value, error);
      if (!keys) return problem(400, error);
      q.sort = std::move(*keys);
    } else if (p.name == "clientId") {
      if (!core::is_uuid(p.value)) return problem(400, "clientId must be a UUID");
      std::string c = p.value;
      std::transform(c.begin(), c.end(), c.begin(), lower);
      q.filter.client_id = std::move(c);
    } else if (p.name == "deviceId") {
      auto parsed = core::DeviceId::parse_with_reason(p.value);
      if (!parsed.id) return problem(400, "invalid deviceId: " + parsed.reason);
      q.filter.device = parsed.id->canonical();
    } else if (p.name == "username") {
      if (p.value.empty()) return problem(400, "username must not be empty");
      q.filter.username = p.value;
    } else if (p.name == "createdBefore") {
      if (!date(q.filter.created_before)) return problem(400, error);
    } else if (p.name == "createdSince") {
      if (!date(q.filter.created_since)) return problem(400, error);
    } else if (p.name == "modifiedBefore") {
      if (!date(q.filter.modified_before)) return problem(400, error);
    } else if (p.name == "modifiedSince") {
      if (!date(q.filter.modified_since)) return problem(400, error);
    } else {
      return problem(400, "unknown query parameter \"" + p.name +
                              "\" (allowed: cursor, limit, sort, clientId, deviceId, username, "
                              "createdBefore, createdSince, modifiedBefore, modifiedSince)");
    }
    link_params.append(p.raw).push_back('&');
  }
  q.sort_spec = sort_spec_string(q.sort);
  if (cursor_text) {
    q.cursor = Cursor::decode(*cursor_text);
    if (!q.cursor) return problem(400, "invalid cursor");
    if (q.cursor->sort != q.sort_spec || q.cursor->filter_digest != q.filter.digest()) {
      return problem(400, "cursor does not belong to this query: filters and sort must stay "
                          "the same while paging");
    }
  }
  const std::uint32_t page_no = q.cursor ? q.cursor->page : 1;
  if (faults_.fail_list_on_page != 0 && page_no == faults_.fail_list_on_page) {
    return problem(500, "injected failure on list page " + std::to_string(page_no));
  }
  const ListPage page = store_.list(q);

  std::string base;
  if (!opts_.relative_next_links && !req.host.empty()) {
    base = (tls ? "https://" : "http://") + std::string(req.host);
  }
  base.append(kCollection).push_back('?');
  base.append(link_params);
  auto link = [&](const Cursor& c) {
    std::string url = base + "cursor=" + c.encode() + "&limit=" + std::to_string(q.limit);
    if (!json_plain(url)) return safe_dump(Json(url));
    url.insert(url.begin(), '"');
    url.push_back('"');
    return url;
  };
  std::string& body = list_body_;  // reused: its capacity stays
  body.clear();
  body.reserve(64 + page.items.size() * 320);
  body.append("{\"items\":[");
  for (std::size_t i = 0; i < page.items.size(); ++i) {
    if (i) body.push_back(',');
    body.append(page.items[i]->json());
  }
  body.push_back(']');
  if (page.next) body.append(",\"next\":").append(link(*page.next));
  if (page.prev) body.append(",\"prev\":").append(link(*page.prev));
  body.push_back('}');
  return json_ref(200, body);
}

Response Service::token_endpoint(const Request& req, bool& authorized) {
  auto oauth_error = [](int status, std::string_view code, std::string description) {
    Response r = json_response(status, Json{{"error", code}, {"error_description", description}}.dump());
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  };
  if (faults_.token_endpoint_down) {
    Response r = problem(503, "token endpoint down (injected fault)");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  if (req.method != "POST") return method_not_allowed("POST");
  if (req.body_too_large) return problem(413, "request body too large");
  if (!req.has_content_type ||
      !media_type_is(req.content_type, "application/x-www-form-urlencoded")) {
    return oauth_error(400, "invalid_request",
                       "Content-Type must be application/x-www-form-urlencoded");
  }
  std::string error;
  const auto params = parse_params(req.body, error);
  if (!error.empty()) return oauth_error(400, "invalid_request", error);
  auto field = [&](std::string_view name) -> std::string {
    for (const auto& p : params) {
      if (p.name == name) return p.value;
    }
    return {};
  };
  const auto grant = field("grant_type");
  if (grant.empty()) return oauth_error(400, "invalid_request", "grant_type is required");
  if (grant != "client_credentials") {
    return oauth_error(400, "unsupported_grant_type", "only client_credentials is supported");
  }
  const auto client = field("client_id");
  const auto secret = field("client_secret");
  if (client.empty()) return oauth_error(401, "invalid_client", "client_id is required");
  if (!opts_.oauth_clients.empty()) {
    const auto it = opts_.oauth_clients.find(client);
    if (it == opts_.oauth_clients.end() || it->second != secret) {
      return oauth_error(401, "invalid_client", "unknown client or wrong secret");
    }
  }
  if (field("audience").empty()) return oauth_error(400, "invalid_request", "audience is required");
  authorized = true;

  const auto now = SteadyClock::now();
  if (tokens_.size() > 10000) {
    std::erase_if(tokens_, [now](const auto& kv) { return kv.second.second <= now; });
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token = "sim_";
  for (int i = 0; i < 2; ++i) {
    const auto v = fault_rng_();
    for (int s = 60; s >= 0; s -= 4) token.push_back(kHex[(v >> s) & 15]);
  }
  tokens_[token] = {"principal/" + client, now + opts_.token_lifetime};
  ++tokens_issued_;
  const auto lifetime_s =
      std::max<std::int64_t>(1, (opts_.token_lifetime.count() + 999) / 1000);
  Response r = json_response(
      200, Json{{"access_token", token}, {"token_type", "Bearer"}, {"expires_in", lifetime_s}}
               .dump());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

std::string Service::faults_json() const {
  return Json{{"rateLimit", faults_.rate_limit},
              {"rateLimitRetryAfter", faults_.rate_limit_retry_after},
              {"failRate", faults_.fail_rate},
              {"latencyMs", faults_.latency_ms},
              {"dropAfterCreate", faults_.drop_after_create},
              {"failAfterCommit", faults_.fail_after_commit},
              {"duplicates", duplicates_name(faults_.duplicates)},
              {"failListOnPage", faults_.fail_list_on_page},
              {"tokenEndpointDown", faults_.token_endpoint_down},
              {"rejectDevices", faults_.reject_devices}}
      .dump();
}

std::string Service::counters_json() const {
  Json requests = Json::object();
  std::uint64_t total = 0;
  for (const auto& [method, statuses] : by_method_status_) {
    Json m = Json::object();
    for (const auto& [status, n] : statuses) {
      m[std::to_string(status)] = n;
      total += n;
    }
    requests[method] = std::move(m);
  }
  return Json{{"requests", std::move(requests)},
              {"total", total},
              {"inFlight", in_flight_},
              {"peakConcurrency", peak_in_flight_},
              {"maxConcurrentPerDevice", max_per_device_},
              {"failedAfterCommit", failed_after_commit_},
              {"bindings", store_.size()},
              {"tokensIssued", tokens_issued_}}
      .dump();
}

void Service::reset_counters() {
  by_method_status_.clear();
  peak_in_flight_ = in_flight_;
  max_per_device_ = 0;
  tokens_issued_ = 0;
  failed_after_commit_ = 0;
}

Response Service::admin(const Request& req, std::string_view path) {
  const std::string_view m = req.method;
  auto parse_body = [&](Json& out) -> std::optional<Response> {
    if (!req.has_content_type || !media_type_is(req.content_type, "application/json")) {
      return problem(415, "Content-Type must be application/json");
    }
    out = Json::parse(req.body, nullptr, false);
    if (out.is_discarded() || !out.is_object()) return problem(400, "body must be a JSON object");
    return std::nullopt;
  };
  if (path == "/_sim/faults") {
    if (m == "GET") return json_response(200, faults_json());
    if (m != "PUT" && m != "PATCH") return method_not_allowed("GET, PUT, PATCH");
    Json body;
    if (auto err = parse_body(body)) return *err;
    Faults f = faults_;
    for (const auto& [key, v] : body.items()) {
      const Json& val = v;
      auto number = [&val](double lo, double hi) -> std::optional<double> {
        if (!val.is_number() || val.get<double>() < lo || val.get<double>() > hi) {
          return std::nullopt;
        }
        return val.get<double>();
      };
      std::optional<double> n;
      std::optional<Duplicates> duplicates;
      if (key == "rateLimit" && (n = number(0, 1e9))) {
        f.rate_limit = *n;
      } else if (key == "failRate" && (n = number(0, 1))) {
        f.fail_rate = *n;
      } else if (key == "latencyMs" && (n = number(0, 600000))) {
        f.latency_ms = static_cast<std::int64_t>(*n);
      } else if (key == "dropAfterCreate" && (n = number(0, 1))) {
        f.drop_after_create = *n;
      } else if (key == "failAfterCommit" && (n = number(0, 1))) {
        f.fail_after_commit = *n;
      } else if (key == "failListOnPage" && (n = number(0, 1e9))) {
        f.fail_list_on_page = static_cast<std::uint32_t>(*n);
      } else if (key == "duplicates" && v.is_string() &&
                 (duplicates = parse_duplicates(v.get<std::string>()))) {
        f.duplicates = *duplicates;
      } else if (key == "rateLimitRetryAfter" && v.is_boolean()) {
        f.rate_limit_retry_after = v.get<bool>();
      } else if (key == "tokenEndpointDown" && v.is_boolean()) {
        f.token_endpoint_down = v.get<bool>();
      } else if (key == "rejectDevices" && v.is_array()) {
        f.reject_devices.clear();
        for (const auto& d : v) {
          const auto id = d.is_string() ? core::DeviceId::parse(d.get<std::string>()) : std::nullopt;
          if (!id) return problem(400, "rejectDevices must hold device IDs");
          f.reject_devices.insert(id->canonical());
        }
      } else {
        return problem(400, "unknown fault \"" + key + "\" or value out of range");
      }
    }
    if (f.rate_limit != faults_.rate_limit) bucket_at_ = {};  // a new limit starts full
    faults_ = f;
    return json_response(200, faults_json());
  }
  if (path == "/_sim/counters") {
    if (m == "GET") return json_response(200, counters_json());
    if (m == "DELETE") {
      reset_counters();
      return no_content();
    }
    return method_not_allowed("GET, DELETE");
  }
  if (path == "/_sim/reset") {
    if (m != "POST") return method_not_allowed("POST");
    store_.clear();
    faults_ = opts_.faults;
    bucket_at_ = {};
    reset_counters();
    return no_content();
  }
  if (path == "/_sim/expire-tokens") {
    if (m != "POST") return method_not_allowed("POST");
    const auto now = SteadyClock::now();
    for (auto& [tok, entry] : tokens_) entry.second = now;
    return no_content();
  }
  if (path == "/_sim/bindings") {
    if (m == "GET") {
      Json items = Json::array();
      for (const Binding* b : store_.all()) items.push_back(admin_json(*b));
      return json_response(200, Json{{"items", std::move(items)}}.dump());
    }
    if (m == "POST") return write_binding(req, {}, kPortalUser, true);
    return method_not_allowed("GET, POST");
  }
  if (path.starts_with("/_sim/bindings/")) {
    std::string id(path.substr(std::string_view("/_sim/bindings/").size()));
    std::transform(id.begin(), id.end(), id.begin(), lower);
    if (!core::is_uuid(id)) return problem(400, "bindingId must be a UUID");
    if (m == "PUT") return write_binding(req, id, kPortalUser, true);
    const Binding* b = store_.find(id);
    if (!b) return problem(404, "no binding with id " + id);
    if (m == "GET") return json_response(200, admin_json(*b).dump());
    if (m == "DELETE") {
      store_.erase(b);
      return no_content();
    }
    return method_not_allowed("GET, PUT, DELETE");
  }
  return problem(404, "no such admin resource: " + std::string(path));
}

void Service::count(std::string_view method, int status) {
  auto it = by_method_status_.find(method);
  if (it == by_method_status_.end()) it = by_method_status_.emplace(std::string(method), std::map<int, std::uint64_t>{}).first;
  ++it->second[status];
}

void Service::log_request(const Request& req, const Response& res, bool authorized) {
  if (!request_log_) return;
  const auto q = req.target.find('?');
  Json j{{"time", iso_now()},
         {"method", req.method},
         {"path", req.target.substr(0, q)},
         {"query", q == std::string_view::npos ? std::string_view() : req.target.substr(q + 1)},
         {"status", res.status},
         {"authorized", authorized}};
  if (res.drop) j["dropped"] = true;
  if (res.failed_after_commit) j["failedAfterCommit"] = true;
  const std::string line = safe_dump(j) + "\n";
  std::fwrite(line.data(), 1, line.size(), request_log_);
  std::fflush(request_log_);
}

}  // namespace thingsync::sim
