// What a message quotes of the input is cut to about 100 bytes, and the cut is marked: a bad
// device ID of megabytes must not become a message (and a log line) of megabytes.
#include <catch2/catch.hpp>
#include <string>

#include "test_support.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/password_resolver.hpp"

using thingsync::config::parse_config;
using thingsync::config::parse_desired_state_file;
using thingsync::config::validate_sources;
using thingsync::config::test::all;
using thingsync::config::test::env_of;

namespace {

constexpr std::size_t kBig = std::size_t{1} << 20;

// The only diagnostic of a desired-state file (named f.yaml).
std::string only(const std::string& text) {
  const auto r = parse_desired_state_file(text, "f.yaml", env_of({}));
  REQUIRE(r.diagnostics.size() == 1);
  return r.diagnostics[0].to_string();
}

// The only error of a config file (named c.yaml).
std::string only_config_error(const std::string& text) {
  auto r = parse_config(text, "c.yaml", env_of({}));
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.error().size() == 1);
  return r.error()[0].to_string();
}

std::string cut(const std::string& shown, std::size_t total) {
  return shown + "...[cut: " + std::to_string(total) + " bytes in all]";
}

const std::string kConfigHead = "auth: {tokenFile: /run/token}\ndesiredState: {path: /srv}\n";

}  // namespace

TEST_CASE("a device ID of a megabyte is quoted as its first 100 bytes and a cut marker",
          "[config][echo]") {
  const std::string id = "imei:" + std::string(kBig, '1');
  const std::string msg = only("bindings:\n  - deviceId: " + id + "\n    password: {env: PW}\n");
  CHECK(msg == "f.yaml:2:15: error: invalid device ID '" + cut(id.substr(0, 100), id.size()) +
                   "': IMEI must have 15 or 16 digits, got " + std::to_string(kBig) +
                   " characters");
  CHECK(msg.size() < 300);
}

TEST_CASE("a device ID of exactly 100 bytes is quoted whole", "[config][echo]") {
  const std::string id = "imei:" + std::string(95, '2');
  CHECK(only("bindings:\n  - deviceId: " + id + "\n    password: {env: PW}\n") ==
        "f.yaml:2:15: error: invalid device ID '" + id +
            "': IMEI must have 15 or 16 digits, got 95 characters");
}

TEST_CASE("a cut never splits a UTF-8 character", "[config][echo]") {
  // 99 bytes, then a two-byte character across the 100th byte: the cut comes before it.
  const std::string id = std::string(99, 'x') + "\xC3\xA9" + std::string(kBig, 'y');
  CHECK(only("bindings:\n  - deviceId: " + id + "\n    password: {env: PW}\n") ==
        "f.yaml:2:15: error: invalid device ID '" + cut(std::string(99, 'x'), id.size()) +
            "': unknown device ID format (expected a UUID, imei:, deveui:, dvnuuid: or "
            "urn:dev:<kind>:)");
}

TEST_CASE("every message that quotes a desired-state file cuts what it quotes", "[config][echo]") {
  const std::string big(kBig, 'a');
  const std::string shown = cut(big.substr(0, 100), big.size());
  SECTION("a binding written as a scalar") {
    CHECK(only("bindings:\n  - " + big + "\n") ==
          "f.yaml:2:5: error: a binding must be a map (- deviceId: ID), found a scalar '" + shown +
              "'; write '- deviceId: " + shown + "'");
  }
  // A YAML implicit key is at most 1024 characters: longer ones are a syntax error.
  const std::string key(1000, 'k');
  SECTION("a device ID read as a map key") {
    const std::string urn = "urn:dev:imei:" + key;
    CHECK(only("bindings:\n  - " + urn + ":\n") ==
          "f.yaml:2:5: error: device ID '" + cut(urn.substr(0, 100), urn.size()) +
              ":' was read as a map key: quote device IDs that end in ':' (write - deviceId: \"" +
              cut(urn.substr(0, 100), urn.size()) + ":\")");
  }
  SECTION("an unknown key") {
    CHECK(only("bindings:\n  - deviceId: imei:350266800610993\n    password: {env: PW}\n    " +
               key + ": 1\n") == "f.yaml:4:5: error: unknown key '" +
                                     cut(key.substr(0, 100), key.size()) +
                                     "' in a binding (expected one of: deviceId password)");
  }
  SECTION("an env name that is none") {
    const std::string name = "1" + big;
    CHECK(only("bindings:\n  - deviceId: imei:350266800610993\n    password: {env: " + name +
               "}\n") == "f.yaml:3:21: error: '" + cut(name.substr(0, 100), name.size()) +
                             "' is not an environment variable name");
  }
  SECTION("an unset variable in a path") {
    CHECK(only("bindings:\n  - deviceId: imei:350266800610993\n    password:\n      file: ${" +
               big + "}\n") == "f.yaml:4:13: error: environment variable " + shown + " is not set");
  }
}

