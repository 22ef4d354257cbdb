// The admin interface, the request log, --data, --seed, shutdown and HTTPS.
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "common.hpp"

using nlohmann::json;
using simtest::kGoodPassword;
using simtest::Sim;
using simtest::TempDir;

TEST_CASE("the admin interface is off without --admin", "[sim][admin]") {
  Sim sim({}, "test-token", Sim::Admin::kOff);
  CHECK(sim.admin("GET", "/_sim/faults").status == 404);
  CHECK(sim.admin("POST", "/_sim/reset").status == 404);
}

TEST_CASE("fault settings changed through the admin interface apply at once", "[sim][admin]") {
  Sim sim({"--admin"});
  const auto faults = sim.admin("GET", "/_sim/faults").json();
  CHECK(faults == json{{"rateLimit", 0.0}, {"rateLimitRetryAfter", true}, {"failRate", 0.0},
                       {"latencyMs", 0},
                       {"dropAfterCreate", 0.0}, {"failAfterCommit", 0.0},
                       {"duplicates", "allow"}, {"failListOnPage", 0},
                       {"tokenEndpointDown", false}, {"rejectDevices", json::array()}});
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failRate", 1}}).status == 200);
  const auto failed = sim.get("/mqtt/bindings").status;
  CHECK((failed == 500 || failed == 503));
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failRate", 0}}).status == 200);
  CHECK(sim.get("/mqtt/bindings").status == 200);
  CHECK(sim.admin("PUT", "/_sim/faults", {{"failRate", 2}}).status == 400);
  CHECK(sim.admin("PUT", "/_sim/faults", {{"noSuchFault", 1}}).status == 400);
}

TEST_CASE("failListOnPage fails exactly that page of a list walk", "[sim][admin]") {
  Sim sim({"--admin", "--seed", "30", "--next-links", "relative"});
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failListOnPage", 2}}).status == 200);
  const auto p1 = sim.get("/mqtt/bindings?limit=10");
  REQUIRE(p1.status == 200);
  const auto next = p1.json()["next"].get<std::string>();
  CHECK(sim.get(next).status == 500);
  CHECK(sim.get(next).status == 500);  // until cleared
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failListOnPage", 0}}).status == 200);
  CHECK(sim.get(next).status == 200);
}

TEST_CASE("tokenEndpointDown makes the token endpoint answer 503", "[sim][admin]") {
  Sim sim({"--admin", "--oauth-client", "a:b"}, "");
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"tokenEndpointDown", true}}).status == 200);
  const std::string form = "grant_type=client_credentials&client_id=a&client_secret=b&audience=x";
  const std::vector<simtest::HttpHeader> ct = {
      {"Content-Type", "application/x-www-form-urlencoded"}};
  CHECK(simtest::http(sim.port(), "POST", "/oauth2/token", form, ct).status == 503);
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"tokenEndpointDown", false}}).status == 200);
  CHECK(simtest::http(sim.port(), "POST", "/oauth2/token", form, ct).status == 200);
}

TEST_CASE("expire-tokens makes every issued token 401", "[sim][admin]") {
  Sim sim({"--admin", "--oauth-client", "a:b"}, "");
  const auto r =
      simtest::http(sim.port(), "POST", "/oauth2/token",
                    "grant_type=client_credentials&client_id=a&client_secret=b&audience=x",
                    {{"Content-Type", "application/x-www-form-urlencoded"}});
  sim.set_token(r.json()["access_token"].get<std::string>());
  REQUIRE(sim.get("/mqtt/bindings").status == 200);
  REQUIRE(sim.admin("POST", "/_sim/expire-tokens").status == 204);
  CHECK(sim.get("/mqtt/bindings").status == 401);
}

TEST_CASE("out-of-band portal changes show up in the API", "[sim][admin]") {
  Sim sim({"--admin"});
  const auto created = sim.admin("POST", "/_sim/bindings",
                                 {{"deviceId", "imei:350266800610993"}, {"password", kGoodPassword}});
  REQUIRE(created.status == 201);
  const auto id = created.json()["id"].get<std::string>();
  CHECK(created.json()["password"] == kGoodPassword);
  const auto seen = sim.get("/mqtt/bindings/" + id).json();
  CHECK(seen["createdBy"] == "principal/portal-user");
  CHECK_FALSE(seen.contains("password"));

  // A duplicate binding for one device, even where the API refuses one (--duplicates reject).
  const auto dup = sim.admin("POST", "/_sim/bindings",
                             {{"deviceId", "urn:dev:IMEI:350266800610993:"}, {"allowDuplicate", true}});
  REQUIRE(dup.status == 201);
  CHECK(sim.get("/mqtt/bindings?deviceId=imei:350266800610993").json()["items"].size() == 2);

  const auto changed =
      sim.admin("PUT", "/_sim/bindings/" + id,
                {{"deviceId", "imei:350266800610993"}, {"password", kGoodPassword + "2"}});
  REQUIRE(changed.status == 200);
  CHECK(sim.get("/mqtt/bindings/" + id).json()["modifiedBy"] == "principal/portal-user");
  CHECK(sim.admin("DELETE", "/_sim/bindings/" + id).status == 204);
  CHECK(sim.get("/mqtt/bindings/" + id).status == 404);
  CHECK(sim.admin("GET", "/_sim/bindings").json()["items"].size() == 1);
}

