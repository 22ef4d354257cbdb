#include "thingsync/api/error.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cctype>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_text.hpp"

namespace thingsync::api {
namespace {

constexpr std::size_t kMaxText = 500;  // bytes of a problem's title or detail kept
constexpr std::chrono::seconds kMaxRetryAfter{365 * 24 * 3600};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "Server Error" : "Client Error";
  }
}

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<unsigned> parse_month(std::string_view s) {
  static constexpr std::array<std::string_view, 12> kMonths{
      "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  for (unsigned i = 0; i < kMonths.size(); ++i) {
    if (iequals(s, kMonths[i])) return i + 1;
  }
  return std::nullopt;
}

// "08:49:37" -> seconds of the day.
std::optional<int> parse_clock(std::string_view s) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
  auto h = parse_int(s.substr(0, 2)), m = parse_int(s.substr(3, 2)), sec = parse_int(s.substr(6, 2));
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  return *h * 3600 + *m * 60 + *sec;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<std::int64_t> make_time(int year, std::optional<unsigned> month, std::optional<int> day,
                                      std::optional<int> secs) {
  if (!month || !day || !secs || *day < 1 || *day > 31 || year < 1970) return std::nullopt;
  return days_from_civil(year, *month, static_cast<unsigned>(*day)) * 86400 + *secs;
}

}  // namespace

ApiError make_error(ErrorKind kind, std::string title, std::string detail) {
  ApiError e;
  e.kind = kind;
  e.title = std::move(title);
  e.detail = std::move(detail);
  return e;
}

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTransport: return "transport error";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kUnknownOutcome: return "outcome unknown";
    case ErrorKind::kRateLimited: return "rate limited";
    case ErrorKind::kUnauthorized: return "unauthorized";
    case ErrorKind::kClient: return "client error";
    case ErrorKind::kServer: return "server error";
    case ErrorKind::kProtocol: return "protocol error";
    case ErrorKind::kTls: return "TLS error";
    case ErrorKind::kConfig: return "configuration error";
    case ErrorKind::kCancelled: return "cancelled";
  }
  return "error";
}

bool ApiError::transient() const {
  switch (kind) {
    case ErrorKind::kTransport:
    case ErrorKind::kTimeout:
    case ErrorKind::kRateLimited:
    case ErrorKind::kUnauthorized:
    case ErrorKind::kServer:
      return true;
    default:
      return false;
  }
}

std::string ApiError::to_string() const {
  std::string out;
  if (status != 0) out = std::to_string(status) + ' ';
  out += api::to_string(kind);
  if (!title.empty()) out += ": " + title;
  if (!detail.empty()) out += (title.empty() ? ": " : " — ") + detail;
  if (retry_after) out += " (retry after " + std::to_string(retry_after->count()) + "s)";
  return out;
}

std::optional<std::int64_t> parse_http_date(std::string_view value) {
  value = trim(value);
  auto comma = value.find(',');
  if (comma != std::string_view::npos) {
    auto rest = trim(value.substr(comma + 1));
    auto parts = split_ws(rest);
    if (parts.size() == 5 && iequals(parts[4], "GMT")) {
      // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
      auto year = parse_int(parts[2]);
      if (!year) return std::nullopt;
      return make_time(*year, parse_month(parts[1]), parse_int(parts[0]), parse_clock(parts[3]));
    }
    if (parts.size() == 3 && iequals(parts[2], "GMT") && parts[0].size() == 9) {
      // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
      auto d = parts[0];
      if (d[2] != '-' || d[6] != '-') return std::nullopt;
      auto yy = parse_int(d.substr(7, 2));
      if (!yy) return std::nullopt;
      const int year = *yy < 70 ? 2000 + *yy : 1900 + *yy;  // RFC 9110 5.6.7
      return make_time(year, parse_month(d.substr(3, 3)), parse_int(d.substr(0, 2)),
                       parse_clock(parts[1]));
    }
    return std::nullopt;
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  auto parts = split_ws(value);
  if (parts.size() != 5) return std::nullopt;
  auto year = parse_int(parts[4]);
  if (!year) return std::nullopt;
  return make_time(*year, parse_month(parts[1]), parse_int(parts[2]), parse_clock(parts[3]));
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    std::int64_t secs = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (p != value.data() + value.size()) return std::nullopt;
    // Digits beyond int64 or beyond a year: a year (callers cap their pauses further; a
    // longer value would overflow in milliseconds).
    if (ec == std::errc::result_out_of_range || secs > kMaxRetryAfter.count()) return kMaxRetryAfter;
    if (ec != std::errc()) return std::nullopt;
    return std::chrono::seconds(secs);
  }
  auto at = parse_http_date(value);
  if (!at) return std::nullopt;
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  // Round the sub-second part of `now` down: waiting a fraction too long is the safe side.
  return std::chrono::seconds(std::clamp<std::int64_t>(*at - now_s, 0, kMaxRetryAfter.count()));
}

ApiError classify(int status, std::string_view content_type, std::string_view body,
                  std::optional<std::string_view> retry_after,
                  std::chrono::system_clock::time_point now) {
  ApiError e;
  e.status = status;
  if (status == 429) {
    e.kind = ErrorKind::kRateLimited;
  } else if (status == 503 && retry_after) {
    e.kind = ErrorKind::kRateLimited;
  } else if (status == 401) {
    e.kind = ErrorKind::kUnauthorized;
  } else if (status == 408 || status >= 500) {
    e.kind = ErrorKind::kServer;
  } else if (status >= 400) {
    e.kind = ErrorKind::kClient;
  } else {
    e.kind = ErrorKind::kProtocol;  // 1xx/3xx: nothing in this API answers with those
  }
  if (retry_after) e.retry_after = parse_retry_after(*retry_after, now);

  // problem+json (RFC 9457) or plain JSON with the same members; anything else is ignored so
  // that a proxy's HTML error page does not end up in logs.
  const auto semi = content_type.find(';');
  const auto media = trim(content_type.substr(0, semi));
  if (iequals(media, "application/problem+json") || iequals(media, "application/json")) {
    const auto j = detail::parse_json(body);
    if (j.is_object()) {
      auto text = [&](const char* key) -> std::string {
        auto it = j.find(key);
        if (it == j.end() || !it->is_string()) return {};
        auto s = it->get<std::string>();
        if (s.size() > kMaxText) {
          // Cut before a character, not inside one: back up over UTF-8 continuation bytes.
          std::size_t cut = kMaxText;
          while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
          s.resize(cut);
        }
        return s;
      };
      e.title = text("title");
      e.detail = text("detail");
    }
  }
  if (e.title.empty()) e.title = std::string(reason_phrase(status));
  return e;
}

}  // namespace thingsync::api
