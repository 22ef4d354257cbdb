#include "thingsync/api/error.hpp"

#include <catch2/catch.hpp>

using namespace thingsync::api;
using namespace std::chrono_literals;

namespace {
// 2015-10-21T07:28:00Z
const std::chrono::system_clock::time_point kNow{std::chrono::seconds(1445412480)};
const ApiError classify_status(int status, std::optional<std::string_view> retry_after = {}) {
  return classify(status, "", "", retry_after, kNow);
}
}  // namespace

TEST_CASE("classify splits statuses into transient and permanent", "[api][error]") {
  struct Row {
    int status;
    ErrorKind kind;
    bool transient;
  };
  const Row rows[] = {
      {400, ErrorKind::kClient, false},      {401, ErrorKind::kUnauthorized, true},
      {403, ErrorKind::kClient, false},      {404, ErrorKind::kClient, false},
      {408, ErrorKind::kServer, true},       {409, ErrorKind::kClient, false},
      {422, ErrorKind::kClient, false},      {429, ErrorKind::kRateLimited, true},
      {500, ErrorKind::kServer, true},       {502, ErrorKind::kServer, true},
      {503, ErrorKind::kServer, true},       {504, ErrorKind::kServer, true},
      {302, ErrorKind::kProtocol, false},
  };
  for (const auto& r : rows) {
    INFO(r.status);
    const auto e = classify_status(r.status);
    CHECK(e.kind == r.kind);
    CHECK(e.transient() == r.transient);
    CHECK(e.status == r.status);
    CHECK(!e.title.empty());
  }
}

TEST_CASE("classify treats 503 with Retry-After as rate limiting", "[api][error]") {
  const auto e = classify_status(503, "7");
  CHECK(e.kind == ErrorKind::kRateLimited);
  CHECK(e.retry_after == 7s);
}

TEST_CASE("Retry-After accepts delta seconds and the three HTTP-date forms", "[api][error]") {
  CHECK(parse_retry_after("120", kNow) == 120s);
  CHECK(parse_retry_after(" 0 ", kNow) == 0s);
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", kNow) == 30s);
  CHECK(parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", kNow) == 60s);
  CHECK(parse_retry_after("Wed Oct 21 07:28:05 2015", kNow) == 5s);
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", kNow) == 0s);  // in the past
  CHECK(parse_retry_after("soon", kNow) == std::nullopt);
  CHECK(parse_retry_after("-5", kNow) == std::nullopt);
  CHECK(parse_retry_after("12abc", kNow) == std::nullopt);
  CHECK(parse_retry_after("Wed, 21 Foo 2015 07:28:30 GMT", kNow) == std::nullopt);
  CHECK(parse_retry_after("", kNow) == std::nullopt);
}

TEST_CASE("HTTP-date parses to Unix seconds", "[api][error]") {
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777);
  CHECK(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT") == 0);
  CHECK(parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT") == 1835481599);
  CHECK(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT") == std::nullopt);
}

TEST_CASE("classify reads title and detail from problem+json", "[api][error]") {
  const auto e = classify(400, "application/problem+json; charset=utf-8",
                          R"({"type":"about:blank","title":"Bad Request","status":400,)"
                          R"("detail":"password must be at least 24 characters"})",
                          std::nullopt, kNow);
  CHECK(e.kind == ErrorKind::kClient);
  CHECK(e.title == "Bad Request");
  CHECK(e.detail == "password must be at least 24 characters");
  CHECK(e.to_string() ==
        "400 client error: Bad Request — password must be at least 24 characters");
}

TEST_CASE("classify ignores bodies that are not JSON", "[api][error]") {
  const auto e = classify(502, "text/html", "<html>upstream secret-ish page</html>", std::nullopt,
                          kNow);
  CHECK(e.title == "Bad Gateway");
  CHECK(e.detail.empty());
  const auto broken = classify(500, "application/problem+json", "{\"title\":", std::nullopt, kNow);
  CHECK(broken.title == "Internal Server Error");
  // nlohmann alone would stop at the NUL and read the title.
  const std::string nul = std::string("{\"title\":\"from junk\"}") + '\0' + "junk";
  const auto trailing = classify(500, "application/problem+json", nul, std::nullopt, kNow);
  CHECK(trailing.title == "Internal Server Error");
}

// Found by fuzz/fuzz_api_decode (fuzz/corpus/api_decode/regression-*).
TEST_CASE("Retry-After beyond a year is a year, in seconds and as a date", "[api][error]") {
  constexpr auto kYear = std::chrono::seconds(365 * 24 * 3600);
  CHECK(parse_retry_after("31536000", kNow) == kYear);
  CHECK(parse_retry_after("31536001", kNow) == kYear);
  CHECK(parse_retry_after("99999999999999999999999999", kNow) == kYear);  // beyond int64
  CHECK(parse_retry_after("Fri, 01 Jan 9999 00:00:00 GMT", kNow) == kYear);
  // What callers do with it must not overflow: milliseconds of a year fit easily.
  const auto ms = std::chrono::milliseconds(*parse_retry_after("9223372036854775807", kNow));
  CHECK(ms.count() == 31536000000);
}

TEST_CASE("a long problem title is cut before a character, never inside one", "[api][error]") {
  std::string title = "x";
  for (int i = 0; i < 400; ++i) title += "\xC3\xA9";  // é: two bytes each, the 500th cut
  const auto e = classify(400, "application/problem+json",
                          R"({"title":")" + title + R"(","detail":"d"})", std::nullopt, kNow);
  CHECK(e.title.size() == 499);  // "x" and 249 whole é; the 250th would end at byte 501
  CHECK(e.title == title.substr(0, 499));
  CHECK(e.detail == "d");
}
