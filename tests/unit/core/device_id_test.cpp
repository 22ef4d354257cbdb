#include "thingsync/core/device_id.hpp"

#include <catch2/catch.hpp>

using thingsync::core::DeviceId;
using thingsync::core::DeviceKind;

TEST_CASE("device spellings collapse to one canonical id", "[core][device_id]") {
  const auto imei = DeviceId::parse("imei:350266800610993");
  REQUIRE(imei);
  CHECK(imei->canonical() == "imei:350266800610993");
  CHECK(imei->kind() == DeviceKind::kImei);
  for (const char* s : {"IMEI:350266800610993", "urn:dev:imei:350266800610993",
                        "urn:dev:IMEI:350266800610993:", "URN:DEV:imei:350266800610993",
                        "Urn:Dev:Imei:350266800610993:"}) {
    INFO(s);
    const auto other = DeviceId::parse(s);
    REQUIRE(other);
    CHECK(*other == *imei);
  }
}

TEST_CASE("every kind has a canonical short form and a platform URN", "[core][device_id]") {
  struct Row {
    const char* spelling;
    const char* canonical;
    const char* urn;
    DeviceKind kind;
  };
  const Row rows[] = {
      {"imei:3502668006109931", "imei:3502668006109931", "urn:dev:IMEI:3502668006109931:",
       DeviceKind::kImei},
      {"urn:dev:DEVEUI:EA8FA35E2CF3489F:", "deveui:ea8fa35e2cf3489f",
       "urn:dev:DEVEUI:ea8fa35e2cf3489f:", DeviceKind::kDevEui},
      {"DVNUUID:ED8B73AC-F48F-4457-8CCC-9926CF28979F",
       "dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f",
       "urn:dev:DVNUUID:ed8b73ac-f48f-4457-8ccc-9926cf28979f:", DeviceKind::kDvnUuid},
      {"478A82D4-128F-47A6-AA61-2EAC3F2A23AD", "478a82d4-128f-47a6-aa61-2eac3f2a23ad",
       "urn:uuid:478a82d4-128f-47a6-aa61-2eac3f2a23ad", DeviceKind::kUuid},
  };
  for (const auto& r : rows) {
    INFO(r.spelling);
    const auto id = DeviceId::parse(r.spelling);
    REQUIRE(id);
    CHECK(id->canonical() == r.canonical);
    CHECK(id->urn() == r.urn);
    CHECK(id->kind() == r.kind);
    // The URN spelling parses back to the same device (except the bare UUID's urn:uuid:).
    if (r.kind != DeviceKind::kUuid) CHECK(DeviceId::parse(id->urn()) == id);
  }
}

TEST_CASE("a bare uuid and dvnuuid of the same uuid are different devices", "[core][device_id]") {
  const auto bare = DeviceId::parse("ed8b73ac-f48f-4457-8ccc-9926cf28979f");
  const auto dvn = DeviceId::parse("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f");
  REQUIRE(bare);
  REQUIRE(dvn);
  CHECK(*bare != *dvn);
}

TEST_CASE("malformed device ids are rejected with a reason", "[core][device_id]") {
  struct Row {
    const char* spelling;
    const char* reason_part;
  };
  const Row rows[] = {
      {"", "empty"},
      {"imei:35026680061099", "15 or 16 digits"},         // 14 digits
      {"imei:35026680061099311", "15 or 16 digits"},      // 17 digits
      {"imei:35026680061099a", "only digits"},
      {"deveui:ea8fa35e2cf3489g", "only hex"},
      {"deveui:ea8fa35e2cf348", "16 hex digits"},
      {"imei:350266800610993:", "trailing ':'"},           // short form takes no colon
      {"urn:dev:imei:350266800610993::", "only digits"},
      {"urn:dev:imei:350266800610993x", "only digits"},   // trailing garbage
      {"dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979", "UUID"},
      {"ed8b73ac-f48f-4457-8ccc-9926cf28979fz", "UUID"},
      {"urn:foo:imei:350266800610993", "urn:dev:"},
      {"mac:001122334455", "unknown device ID format"},
      {" imei:350266800610993", "unknown device ID format"},
  };
  for (const auto& r : rows) {
    INFO(r.spelling);
    const auto res = DeviceId::parse_with_reason(r.spelling);
    CHECK_FALSE(res.id);
    CHECK_THAT(res.reason, Catch::Contains(r.reason_part));
  }
}

TEST_CASE("device ids order by canonical form", "[core][device_id]") {
  const auto a = *DeviceId::parse("urn:dev:IMEI:350266800610993:");
  const auto b = *DeviceId::parse("imei:350266800610994");
  const auto c = *DeviceId::parse("deveui:ea8fa35e2cf3489f");
  CHECK(a < b);
  CHECK(c < a);
  CHECK(std::hash<DeviceId>{}(a) == std::hash<DeviceId>{}(*DeviceId::parse("imei:350266800610993")));
}
