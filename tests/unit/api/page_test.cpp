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