TEST_CASE("the admin stamps modifiedBy and modifiedAt as given, in the future or the past",
          "[sim][admin]") {
  Sim sim({"--admin"});
  const auto created =
      sim.admin("POST", "/_sim/bindings",
                {{"deviceId", "imei:350266800610993"},
                 {"modifiedBy", "principal/ops-alice"},
                 {"modifiedAt", "2031-01-02T03:04:05.678Z"}});  // a node's clock years ahead
  REQUIRE(created.status == 201);
  const auto id = created.json()["id"].get<std::string>();
  auto seen = sim.get("/mqtt/bindings/" + id).json();
  CHECK(seen["createdAt"] == "2031-01-02T03:04:05.678Z");  // a create is its first change
  CHECK(seen["modifiedAt"] == "2031-01-02T03:04:05.678Z");
  CHECK(seen["createdBy"] == "principal/ops-alice");
  CHECK(seen["modifiedBy"] == "principal/ops-alice");

  // Behind, with an offset and more than ms precision; the default user.
  REQUIRE(sim.admin("PUT", "/_sim/bindings/" + id,
                    {{"deviceId", "imei:350266800610993"},
                     {"modifiedAt", "2001-02-03T04:05:06.789999+02:00"}})
              .status == 200);
  seen = sim.get("/mqtt/bindings/" + id).json();
  CHECK(seen["modifiedAt"] == "2001-02-03T02:05:06.789Z");
  CHECK(seen["createdAt"] == "2031-01-02T03:04:05.678Z");
  CHECK(seen["modifiedBy"] == "principal/portal-user");
  CHECK(seen["createdBy"] == "principal/ops-alice");
  CHECK(sim.admin("GET", "/_sim/bindings/" + id).json()["modifiedAt"] == seen["modifiedAt"]);

  // Stamped times leave the simulator's own clock alone: the API's next write is "now".
  const auto api = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610994"}}).json();
  CHECK(api["modifiedAt"] > "2020");
  CHECK(api["modifiedAt"] < "2031");

  for (const json& bad : {json{{"modifiedAt", "yesterday"}}, json{{"modifiedAt", 978307200000}},
                          json{{"modifiedAt", "2001-02-03T04:05:06"}},  // no offset
                          json{{"modifiedAt", nullptr}}, json{{"modifiedBy", ""}},
                          json{{"modifiedBy", 5}}}) {
    INFO(bad.dump());
    json body = bad;
    body["deviceId"] = "imei:350266800610993";
    CHECK(sim.admin("PUT", "/_sim/bindings/" + id, body).status == 400);
    CHECK(sim.admin("POST", "/_sim/bindings", body).status == 400);
  }
}

TEST_CASE("the data file keeps stamped times and the simulator's clock apart", "[sim][data]") {
  TempDir dir;
  const std::string data = (dir / "store.json").string();
  std::string id;
  {
    Sim sim({"--data", data, "--admin"});
    const auto r = sim.admin("POST", "/_sim/bindings",
                             {{"deviceId", "imei:350266800610993"},
                              {"modifiedAt", "2090-06-01T00:00:00.000Z"}});
    REQUIRE(r.status == 201);
    id = r.json()["id"].get<std::string>();
    CHECK(sim.terminate() == 0);
  }
  Sim again({"--data", data});
  CHECK(again.get("/mqtt/bindings/" + id).json()["modifiedAt"] == "2090-06-01T00:00:00.000Z");
  // After the restart the API's writes are still stamped by the wall clock, not after 2090.
  const auto api = again.post("/mqtt/bindings", {{"deviceId", "imei:350266800610994"}}).json();
  CHECK(api["modifiedAt"] < "2090");
}

