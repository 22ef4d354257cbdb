// Bearer tokens, the OAuth2 token endpoint, and the command-line fault injection.
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

#include "common.hpp"

using nlohmann::json;
using simtest::HttpResult;
using simtest::kGoodPassword;
using simtest::Sim;

namespace {

const std::string kForm = "application/x-www-form-urlencoded";

HttpResult fetch_token(const Sim& sim, const std::string& form) {
  return simtest::http(sim.port(), "POST", "/oauth2/token", form, {{"Content-Type", kForm}});
}

bool gateway_problem(const HttpResult& r) {
  INFO(r.status << " " << r.body);
  return (r.status == 502 || r.status == 504) &&
         r.header("content-type") == "application/problem+json" && r.json()["status"] == r.status &&
         r.header("location").empty();
}

std::string token_of(const Sim& sim) {
  const auto r = fetch_token(
      sim, "grant_type=client_credentials&client_id=app-1&client_secret=s3cr%3Dt&audience=things");
  REQUIRE(r.status == 200);
  return r.json()["access_token"].get<std::string>();
}

}  // namespace

TEST_CASE("a request without a valid bearer token is 401 with a Bearer challenge",
          "[sim][auth]") {
  Sim sim;
  const std::vector<std::vector<simtest::HttpHeader>> cases = {
      {}, {{"Authorization", "Bearer wrong"}}, {{"Authorization", "Basic dGVzdC10b2tlbg=="}},
      {{"Authorization", "Bearer "}}};
  for (const auto& headers : cases) {
    const auto r = simtest::http(sim.port(), "GET", "/mqtt/bindings", {}, headers);
    CHECK(r.status == 401);
    CHECK(r.header("content-type") == "application/problem+json");
    CHECK(r.header("www-authenticate").rfind("Bearer", 0) == 0);
  }
  CHECK(sim.get("/mqtt/bindings").status == 200);
}

TEST_CASE("the token endpoint issues expiring tokens that the API accepts", "[sim][auth]") {
  Sim sim({"--oauth-client", "app-1:s3cr=t"}, "");
  const auto r = fetch_token(
      sim, "grant_type=client_credentials&client_id=app-1&client_secret=s3cr%3Dt&audience=things");
  REQUIRE(r.status == 200);
  const auto body = r.json();
  CHECK(body["token_type"] == "Bearer");
  CHECK(body["expires_in"] == 3600);
  CHECK(r.header("cache-control") == "no-store");
  sim.set_token(body["access_token"].get<std::string>());
  const auto created = sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}});
  REQUIRE(created.status == 201);
  CHECK(created.json()["createdBy"] == "principal/app-1");
}

TEST_CASE("the token endpoint rejects bad client credentials and grants", "[sim][auth]") {
  Sim sim({"--oauth-client", "app-1:s3cr=t"}, "");
  const auto wrong = fetch_token(
      sim, "grant_type=client_credentials&client_id=app-1&client_secret=nope&audience=things");
  CHECK(wrong.status == 401);
  CHECK(wrong.json()["error"] == "invalid_client");
  const auto grant =
      fetch_token(sim, "grant_type=password&client_id=app-1&client_secret=s3cr%3Dt&audience=x");
  CHECK(grant.status == 400);
  CHECK(grant.json()["error"] == "unsupported_grant_type");
  const auto no_audience =
      fetch_token(sim, "grant_type=client_credentials&client_id=app-1&client_secret=s3cr%3Dt");
  CHECK(no_audience.status == 400);
  CHECK(no_audience.json()["error"] == "invalid_request");
  const auto json_body =
      simtest::http(sim.port(), "POST", "/oauth2/token", R"({"grant_type":"client_credentials"})",
                    {{"Content-Type", "application/json"}});
  CHECK(json_body.status == 400);
}

TEST_CASE("an issued token expires after --token-lifetime", "[sim][auth]") {
  Sim sim({"--oauth-client", "app-1:s3cr=t", "--token-lifetime", "1s"}, "");
  sim.set_token(token_of(sim));
  REQUIRE(sim.get("/mqtt/bindings").status == 200);
  // Poll until the token is refused; bounded well above the lifetime.
  HttpResult r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = sim.get("/mqtt/bindings");
  } while (r.status == 200 && std::chrono::steady_clock::now() < deadline);
  CHECK(r.status == 401);
  CHECK(r.json()["detail"] == "token expired");
  CHECK(r.header("www-authenticate").find("invalid_token") != std::string::npos);
}

