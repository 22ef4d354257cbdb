#include "thingsync/api/bindings.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <tuple>
#include <unordered_set>

#include "fail.hpp"
#include "log.hpp"
#include "wipe.hpp"
#include "thingsync/core/time.hpp"

namespace thingsync::api {
namespace {

// Servers sometimes echo a rejected field in the problem detail: never let a password through.
ApiError scrubbed(ApiError e, const core::Secret& password) {
  const auto& p = password.reveal();
  if (p.empty()) return e;
  for (std::string* s : {&e.title, &e.detail}) {
    for (auto pos = s->find(p); pos != std::string::npos; pos = s->find(p, pos + 3)) {
      s->replace(pos, p.size(), "***");
    }
  }
  return e;
}

// "/mqtt/bindings/{id}" in one allocation.
std::string binding_target(std::string_view id) {
  constexpr std::string_view kPrefix = "/mqtt/bindings/";
  std::string target;
  target.reserve(kPrefix.size() + id.size());
  target.append(kPrefix);
  url_encode_to(target, id);
  return target;
}

// The length of the well-formed UTF-8 sequence `s` starts with (Unicode 15, table 3-7: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s) {
  const auto byte = [s](std::size_t i) -> unsigned {
    return i < s.size() ? static_cast<unsigned char>(s[i]) : 0U;
  };
  const auto cont = [&byte](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return byte(i) >= lo && byte(i) <= hi;
  };
  const unsigned c = byte(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c >= 0xE1 && c <= 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Appends `s` as the inside of a JSON string, escaped as nlohmann's dump() escapes (the short
// escapes, \u00xx for other control characters, UTF-8 as it is); at most 6 bytes per byte of
// `s`. False when `s` is not UTF-8.
bool append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s.substr(i));
      if (n == 0) return false;
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  return true;
}

}  // namespace

std::string binding_body(const core::DeviceId& device, const core::Secret& password) {
  constexpr std::string_view kHead = "{\"deviceId\":\"";
  constexpr std::string_view kMiddle = "\",\"password\":\"";
  constexpr std::string_view kTail = "\"}";
  const std::string& id = device.canonical();
  const std::string& pw = password.reveal();
  std::string body;
  body.reserve(kHead.size() + kMiddle.size() + kTail.size() + 6 * (id.size() + pw.size()));
  body.append(kHead);
  append_json_escaped(body, id);  // a canonical device ID is ASCII
  body.append(kMiddle);
  if (!append_json_escaped(body, pw)) {
    detail::wipe(body);
    throw std::invalid_argument("the password of " + id + " is not UTF-8 text");
  }
  body.append(kTail);
  return body;
}

std::string ListQuery::to_query_string() const {
  std::string q;
  auto add = [&q](std::string_view key, const std::string& value) {
    if (!q.empty()) q += '&';
    q.append(key).append("=").append(url_encode(value));
  };
  auto add_time = [&add](std::string_view key, const std::optional<std::int64_t>& ms) {
    if (ms) add(key, core::format_iso8601_ms(*ms));
  };
  if (client_id) add("clientId", *client_id);
  if (device_id) add("deviceId", *device_id);
  if (username) add("username", *username);
  add_time("createdBefore", created_before_ms);
  add_time("createdSince", created_since_ms);
  add_time("modifiedBefore", modified_before_ms);
  add_time("modifiedSince", modified_since_ms);
  if (sort) add("sort", *sort);
  if (limit) add("limit", std::to_string(*limit));
  return q;
}

net::awaitable<core::Result<ListSummary, ApiError>> BindingsApi::list_pages(ListQuery query,
                                                                            PageHandler on_page) {
  ApiCall call;
  call.target = "/mqtt/bindings";
  if (auto qs = query.to_query_string(); !qs.empty()) call.target += "?" + qs;
  Url current = client_.url_for(call.target);
  std::unordered_set<std::string> seen{current.target};
  ListSummary summary;
  for (;;) {
    auto res = co_await client_.call(call);
    if (!res) co_return detail::fail(res.error());
    if (summary.pages == 0) {
      if (const auto date = res->header("Date")) {
        if (const auto secs = parse_http_date(*date)) summary.server_time_ms = *secs * 1000;
      }
    }
    auto page = parse_page(res->body);
    if (!page) {
      auto e = page.error();
      e.status = res->status;
      e.detail = "page " + std::to_string(summary.pages + 1) + " of " +
                 std::string(current.path()) + (e.detail.empty() ? "" : ": " + e.detail);
      co_return detail::fail(std::move(e));
    }
    ++summary.pages;
    on_page(*page);
    if (!page->next) co_return summary;
    auto next = resolve_reference(current, *page->next);
    if (!next) co_return detail::fail(protocol_error("invalid next link", "not an http(s) URL"));
    if (!next->same_origin(client_.base_url())) {
      // Following it would send the bearer token to someone else.
      detail::log()->error("refusing next link to another origin origin={}", next->origin());
      co_return detail::fail(protocol_error("next link points to another origin",
                                            next->origin() + " is not " +
                                                client_.base_url().origin()));
    }
    if (!seen.insert(next->target).second) {
      co_return detail::fail(protocol_error("next link repeats a page", std::string(next->path())));
    }
    current = *next;
    call.url = current;
  }
}

