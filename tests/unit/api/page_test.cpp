#include "thingsync/api/bindings.hpp"

#include <catch2/catch.hpp>

using namespace thingsync::api;

TEST_CASE("a page of bindings parses items, skips unknown device ids and keeps next",
          "[api][page]") {
  const auto page = parse_page(R"({
    "items": [
      {"id": "224ECC46-291d-482b-993f-c8b508adb0da", "deviceId": "urn:dev:IMEI:350266800610993:",
       "createdAt": "2025-09-01T23:00:00.000Z", "modifiedAt": "2025-09-02T00:00:00.250Z",
       "username": "urn:dev:IMEI:350266800610993:"},
      {"id": "b1", "deviceId": "not-a-device"}
    ],
    "next": "/mqtt/bindings?cursor=abc"})");
  REQUIRE(page);
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].id == "224ecc46-291d-482b-993f-c8b508adb0da");
  CHECK(page->items[0].device.canonical() == "imei:350266800610993");
  CHECK(page->items[0].created_at_ms == 1756767600000);
  CHECK(page->items[0].modified_at_ms == 1756771200250);
  CHECK(page->skipped == std::vector<std::string>{"b1"});
  CHECK(page->next == "/mqtt/bindings?cursor=abc");
}

TEST_CASE("the last page has no next link", "[api][page]") {
  auto page = parse_page(R"({"items": [], "next": null})");
  REQUIRE(page);
  CHECK_FALSE(page->next);
  page = parse_page(R"({"items": []})");
  REQUIRE(page);
  CHECK_FALSE(page->next);
}

TEST_CASE("broken pages are protocol errors that say what is wrong", "[api][page]") {
  struct Row {
    const char* body;
    const char* title;
  };
  const Row rows[] = {
      {R"({"items": [{"id": "a", "deviceId": "imei:350266800610993"})", "page is not valid JSON"},
      {"", "page is not valid JSON"},
      {"[]", "page is not a JSON object"},
      {R"({"data": []})", "page has no items array"},
      {R"({"items": [{"deviceId": "imei:350266800610993"}]})", "binding has no id"},
      {R"({"items": [{"id": "a"}]})", "binding has no deviceId"},
      {R"({"items": [{"id": "a", "deviceId": "imei:350266800610993", "createdAt": "yesterday"}]})",
       "binding has a malformed createdAt"},
      {R"({"items": [], "next": 5})", "page has a non-string next link"},
  };
  for (const auto& r : rows) {
    INFO(r.body);
    auto page = parse_page(r.body);
    REQUIRE_FALSE(page);
    CHECK(page.error().kind == ErrorKind::kProtocol);
    CHECK(page.error().title == r.title);
  }
}

TEST_CASE("list query encodes every filter with ISO 8601 millisecond times", "[api][page]") {
  ListQuery q;
  CHECK(q.to_query_string().empty());
  q.client_id = "79658ca8-f1ba-4c25-b824-93813e9fba76";
  q.device_id = "urn:dev:IMEI:350266800610993:";
  q.username = "u";
  q.created_before_ms = 1;
  q.created_since_ms = 0;
  q.modified_before_ms = 1756767600000;
  q.modified_since_ms = 1756767600123;
  q.sort = "createdAt,-modifiedAt";
  q.limit = 100;
  CHECK(q.to_query_string() ==
        "clientId=79658ca8-f1ba-4c25-b824-93813e9fba76"
        "&deviceId=urn%3Adev%3AIMEI%3A350266800610993%3A&username=u"
        "&createdBefore=1970-01-01T00%3A00%3A00.001Z&createdSince=1970-01-01T00%3A00%3A00.000Z"
        "&modifiedBefore=2025-09-01T23%3A00%3A00.000Z&modifiedSince=2025-09-01T23%3A00%3A00.123Z"
        "&sort=createdAt%2C-modifiedAt&limit=100");
}

namespace {

// The same document with one more member that only the full JSON parser takes (an escape):
// the decoder's fast scanner gives up on it, so both paths get to decode the same members.
std::string needing_full_parser(const std::string& body) {
  const auto brace = body.find('{');
  std::string out = body;
  out.insert(brace + 1, R"("x-escaped":"caf\u00e9",)");
  return out;
}

}  // namespace

TEST_CASE("a binding decodes the same with or without the full JSON parser", "[api][page]") {
  struct Row {
    std::string body;
    std::string id;     // expected id, or empty when an error is expected
    std::string title;  // expected error title
  };
  const std::string dev = R"("deviceId":"urn:dev:IMEI:350266800610993:")";
  const Row rows[] = {
      {R"({"id":"224ECC46-291d-482b-993f-c8b508adb0da",)" + dev +
           R"(,"createdAt":"2025-09-01T23:00:00.000Z","modifiedAt":null})",
       "224ecc46-291d-482b-993f-c8b508adb0da", ""},
      {R"({"id":"first","id":"second",)" + dev + "}", "second", ""},  // the last key wins
      {R"({"nested":{"id":"x","deviceId":"y"},"list":[1,{"id":"z"},[]],"id":"a",)" + dev + "}",
       "a", ""},
      {"  {\n\t\"id\" : \"a\" ,  " + dev + R"( , "n": -12, "t": true, "f": false, "o": {} }  )",
       "a", ""},
      {R"({"id":"a","deviceId":"not-a-device"})", "", "binding has an unknown deviceId format"},
      {R"({"id":"",)" + dev + "}", "", "binding has no id"},
      {R"({"id":5,)" + dev + "}", "", "binding has no id"},
      {R"({"id":"a"})", "", "binding has no deviceId"},
      {R"({"id":"a",)" + dev + R"(,"createdAt":7})", "", "binding has a malformed createdAt"},
      {R"({"id":"a",)" + dev + R"(,"modifiedAt":"yesterday"})", "", "binding has a malformed modifiedAt"},
  };
  for (const auto& r : rows) {
    for (const auto& body : {r.body, needing_full_parser(r.body)}) {
      INFO(body);
      const auto b = parse_binding(body);
      if (r.id.empty()) {
        REQUIRE_FALSE(b);
        CHECK(b.error().title == r.title);
      } else {
        REQUIRE(b);
        CHECK(b->id == r.id);
        CHECK(b->device.canonical() == "imei:350266800610993");
      }
    }
  }
  const auto timed = parse_binding(rows[0].body);
  REQUIRE(timed);
  CHECK(timed->created_at_ms == 1756767600000);
  CHECK(timed->modified_at_ms == 0);
}