TEST_CASE("the rate limit flag answers 429 with Retry-After above the rate", "[sim][faults]") {
  Sim sim({"--rate-limit", "2", "--admin"});
  // Ten requests against a bucket of two, with or without Retry-After on the 429s.
  auto burst = [&sim](bool retry_after) {
    int ok = 0, limited = 0;
    for (int i = 0; i < 10; ++i) {
      const auto r = sim.get("/mqtt/bindings");
      if (r.status == 200) ++ok;
      if (r.status == 429) {
        ++limited;
        CHECK(r.header("content-type") == "application/problem+json");
        if (retry_after) {
          CHECK(std::stoi(r.header("retry-after")) >= 1);
        } else {
          CHECK(r.header("retry-after").empty());
        }
      }
    }
    CHECK(ok >= 2);
    CHECK(limited >= 1);
    CHECK(ok + limited == 10);
  };
  burst(true);
  SECTION("rateLimitRetryAfter false (--rate-limit-retry-after 0): no Retry-After") {
    // Setting the limit again refills the bucket.
    REQUIRE(sim.admin("PUT", "/_sim/faults", {{"rateLimit", 3}, {"rateLimitRetryAfter", false}})
                .status == 200);
    burst(false);
  }
  SECTION("the flag") {
    Sim quiet({"--rate-limit", "2", "--rate-limit-retry-after", "0"});
    int limited = 0;
    for (int i = 0; i < 10; ++i) {
      const auto r = quiet.get("/mqtt/bindings");
      limited += r.status == 429;
      if (r.status == 429) CHECK(r.header("retry-after").empty());
    }
    CHECK(limited >= 1);
  }
}

TEST_CASE("a fail rate of 1 answers every API request with 500 or 503", "[sim][faults]") {
  Sim sim({"--fail-rate", "1", "--admin"});
  for (int i = 0; i < 10; ++i) {
    const auto r = sim.get("/mqtt/bindings");
    CHECK((r.status == 500 || r.status == 503));
    CHECK(r.header("content-type") == "application/problem+json");
  }
  CHECK(sim.admin("GET", "/_sim/faults").status == 200);  // the admin interface is not faulted
}

TEST_CASE("the latency flag delays each response", "[sim][faults]") {
  Sim sim({"--latency", "200ms"});
  const auto start = std::chrono::steady_clock::now();
  CHECK(sim.get("/mqtt/bindings").status == 200);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(200));
}

TEST_CASE("a delayed response does not hold up other connections", "[sim][faults]") {
  Sim sim({"--latency", "500ms", "--admin"});
  const std::string get =
      "GET /mqtt/bindings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n\r\n";
  const auto res = simtest::concurrent(sim.port(), {get, get, get});
  for (const auto& r : res) CHECK(r.status == 200);
  // All three were in flight at once: the server waited on them together.
  CHECK(sim.admin("GET", "/_sim/counters").json()["peakConcurrency"] == 3);
}

TEST_CASE("drop-after-create closes the connection without an answer but creates",
          "[sim][faults]") {
  Sim sim({"--drop-after-create", "1", "--duplicates", "reject"});
  const auto r = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"},
                                             {"password", kGoodPassword}});
  CHECK(r.status == 0);
  const auto items = sim.get("/mqtt/bindings?deviceId=imei:350266800610993").json()["items"];
  CHECK(items.size() == 1);
  CHECK(sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"}}).status == 409);
}