TEST_CASE("duplicates switches between accepting a second binding and 409 at run time",
          "[sim][admin]") {
  Sim sim({"--admin", "--duplicates", "reject"});
  CHECK(sim.admin("GET", "/_sim/faults").json()["duplicates"] == "reject");
  const json body = {{"deviceId", "imei:350266800610993"}};
  REQUIRE(sim.post("/mqtt/bindings", body).status == 201);
  CHECK(sim.post("/mqtt/bindings", body).status == 409);

  const auto set = sim.admin("PATCH", "/_sim/faults", {{"duplicates", "allow"}});
  REQUIRE(set.status == 200);
  CHECK(set.json()["duplicates"] == "allow");
  CHECK(sim.post("/mqtt/bindings", body).status == 201);
  CHECK(sim.get("/mqtt/bindings?deviceId=imei:350266800610993").json()["items"].size() == 2);

  CHECK(sim.admin("PUT", "/_sim/faults", {{"duplicates", "maybe"}}).status == 400);
  CHECK(sim.admin("PUT", "/_sim/faults", {{"duplicates", true}}).status == 400);
  CHECK(sim.admin("GET", "/_sim/faults").json()["duplicates"] == "allow");
  // A reset restores the command line's setting.
  REQUIRE(sim.admin("POST", "/_sim/reset").status == 204);
  CHECK(sim.admin("GET", "/_sim/faults").json()["duplicates"] == "reject");
}

TEST_CASE("the admin's allowDuplicate overrides the duplicates setting for one write",
          "[sim][admin]") {
  for (const char* setting : {"allow", "reject"}) {
    INFO(setting);
    Sim sim({"--admin", "--duplicates", setting});
    const json device = {{"deviceId", "imei:350266800610993"}};
    REQUIRE(sim.admin("POST", "/_sim/bindings", device).status == 201);
    // Without the member the admin follows the setting, as the API does.
    CHECK(sim.admin("POST", "/_sim/bindings", device).status ==
          (std::string(setting) == "allow" ? 201 : 409));
    auto dup = device;
    dup["allowDuplicate"] = true;
    CHECK(sim.admin("POST", "/_sim/bindings", dup).status == 201);
    dup["allowDuplicate"] = false;
    const auto refused = sim.admin("POST", "/_sim/bindings", dup);
    CHECK(refused.status == 409);
    CHECK(refused.json()["bindingId"].is_string());
  }
}

TEST_CASE("reset empties the store and the counters", "[sim][admin]") {
  Sim sim({"--admin", "--seed", "10"});
  REQUIRE(sim.get("/mqtt/bindings").json()["items"].size() == 10);
  REQUIRE(sim.admin("POST", "/_sim/reset").status == 204);
  CHECK(sim.admin("GET", "/_sim/counters").json()["total"] == 0);
  CHECK(sim.get("/mqtt/bindings").json()["items"].empty());
}

TEST_CASE("counters report requests by method and status", "[sim][admin]") {
  Sim sim({"--admin"});
  const auto id = sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}}).json()["id"];
  sim.get("/mqtt/bindings/" + id.get<std::string>());
  sim.get("/mqtt/bindings/224ecc46-291d-482b-993f-c8b508adb0da");
  sim.del("/mqtt/bindings/" + id.get<std::string>());
  const auto c = sim.admin("GET", "/_sim/counters").json();
  CHECK(c["requests"]["POST"]["201"] == 1);
  CHECK(c["requests"]["GET"]["200"] == 1);
  CHECK(c["requests"]["GET"]["404"] == 1);
  CHECK(c["requests"]["DELETE"]["204"] == 1);
  CHECK(c["total"] == 4);
  CHECK(c["bindings"] == 0);
  CHECK(c["peakConcurrency"] == 1);
  REQUIRE(sim.admin("DELETE", "/_sim/counters").status == 204);
  CHECK(sim.admin("GET", "/_sim/counters").json()["total"] == 0);
}

TEST_CASE("counters show concurrent requests for one device", "[sim][admin]") {
  Sim sim({"--admin", "--latency", "500ms"});
  const auto id = sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}})
                      .json()["id"]
                      .get<std::string>();
  const std::string get = "GET /mqtt/bindings/" + id +
                          " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n\r\n";
  for (const auto& r : simtest::concurrent(sim.port(), {get, get})) CHECK(r.status == 200);
  CHECK(sim.admin("GET", "/_sim/counters").json()["maxConcurrentPerDevice"] == 2);
}