TEST_CASE("bodies beyond plain JSON go to the full parser, which judges them", "[api][page]") {
  const std::string dev = R"("deviceId":"imei:350266800610993")";
  SECTION("valid: escapes, non-ASCII text, fractions, exponents, big numbers, deep nesting") {
    const std::string bodies[] = {
        R"({"id":"\u0041b",)" + dev + "}",
        R"({"id":"ab","note":"caf)" + std::string("\xC3\xA9") + R"(",)" + dev + "}",
        R"({"id":"ab","n":1.5,"e":-2E+3,"z":-0,)" + dev + "}",
        R"({"id":"ab","big":123456789012345678901234567890,)" + dev + "}",
        R"({"id":"ab","deep":)" + std::string(40, '[') + std::string(40, ']') + "," + dev + "}",
    };
    for (const auto& body : bodies) {
      INFO(body);
      const auto b = parse_binding(body);
      REQUIRE(b);
      CHECK(b->id == "ab");
    }
  }
  SECTION("invalid: the full parser says so") {
    const std::string bodies[] = {
        R"({"id":"a",)" + dev + ",}",
        R"({"id":"a","n":01,)" + dev + "}",
        R"({"id":"a","n":1e999,)" + dev + "}",  // overflows a double
        "{\"id\":\"a\x01\"," + dev + "}",       // a raw control character
        R"({"id":"\ud800",)" + dev + "}",        // a lone surrogate
        R"({"id":"a","t":tru,)" + dev + "}",
        R"({"id":"a",)" + dev + "} {}",
        R"({"id":"a",)" + dev,
        "",
        // nlohmann's lexer ends the input at a NUL byte; JSON has no raw NUL anywhere. Found by
        // fuzz/fuzz_api_decode (fuzz/corpus/api_decode/regression-nul-after-value).
        R"({"id":"a",)" + dev + "}" + std::string("\0\0\1\xA6", 4),
        R"({"id":"a",)" + dev + "}" + std::string(1, '\0'),
        R"({"id":"a",)" + std::string(1, '\0') + dev + "}",
    };
    for (const auto& body : bodies) {
      INFO(body);
      const auto b = parse_binding(body);
      REQUIRE_FALSE(b);
      CHECK(b.error().title == "binding is not valid JSON");
      // Inside a page the same object is just as broken ("" would be an empty page).
      if (body.empty()) continue;
      const auto page = parse_page("{\"items\":[" + body + "]}");
      REQUIRE_FALSE(page);
      CHECK(page.error().title == "page is not valid JSON");
    }
  }
}

TEST_CASE("a page decodes the same with or without the full JSON parser", "[api][page]") {
  const std::string item =
      R"({"id":"B1","deviceId":"imei:350266800610993","createdAt":"2025-09-01T23:00:00.000Z"})";
  SECTION("items, skipped items and the next link") {
    const std::string body =
        R"({"items":[)" + item + R"(,{"id":"b2","deviceId":"bad"}],"next":"/mqtt/bindings?c=1"})";
    for (const auto& b : {body, needing_full_parser(body)}) {
      INFO(b);
      const auto page = parse_page(b);
      REQUIRE(page);
      REQUIRE(page->items.size() == 1);
      CHECK(page->items[0].id == "b1");
      CHECK(page->skipped == std::vector<std::string>{"b2"});
      CHECK(page->next == "/mqtt/bindings?c=1");
    }
  }
  SECTION("an escaped next link is unescaped") {
    const auto page = parse_page(R"({"items":[],"next":"\/mqtt\/bindings?c=2"})");
    REQUIRE(page);
    CHECK(page->next == "/mqtt/bindings?c=2");
  }
  SECTION("the last items member wins") {
    for (const auto& b : {R"({"items":[)" + item + R"(],"items":[]})",
                          needing_full_parser(R"({"items":[)" + item + R"(],"items":[]})")}) {
      INFO(b);
      const auto page = parse_page(b);
      REQUIRE(page);
      CHECK(page->items.empty());
    }
    const auto not_array = parse_page(R"({"items":[)" + item + R"(],"items":{}})");
    REQUIRE_FALSE(not_array);
    CHECK(not_array.error().title == "page has no items array");
  }
  SECTION("members named like a binding's outside the items array are not items") {
    const auto page = parse_page(R"({"meta":{"items":[)" + item + R"(]},"items":[[)" + item +
                                 R"(]]})");
    REQUIRE_FALSE(page);
    CHECK(page.error().title == "binding is not a JSON object");
  }
}