TEST_CASE("a source that names a huge variable or path is reported with both cut",
          "[config][echo]") {
  thingsync::config::test::TempDir dir;
  const std::string big(kBig, 'B');
  SECTION("an unset env variable") {
    const auto r = parse_desired_state_file(
        "bindings:\n  - deviceId: imei:350266800610993\n    password: {env: " + big + "}\n",
        "f.yaml", env_of({}));
    REQUIRE(r.ok());
    CHECK(all(validate_sources(r.state, env_of({}))) ==
          "f.yaml:3:15: error: environment variable " + cut(big.substr(0, 100), big.size()) +
              " is not set; used by 1 binding\n");
  }
  SECTION("a password file path: its start and its end are kept") {
    const std::string path = "/" + std::string(5000, 'p') + "/secret.pass";
    const auto r = parse_desired_state_file(
        "bindings:\n  - deviceId: imei:350266800610993\n    password: {file: " + path + "}\n",
        "f.yaml", env_of({}));
    REQUIRE(r.ok());
    CHECK(all(validate_sources(r.state, env_of({}))) ==
          "f.yaml:3:15: error: cannot read password file " + cut(path.substr(0, 40), path.size()) +
              "..." + path.substr(path.size() - 60) + ": File name too long; used by 1 binding\n");
  }
}

TEST_CASE("every message that quotes a config value cuts what it quotes", "[config][echo]") {
  const std::string big(kBig, 'z');
  const std::string shown = cut(big.substr(0, 100), big.size());
  CHECK(only_config_error(kConfigHead + "sync: {mode: " + big + "}\n") ==
        "c.yaml:3:14: error: sync.mode: '" + shown + "' is not a mode (reconcile or observe)");
  CHECK(only_config_error(kConfigHead + "sync: {pollInterval: " + big + "}\n") ==
        "c.yaml:3:22: error: sync.pollInterval: '" + shown +
            "' is not a duration (a whole number with ms, s, m or h, as 30s or 15m)");
  CHECK(only_config_error(kConfigHead + "sync: {prune: " + big + "}\n") ==
        "c.yaml:3:15: error: sync.prune: '" + shown + "' is not a boolean (true or false)");
  CHECK(only_config_error(kConfigHead + "sync: {maxDeletes: " + big + "}\n") ==
        "c.yaml:3:20: error: sync.maxDeletes: '" + shown +
            "' is not a count (0 or more) or a percentage (0% to 100%)");
  CHECK(only_config_error(kConfigHead + "sync: {concurrency: " + big + "}\n") ==
        "c.yaml:3:21: error: sync.concurrency: '" + shown +
            "' is not a whole number from 1 to 1024");
  CHECK(only_config_error(kConfigHead + "sync: {rateLimit: " + big + "}\n") ==
        "c.yaml:3:19: error: sync.rateLimit: '" + shown +
            "' is not a positive number of requests per second (as 10 or 0.5, or auto)");
  CHECK(only_config_error(kConfigHead + "scope: {clientId: " + big + "}\n") ==
        "c.yaml:3:19: error: scope.clientId: '" + shown +
            "' is not a UUID (8-4-4-4-12 hex digits)");
  const std::string host(kBig, '!');
  CHECK(only_config_error(kConfigHead + "metrics: {listen: \"" + host + ":9\"}\n") ==
        "c.yaml:3:19: error: metrics.listen: '" + cut(host.substr(0, 100), host.size() + 2) +
            "' is not host:port: '" + cut(host.substr(0, 100), host.size()) +
            "' is not a valid host name");
  const std::string key(1000, 'k');  // a YAML implicit key is at most 1024 characters
  CHECK(only_config_error(kConfigHead + key + ": 1\n") ==
        "c.yaml:3:1: error: unknown key '" + cut(key.substr(0, 100), key.size()) +
            "' in the config file (expected one of: api auth desiredState scope sync state "
            "metrics)");
}

TEST_CASE("a URL is cut where it is quoted, and so is its scheme", "[config][echo]") {
  const std::string big(kBig, 'h');
  const std::string url = big + "://x";
  CHECK(only_config_error(kConfigHead + "api: {baseUrl: \"" + url + "\"}\n") ==
        "c.yaml:3:16: error: api.baseUrl: '" + cut(url.substr(0, 100), url.size()) +
            "' is not a valid URL: the scheme must be http or https, not '" +
            cut(big.substr(0, 100), big.size()) + "'");
}