TEST_CASE("the request log holds one JSON line per API request and no secrets",
          "[sim][admin]") {
  TempDir dir;
  const std::string log = (dir / "requests.jsonl").string();
  Sim sim({"--request-log", log, "--oauth-client", "app:client-secret-xyz", "--admin"},
          "static-token-abc");
  sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"}, {"password", kGoodPassword}});
  sim.get("/mqtt/bindings?limit=5&deviceId=imei:350266800610993");
  simtest::http(sim.port(), "GET", "/mqtt/bindings");
  simtest::http(sim.port(), "POST", "/oauth2/token",
                "grant_type=client_credentials&client_id=app&client_secret=client-secret-xyz"
                "&audience=x",
                {{"Content-Type", "application/x-www-form-urlencoded"}});
  sim.admin("GET", "/_sim/counters");  // not logged

  std::ifstream in(log);
  std::vector<json> lines;
  std::string line, all;
  while (std::getline(in, line)) {
    all += line;
    lines.push_back(json::parse(line));
  }
  REQUIRE(lines.size() == 4);
  CHECK(lines[0]["method"] == "POST");
  CHECK(lines[0]["path"] == "/mqtt/bindings");
  CHECK(lines[0]["status"] == 201);
  CHECK(lines[0]["authorized"] == true);
  CHECK(lines[1]["query"] == "limit=5&deviceId=imei:350266800610993");
  CHECK(lines[2]["status"] == 401);
  CHECK(lines[2]["authorized"] == false);
  CHECK(lines[3]["path"] == "/oauth2/token");
  CHECK(lines[3]["status"] == 200);
  for (const auto& l : lines) CHECK(l["time"].get<std::string>().size() == 24);
  CHECK(all.find(kGoodPassword) == std::string::npos);
  CHECK(all.find("static-token-abc") == std::string::npos);
  CHECK(all.find("client-secret-xyz") == std::string::npos);
}

TEST_CASE("the data file keeps the store across a restart", "[sim][data]") {
  TempDir dir;
  const std::string data = (dir / "store.json").string();
  json created;
  {
    Sim sim({"--data", data});
    created = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"},
                                          {"password", kGoodPassword}})
                  .json();
    REQUIRE(sim.del("/mqtt/bindings/" +
                    sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}})
                        .json()["id"]
                        .get<std::string>())
                .status == 204);
    CHECK(sim.terminate() == 0);
  }
  Sim again({"--data", data, "--admin", "--duplicates", "reject"});
  const auto items = again.get("/mqtt/bindings").json()["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0] == created);
  CHECK(again.admin("GET", "/_sim/bindings/" + created["id"].get<std::string>()).json()["password"] ==
        kGoodPassword);
  CHECK(again.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"}}).status == 409);
}

TEST_CASE("a corrupt --data file stops the simulator at start", "[sim][data]") {
  TempDir dir;
  const std::string data = (dir / "store.json").string();
  std::ofstream(data) << "{not json";
  CHECK_THROWS(Sim({"--data", data}));
}

TEST_CASE("seeding preloads bindings of every device kind", "[sim][data]") {
  Sim sim({"--seed", "8"});
  const auto items = sim.get("/mqtt/bindings").json()["items"];
  REQUIRE(items.size() == 8);
  std::set<std::string> kinds;
  for (const auto& i : items) {
    const auto u = i["username"].get<std::string>();
    kinds.insert(u.substr(0, u.find(':', 8)));
  }
  CHECK(kinds.size() == 4);
}

TEST_CASE("SIGTERM stops the simulator with exit code 0", "[sim][data]") {
  Sim sim;
  // An idle keep-alive connection must not hold up the shutdown.
  const auto r = sim.get("/mqtt/bindings");
  REQUIRE(r.status == 200);
  CHECK(sim.terminate() == 0);
}

TEST_CASE("HTTPS with --tls-cert and --tls-key serves the API", "[sim][tls]") {
  TempDir dir;
  const std::string d = dir.str();
  const std::string script =
      "cd '" + d + "' && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj '/CN=thingsync test CA' 2>/dev/null && "
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
      "-subj '/CN=localhost' 2>/dev/null && "
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 2 -extfile ext.cnf 2>/dev/null";
  REQUIRE(std::system(script.c_str()) == 0);
  Sim sim({"--tls-cert", d + "/server.pem", "--tls-key", d + "/server.key", "--seed", "2"});
  CHECK(sim.first_line().rfind("listening on https://127.0.0.1:", 0) == 0);
  const auto r = simtest::http(sim.port(), "GET", "/mqtt/bindings", {},
                               {{"Authorization", "Bearer test-token"}},
                               {.tls_ca_file = d + "/ca.pem", .tls_host = "localhost"});
  REQUIRE(r.status == 200);
  CHECK(r.json()["items"].size() == 2);
}
