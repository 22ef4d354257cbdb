// The binding operations of the OpenAPI file and their validation, over real sockets.
#include <algorithm>
#include <cctype>

#include <catch2/catch.hpp>

#include "common.hpp"

using nlohmann::json;
using simtest::kGoodPassword;
using simtest::Sim;
using simtest::unique_imei;

namespace {

// Shape matchers: 'd' a digit, 'x' a lower-case hex digit, anything else itself. (std::regex
// trips a GCC 12 -Wmaybe-uninitialized false positive under the sanitizer build.)
bool matches_shape(const std::string& s, std::string_view shape) {
  if (s.size() != shape.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const bool ok = shape[i] == 'd'   ? std::isdigit(c) != 0
                    : shape[i] == 'x' ? (std::isdigit(c) != 0 || (c >= 'a' && c <= 'f'))
                                      : s[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}
constexpr std::string_view kIsoMs = "dddd-dd-ddTdd:dd:dd.dddZ";
constexpr std::string_view kUuid = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

void check_problem(const simtest::HttpResult& r, int status) {
  INFO(r.body);
  CHECK(r.status == status);
  CHECK(r.header("content-type") == "application/problem+json");
  const auto p = r.json();
  CHECK(p.at("status") == status);
  CHECK(p.at("type").is_string());
  CHECK(p.at("title").is_string());
  CHECK(p.at("detail").is_string());
}

}  // namespace

TEST_CASE("the first stdout line names the listening URL", "[sim][api]") {
  Sim sim;
  const std::string prefix = "listening on http://127.0.0.1:";
  REQUIRE(sim.first_line().rfind(prefix, 0) == 0);
  const auto port = sim.first_line().substr(prefix.size());
  CHECK(!port.empty());
  CHECK(std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }));
  CHECK(sim.port() != 0);
}

TEST_CASE("a created binding carries platform fields and never its password", "[sim][api]") {
  Sim sim;
  const auto r = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"},
                                             {"password", kGoodPassword}});
  REQUIRE(r.status == 201);
  CHECK(r.header("content-type") == "application/json");
  const auto b = r.json();
  CHECK(matches_shape(b.at("id").get<std::string>(), kUuid));
  CHECK(r.header("location") == "/mqtt/bindings/" + b["id"].get<std::string>());
  CHECK(b.at("deviceId") == "imei:350266800610993");
  CHECK(b.at("username") == "urn:dev:IMEI:350266800610993:");
  CHECK(matches_shape(b.at("createdAt").get<std::string>(), kIsoMs));
  CHECK(b.at("modifiedAt") == b.at("createdAt"));
  CHECK(b.at("createdBy") == "principal/static");
  CHECK(b.at("modifiedBy") == "principal/static");
  CHECK_FALSE(b.contains("password"));
  CHECK(r.body.find(kGoodPassword) == std::string::npos);

  const auto g = sim.get("/mqtt/bindings/" + b["id"].get<std::string>());
  REQUIRE(g.status == 200);
  CHECK(g.json() == b);
  CHECK(g.body.find(kGoodPassword) == std::string::npos);
}

TEST_CASE("a binding without a password is accepted because only deviceId is required",
          "[sim][api]") {
  Sim sim;
  CHECK(sim.post("/mqtt/bindings", {{"deviceId", unique_imei()}}).status == 201);
}

