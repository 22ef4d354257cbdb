// Fuzzes the decoding of Things API answers: api::parse_page and api::parse_binding (the JSON
// of GET/POST/PUT /mqtt/bindings answers), api::classify (problem+json error bodies) and
// api::parse_retry_after / parse_http_date (the Retry-After header). Every decoder gets the
// whole input, so one corpus of realistic bodies and header values feeds them all.
// Invariants: nothing throws; a rejected body is a kProtocol error that says why; a decoded
// binding has a lower-case id, a canonical device ID and times that survive a format/parse round
// trip; a page accounts for each of its items (decoded or skipped); a binding decodes the same
// alone and inside a page; an error's title and detail are short, valid UTF-8 (they go into logs
// and the state file) and never come from a body that is not JSON; a Retry-After delay can be
// turned into milliseconds, as the client does, without overflow.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "thingsync/api/decode.hpp"
#include "thingsync/api/error.hpp"
#include "thingsync/core/time.hpp"

namespace {

namespace api = thingsync::api;
namespace core = thingsync::core;
using Clock = std::chrono::system_clock;

// 2025-09-01T23:00:00Z: a fixed "now", so that runs are reproducible.
const Clock::time_point kNow{std::chrono::seconds(1'756'767'600)};

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80           ? 1
                          : (c >> 5) == 0x6  ? 2
                          : (c >> 4) == 0xE  ? 3
                          : (c >> 3) == 0x1E ? 4
                                             : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

void check_protocol_error(const api::ApiError& e, std::string_view what) {
  FUZZ_CHECK(e.kind == api::ErrorKind::kProtocol && e.status == 0 && !e.retry_after,
             std::string(what) + ": " + e.to_string());
  FUZZ_CHECK(!e.title.empty(), std::string(what) + " failed without saying why");
}

void check_time(std::int64_t ms, const std::string& id) {
  const std::string text = core::format_iso8601_ms(ms);
  const auto again = core::parse_iso8601_ms(text);
  FUZZ_CHECK(again && *again == ms, "time " + std::to_string(ms) + " of binding " + id +
                                        " formats as '" + text + "', which does not parse back");
}

void check_binding_value(const core::RemoteBinding& b) {
  FUZZ_CHECK(!b.id.empty(), "a binding with an empty id");
  for (char c : b.id) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), "binding id not lower case: " + b.id);
  const auto again = core::DeviceId::parse(b.device.canonical());
  FUZZ_CHECK(again && *again == b.device, "device does not re-parse: " + b.device.canonical());
  check_time(b.created_at_ms, b.id);
  check_time(b.modified_at_ms, b.id);
}

bool same(const core::RemoteBinding& a, const core::RemoteBinding& b) {
  return a.id == b.id && a.device == b.device && a.created_at_ms == b.created_at_ms &&
         a.modified_at_ms == b.modified_at_ms;
}

void check_page(std::string_view body) {
  const auto page = api::parse_page(body);
  if (!page) {
    check_protocol_error(page.error(), "parse_page");
    return;
  }
  for (const auto& b : page->items) check_binding_value(b);
  if (page->next) FUZZ_CHECK(!page->next->empty(), "an empty next link kept");
  // Every item of the page is either decoded or reported as skipped.
  const auto j = nlohmann::json::parse(body, nullptr, false);
  FUZZ_CHECK(j.is_object() && j.contains("items"), "a page accepted without an items member");
  FUZZ_CHECK(j["items"].size() == page->items.size() + page->skipped.size(),
             "page items lost: " + std::to_string(j["items"].size()) + " in the body, " +
                 std::to_string(page->items.size()) + " decoded, " +
                 std::to_string(page->skipped.size()) + " skipped");
}

void check_binding(std::string_view body) {
  const auto b = api::parse_binding(body);
  const std::string wrapped = "{\"items\":[" + std::string(body) + "]}";
  if (!b) {
    check_protocol_error(b.error(), "parse_binding");
    return;
  }
  check_binding_value(*b);
  // The same object inside a page decodes to the same binding.
  const auto page = api::parse_page(wrapped);
  FUZZ_CHECK(page && page->items.size() == 1 && page->skipped.empty() && same(page->items[0], *b),
             "binding " + b->id + " decodes differently inside a page");
}

void check_error_text(const api::ApiError& e) {
  const std::string what = e.to_string();
  FUZZ_CHECK(!e.title.empty() && !what.empty(), "an error without a title");
  FUZZ_CHECK(e.title.size() <= 500 && e.detail.size() <= 500,
             "problem title or detail not cut to 500 bytes: " + std::to_string(e.title.size()) +
                 ", " + std::to_string(e.detail.size()));
  FUZZ_CHECK(valid_utf8(e.title) && valid_utf8(e.detail),
             "problem title or detail is not valid UTF-8 (title " + std::to_string(e.title.size()) +
                 " bytes, detail " + std::to_string(e.detail.size()) + " bytes)");
}

void check_problem(std::string_view body) {
  const auto e =
      api::classify(422, "application/problem+json; charset=utf-8", body, std::nullopt, kNow);
  FUZZ_CHECK(e.kind == api::ErrorKind::kClient && e.status == 422 && !e.retry_after, e.to_string());
  check_error_text(e);

  const auto r = api::classify(503, "application/json", body, "120", kNow);
  FUZZ_CHECK(r.kind == api::ErrorKind::kRateLimited && r.retry_after == std::chrono::seconds(120),
             r.to_string());
  // Both media types decode alike; without a title in the body each gets its reason phrase.
  FUZZ_CHECK(r.detail == e.detail && (r.title == e.title || (e.title == "Unprocessable Content" &&
                                                             r.title == "Service Unavailable")),
             "application/json and application/problem+json bodies decode differently");

  // A body that is not JSON by its type (a proxy's HTML page) never reaches the error text.
  const auto h = api::classify(502, "text/html", body, std::nullopt, kNow);
  FUZZ_CHECK(h.kind == api::ErrorKind::kServer && h.title == "Bad Gateway" && h.detail.empty(),
             "a text/html body reached the error: " + h.to_string());
}

void check_retry_after(std::string_view value) {
  // The header value arrives without CR/LF; an HTTP parser has split the lines already.
  if (value.find_first_of("\r\n") != std::string_view::npos) return;
  const auto date = api::parse_http_date(value);
  const auto delay = api::parse_retry_after(value, kNow);
  if (!delay) return;
  FUZZ_CHECK(delay->count() >= 0, "a negative Retry-After delay");
  // ApiClient turns the delay into std::chrono::milliseconds: that must not overflow.
  FUZZ_CHECK(delay->count() <= std::numeric_limits<std::int64_t>::max() / 1000,
             "Retry-After '" + std::string(value) + "' gives " + std::to_string(delay->count()) +
                 " s, which overflows as milliseconds");
  if (date) FUZZ_CHECK(*date >= 0, "an HTTP-date before 1970");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = thingsync::fuzz::as_text(data, size);
  check_page(text);
  check_binding(text);
  check_problem(text);
  check_retry_after(text);
  return 0;
}