net::awaitable<core::Result<ListResult, ApiError>> Bindings::list_all(ListQuery query) {
  ListResult out;
  auto collect = [&out](const Page& p) {
    out.bindings.insert(out.bindings.end(), p.items.begin(), p.items.end());
    out.skipped.insert(out.skipped.end(), p.skipped.begin(), p.skipped.end());
  };
  auto summary = co_await list_pages(std::move(query), std::move(collect));
  if (!summary) co_return detail::fail(summary.error());
  out.pages = summary->pages;
  out.server_time_ms = summary->server_time_ms;
  co_return std::move(out);
}

net::awaitable<core::Result<std::vector<core::RemoteBinding>, ApiError>> Bindings::find_by_device(
    core::DeviceId device) {
  ListQuery q;
  q.device_id = device.canonical();
  auto all = co_await list_all(std::move(q));
  if (!all) co_return detail::fail(all.error());
  std::vector<core::RemoteBinding> found;
  for (auto& b : all->bindings) {
    if (b.device == device) found.push_back(std::move(b));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::tie(a.created_at_ms, a.id) < std::tie(b.created_at_ms, b.id);
  });
  co_return found;
}

net::awaitable<core::Result<CreateResult, ApiError>> Bindings::create(core::DeviceId device,
                                                                       core::Secret password) {
  auto log = detail::log();
  const std::uint32_t rounds = std::max<std::uint32_t>(1, create_rounds());
  for (std::uint32_t round = 1;; ++round) {
    auto res = co_await post(device, password);
    if (res) co_return CreateResult{std::move(*res), false};
    auto err = scrubbed(res.error(), password);
    const bool conflict = err.status == 409;
    if (err.kind != ErrorKind::kUnknownOutcome && !conflict) co_return detail::fail(std::move(err));
    // Never re-send blindly: the first POST may have created the binding, and the API may
    // accept a second one for the same device.
    log->warn("create outcome unclear, looking the device up device={} round={} error=\"{}\"",
              device.canonical(), round, err.to_string());
    auto found = co_await find_by_device(device);
    if (!found) {
      ApiError e = found.error();
      e.kind = ErrorKind::kUnknownOutcome;
      e.title = "create outcome unknown and the lookup failed: " + e.title;
      co_return detail::fail(std::move(e));
    }
    if (!found->empty()) {
      log->info("create adopted existing binding device={} id={}", device.canonical(),
                found->front().id);
      co_return CreateResult{std::move(found->front()), true};
    }
    if (conflict || round >= rounds) co_return detail::fail(std::move(err));
  }
}

std::uint32_t BindingsApi::create_rounds() const { return client_.backoff().max_attempts; }

net::awaitable<core::Result<core::RemoteBinding, ApiError>> BindingsApi::get(std::string binding_id) {
  ApiCall call;
  call.target = binding_target(binding_id);
  auto res = co_await client_.call(std::move(call));
  if (!res) co_return detail::fail(res.error());
  co_return parse_binding(res->body);
}

net::awaitable<core::Result<core::RemoteBinding, ApiError>> BindingsApi::post(
    core::DeviceId device, core::Secret password) {
  ApiCall call;
  call.method = "POST";
  call.target = "/mqtt/bindings";
  call.body = binding_body(device, password);
  auto res = co_await client_.call(std::move(call));
  if (!res) co_return detail::fail(scrubbed(res.error(), password));
  co_return parse_binding(res->body);
}

net::awaitable<core::Result<core::RemoteBinding, ApiError>> BindingsApi::update(
    std::string binding_id, core::DeviceId device, core::Secret password) {
  ApiCall call;
  call.method = "PUT";
  call.target = binding_target(binding_id);
  call.body = binding_body(device, password);
  auto res = co_await client_.call(std::move(call));
  if (!res) co_return detail::fail(scrubbed(res.error(), password));
  co_return parse_binding(res->body);
}

net::awaitable<core::Result<DeleteResult, ApiError>> BindingsApi::remove(std::string binding_id) {
  ApiCall call;
  call.method = "DELETE";
  call.target = binding_target(binding_id);
  auto res = co_await client_.call(std::move(call));
  if (res) co_return DeleteResult::kDeleted;
  if (res.error().status == 404) co_return DeleteResult::kAlreadyGone;  // the desired state
  co_return detail::fail(res.error());
}

}  // namespace thingsync::api