TEST_CASE("read-only fields in a create or update request are ignored", "[sim][api]") {
  Sim sim;
  json body = {{"deviceId", "deveui:ea8fa35e2cf3489f"},
               {"password", kGoodPassword},
               {"id", "224ecc46-291d-482b-993f-c8b508adb0da"},
               {"username", "someone-else"},
               {"createdAt", "2000-01-01T00:00:00.000Z"},
               {"createdBy", "principal/mallory"},
               {"modifiedAt", "2000-01-01T00:00:00.000Z"},
               {"modifiedBy", "principal/mallory"}};
  const auto r = sim.post("/mqtt/bindings", body);
  REQUIRE(r.status == 201);
  const auto b = r.json();
  CHECK(b["id"] != "224ecc46-291d-482b-993f-c8b508adb0da");
  CHECK(b["username"] == "urn:dev:DEVEUI:ea8fa35e2cf3489f:");
  CHECK(b["createdAt"] != "2000-01-01T00:00:00.000Z");
  CHECK(b["modifiedAt"] != "2000-01-01T00:00:00.000Z");
  CHECK(b["createdBy"] == "principal/static");
  CHECK(b["modifiedBy"] == "principal/static");
  // The admin interface takes modifiedBy and modifiedAt; the API still does not.
  body["modifiedAt"] = "2099-01-01T00:00:00.000Z";
  const auto u = sim.put("/mqtt/bindings/" + b["id"].get<std::string>(), body);
  REQUIRE(u.status == 200);
  CHECK(u.json()["modifiedAt"] > b["modifiedAt"]);
  CHECK(u.json()["modifiedAt"] < "2099");
  CHECK(u.json()["modifiedBy"] == "principal/static");
  CHECK(u.json()["createdAt"] == b["createdAt"]);
}

TEST_CASE("every device ID kind gets its platform username", "[sim][api]") {
  Sim sim;
  const std::pair<const char*, const char*> rows[] = {
      {"URN:DEV:imei:350266800610994", "urn:dev:IMEI:350266800610994:"},
      {"urn:dev:DEVEUI:EA8FA35E2CF3489E:", "urn:dev:DEVEUI:ea8fa35e2cf3489e:"},
      {"dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f",
       "urn:dev:DVNUUID:ed8b73ac-f48f-4457-8ccc-9926cf28979f:"},
      {"478a82d4-128f-47a6-aa61-2eac3f2a23ad", "urn:uuid:478a82d4-128f-47a6-aa61-2eac3f2a23ad"},
  };
  for (const auto& [spelling, username] : rows) {
    INFO(spelling);
    const auto r = sim.post("/mqtt/bindings", {{"deviceId", spelling}, {"password", kGoodPassword}});
    REQUIRE(r.status == 201);
    CHECK(r.json()["deviceId"] == spelling);
    CHECK(r.json()["username"] == username);
  }
}

TEST_CASE("by default a second binding for the same device is accepted, as the API may",
          "[sim][api]") {
  Sim sim;
  const auto first = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"}});
  REQUIRE(first.status == 201);
  const auto second = sim.post("/mqtt/bindings", {{"deviceId", "URN:DEV:imei:350266800610993:"}});
  REQUIRE(second.status == 201);
  CHECK(second.json()["id"] != first.json()["id"]);
  const auto items = sim.get("/mqtt/bindings?deviceId=imei:350266800610993").json()["items"];
  REQUIRE(items.size() == 2);
  // Oldest first; two creates of one millisecond share createdAt, and then the id decides.
  const auto key = [](const auto& b) {
    return std::make_pair(b["createdAt"].template get<std::string>(),
                          b["id"].template get<std::string>());
  };
  CHECK(key(items[0]) < key(items[1]));
  CHECK(((items[0]["id"] == first.json()["id"] && items[1]["id"] == second.json()["id"]) ||
         (items[1]["id"] == first.json()["id"] && items[0]["id"] == second.json()["id"])));
  // A PUT may move a binding onto a device that has one too.
  const auto other = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610994"}});
  const auto moved = sim.put("/mqtt/bindings/" + other.json()["id"].get<std::string>(),
                             {{"deviceId", "imei:350266800610993"}});
  CHECK(moved.status == 200);
  CHECK(sim.get("/mqtt/bindings?deviceId=imei:350266800610993").json()["items"].size() == 3);
}

TEST_CASE("a second binding for the same device in another spelling is 409 with "
          "--duplicates reject",
          "[sim][api]") {
  Sim sim({"--duplicates", "reject"});
  const auto first = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"}});
  REQUIRE(first.status == 201);
  const auto second = sim.post("/mqtt/bindings", {{"deviceId", "URN:DEV:imei:350266800610993:"}});
  check_problem(second, 409);
  CHECK(second.json()["bindingId"] == first.json()["id"]);
}