TEST_CASE("fail-after-commit: every write is carried out, then answered 502 or 504",
          "[sim][faults]") {
  simtest::TempDir dir;
  const std::string log = (dir / "requests.jsonl").string();
  Sim sim({"--fail-after-commit", "1", "--admin", "--request-log", log});
  const std::string device = "imei:350266800610993";
  CHECK(gateway_problem(
      sim.post("/mqtt/bindings", {{"deviceId", device}, {"password", kGoodPassword}})));
  const auto items = sim.get("/mqtt/bindings?deviceId=" + device).json()["items"];
  REQUIRE(items.size() == 1);  // reads are not faulted
  const auto id = items[0]["id"].get<std::string>();

  CHECK(gateway_problem(
      sim.put("/mqtt/bindings/" + id, {{"deviceId", device}, {"password", kGoodPassword + "2"}})));
  const auto after_put = sim.get("/mqtt/bindings/" + id).json();
  CHECK(after_put["modifiedAt"] != items[0]["modifiedAt"]);
  CHECK(sim.admin("GET", "/_sim/bindings/" + id).json()["password"] == kGoodPassword + "2");

  // A write that is not carried out gets its own answer.
  CHECK(sim.put("/mqtt/bindings/" + id, {{"deviceId", "imei:1"}}).status == 400);
  CHECK(sim.del("/mqtt/bindings/224ecc46-291d-482b-993f-c8b508adb0da").status == 404);

  CHECK(gateway_problem(sim.del("/mqtt/bindings/" + id)));
  CHECK(sim.get("/mqtt/bindings/" + id).status == 404);

  // Counters and the request log count what was answered.
  const auto c = sim.admin("GET", "/_sim/counters").json();
  int gateway = 0;
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    for (const char* status : {"502", "504"}) gateway += c["requests"][method].value(status, 0);
  }
  CHECK(gateway == 3);
  CHECK(c["failedAfterCommit"] == 3);
  CHECK_FALSE(c["requests"]["POST"].contains("201"));
  std::ifstream in(log);
  int flagged = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = json::parse(line);
    if (j.value("failedAfterCommit", false)) {
      ++flagged;
      CHECK((j["status"] == 502 || j["status"] == 504));
    }
  }
  CHECK(flagged == 3);
}

TEST_CASE("fail-after-commit picks 502 or 504 from --random-seed: a run replays", "[sim][faults]") {
  auto statuses = [](const std::string& seed) {
    Sim sim({"--fail-after-commit", "0.5", "--random-seed", seed});
    std::string out;
    for (int i = 0; i < 40; ++i) {
      const auto r = sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}});
      out += std::to_string(r.status) + " ";
    }
    // Every create was carried out, whatever the answer.
    CHECK(sim.get("/mqtt/bindings?limit=100").json()["items"].size() == 40);
    return out;
  };
  const auto first = statuses("7");
  CHECK(statuses("7") == first);
  CHECK(first.find("201") != std::string::npos);
  CHECK(first.find("502") != std::string::npos);
  CHECK(first.find("504") != std::string::npos);
}

TEST_CASE("failAfterCommit is a fault the admin interface sets at run time", "[sim][faults]") {
  Sim sim({"--admin"});
  CHECK(sim.admin("GET", "/_sim/faults").json()["failAfterCommit"] == 0.0);
  const auto set = sim.admin("PATCH", "/_sim/faults", {{"failAfterCommit", 1}});
  REQUIRE(set.status == 200);
  CHECK(set.json()["failAfterCommit"] == 1.0);
  CHECK(gateway_problem(sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}})));
  CHECK(sim.admin("PUT", "/_sim/faults", {{"failAfterCommit", 1.5}}).status == 400);
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failAfterCommit", 0}}).status == 200);
  CHECK(sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}}).status == 201);
  // The admin's own writes are never faulted.
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failAfterCommit", 1}}).status == 200);
  CHECK(sim.admin("POST", "/_sim/bindings", {{"deviceId", simtest::unique_imei()}}).status == 201);
}

TEST_CASE("out-of-range --fail-after-commit and --duplicates are usage errors", "[sim][faults]") {
  for (const std::string args : {"--fail-after-commit 1.5", "--fail-after-commit -0.1",
                                 "--duplicates maybe", "--duplicates"}) {
    INFO(args);
    const std::string cmd = std::string(THINGSYNC_SIM_PATH) + " --listen 127.0.0.1:0 " + args +
                            " >/dev/null 2>&1";
    const int rc = std::system(cmd.c_str());
    REQUIRE(WIFEXITED(rc));
    CHECK(WEXITSTATUS(rc) == 64);
  }
}