TEST_CASE("malformed JSON is 400 problem+json", "[sim][api]") {
  Sim sim;
  check_problem(sim.call("POST", "/mqtt/bindings", R"({"deviceId": "imei:35026680061099)"), 400);
  check_problem(sim.call("POST", "/mqtt/bindings", R"(["imei:350266800610993"])"), 400);
}

TEST_CASE("a body that is not application/json is 415", "[sim][api]") {
  Sim sim;
  const std::string body = R"({"deviceId":"imei:350266800610993"})";
  check_problem(sim.call("POST", "/mqtt/bindings", body, {{"Content-Type", "text/plain"}}), 415);
  check_problem(sim.call("POST", "/mqtt/bindings", body,
                         {{"Content-Type", "application/x-www-form-urlencoded"}}),
                415);
  CHECK(sim.call("POST", "/mqtt/bindings", body,
                 {{"Content-Type", "Application/JSON; charset=utf-8"}})
            .status == 201);
}

TEST_CASE("a body over the size cap is 413", "[sim][api]") {
  Sim sim({"--max-body", "1024"});
  const json big = {{"deviceId", "imei:350266800610993"}, {"filler", std::string(4096, 'x')}};
  check_problem(sim.post("/mqtt/bindings", big), 413);
  CHECK(sim.get("/mqtt/bindings").json()["items"].empty());
}

TEST_CASE("a request without deviceId is 400", "[sim][api]") {
  Sim sim;
  check_problem(sim.post("/mqtt/bindings", {{"password", kGoodPassword}}), 400);
  check_problem(sim.post("/mqtt/bindings", {{"deviceId", 350266800610993LL}}), 400);
}

TEST_CASE("a deviceId outside every pattern is 400", "[sim][api]") {
  Sim sim;
  for (const char* bad : {"", "imei:12345", "imei:35026680061099x", "deveui:ea8fa35e2cf3489",
                          "dvnuuid:not-a-uuid", "urn:dev:foo:123", "urn:imei:350266800610993",
                          "imei:350266800610993:", "ed8b73ac-f48f-4457-8ccc-9926cf28979"}) {
    INFO(bad);
    check_problem(sim.post("/mqtt/bindings", {{"deviceId", bad}}), 400);
  }
  CHECK(sim.get("/mqtt/bindings").json()["items"].empty());
}

TEST_CASE("a password that breaks the policy is 400 and is not echoed", "[sim][api]") {
  Sim sim;
  for (const char* bad : {"Short-1a", "alllowercase-and-digits-123456", "ALLUPPER-AND-DIGITS-123456",
                          "NoDigitsHere-NoDigitsHere-x", "NoSpecials1234567890abcdEF"}) {
    INFO(bad);
    const auto r = sim.post("/mqtt/bindings", {{"deviceId", unique_imei()}, {"password", bad}});
    check_problem(r, 400);
    CHECK(r.body.find(bad) == std::string::npos);
  }
  check_problem(sim.post("/mqtt/bindings", {{"deviceId", unique_imei()}, {"password", 42}}), 400);
}

TEST_CASE("an unknown binding id is 404 and a malformed one is 400", "[sim][api]") {
  Sim sim;
  const std::string unknown = "/mqtt/bindings/224ecc46-291d-482b-993f-c8b508adb0da";
  check_problem(sim.get(unknown), 404);
  check_problem(sim.put(unknown, {{"deviceId", unique_imei()}}), 404);
  check_problem(sim.del(unknown), 404);
  check_problem(sim.get("/mqtt/bindings/not-a-uuid"), 400);
  check_problem(sim.del("/mqtt/bindings/224ecc46-291d-482b-993f"), 400);
}

TEST_CASE("PUT replaces the device and bumps modifiedAt", "[sim][api]") {
  Sim sim({"--admin"});
  const auto created = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"},
                                                   {"password", kGoodPassword}});
  REQUIRE(created.status == 201);
  const auto id = created.json()["id"].get<std::string>();
  const auto r = sim.put("/mqtt/bindings/" + id, {{"deviceId", "imei:350266800610999"},
                                                  {"password", kGoodPassword + "x"},
                                                  {"createdAt", "2000-01-01T00:00:00.000Z"}});
  REQUIRE(r.status == 200);
  const auto b = r.json();
  CHECK(b["id"] == id);
  CHECK(b["deviceId"] == "imei:350266800610999");
  CHECK(b["username"] == "urn:dev:IMEI:350266800610999:");
  CHECK(b["createdAt"] == created.json()["createdAt"]);
  CHECK(b["modifiedAt"].get<std::string>() > created.json()["modifiedAt"].get<std::string>());
  CHECK_FALSE(b.contains("password"));
  // The admin view shows what the device would log in with.
  CHECK(sim.admin("GET", "/_sim/bindings/" + id).json()["password"] == kGoodPassword + "x");
  CHECK(sim.get("/mqtt/bindings?deviceId=imei:350266800610993").json()["items"].empty());
}

TEST_CASE("PUT moving a binding onto a device that has another binding is 409 with "
          "--duplicates reject",
          "[sim][api]") {
  Sim sim({"--duplicates", "reject"});
  REQUIRE(sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"}}).status == 201);
  const auto other = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610994"}});
  const auto id = other.json()["id"].get<std::string>();
  check_problem(sim.put("/mqtt/bindings/" + id, {{"deviceId", "urn:dev:imei:350266800610993"}}),
                409);
  CHECK(sim.put("/mqtt/bindings/" + id, {{"deviceId", "IMEI:350266800610994"}}).status == 200);
}

TEST_CASE("PUT validates its body like POST", "[sim][api]") {
  Sim sim;
  const auto id = sim.post("/mqtt/bindings", {{"deviceId", unique_imei()}}).json()["id"];
  const std::string path = "/mqtt/bindings/" + id.get<std::string>();
  check_problem(sim.put(path, {{"password", kGoodPassword}}), 400);
  check_problem(sim.put(path, {{"deviceId", unique_imei()}, {"password", "weak"}}), 400);
  check_problem(sim.call("PUT", path, "{", {}), 400);
}

TEST_CASE("DELETE answers 204 and the binding is gone", "[sim][api]") {
  Sim sim;
  const auto id = sim.post("/mqtt/bindings", {{"deviceId", unique_imei()}}).json()["id"];
  const std::string path = "/mqtt/bindings/" + id.get<std::string>();
  const auto r = sim.del(path);
  CHECK(r.status == 204);
  CHECK(r.body.empty());
  check_problem(sim.get(path), 404);
  check_problem(sim.del(path), 404);
}

TEST_CASE("unknown paths are 404 and unsupported methods are 405 with Allow", "[sim][api]") {
  Sim sim;
  check_problem(sim.get("/mqtt/nothing"), 404);
  const auto r = sim.call("PATCH", "/mqtt/bindings", "{}");
  check_problem(r, 405);
  CHECK(r.header("allow") == "GET, POST");
  check_problem(sim.call("POST", "/mqtt/bindings/224ecc46-291d-482b-993f-c8b508adb0da", "{}"), 405);
}

TEST_CASE("pipelined requests on one connection are answered in order", "[sim][api]") {
  Sim sim({"--seed", "3"});
  std::string raw;
  for (const char* t : {"/mqtt/bindings?limit=1", "/mqtt/nothing", "/mqtt/bindings?limit=2"}) {
    raw += std::string("GET ") + t + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n\r\n";
  }
  const auto res = simtest::pipelined(sim.port(), raw, 3);
  REQUIRE(res.size() == 3);
  CHECK(res[0].status == 200);
  CHECK(res[0].json()["items"].size() == 1);
  CHECK(res[1].status == 404);
  CHECK(res[2].status == 200);
  CHECK(res[2].json()["items"].size() == 2);
}
