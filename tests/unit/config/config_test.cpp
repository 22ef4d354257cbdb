// Tests include the header under test first: it must be self-contained.
#include "thingsync/config/config.hpp"

#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
using thingsync::config::Config;
using thingsync::config::is_loopback_host;
using thingsync::config::load_config_file;
using thingsync::config::parse_config;
using thingsync::config::parse_http_url;
using thingsync::config::parse_listen_address;
using thingsync::config::SyncMode;
using thingsync::config::test::all;
using thingsync::config::test::env_of;
using thingsync::config::test::TempDir;
using thingsync::core::DeleteLimit;

namespace {

constexpr const char* kMinimal =
    "auth:\n"
    "  tokenFile: /run/token\n"
    "desiredState:\n"
    "  path: /srv/fleet\n";

// The single error of a config that must fail, as "file:line:column: error: message".
std::string only_error(std::string_view text, const thingsync::config::EnvLookup& env = {}) {
  auto r = parse_config(text, "etc/thingsync.yaml", env);
  REQUIRE_FALSE(r.ok());
  INFO(all(r.error()));
  REQUIRE(r.error().size() == 1);
  return r.error()[0].to_string();
}

std::string with_sync(std::string_view lines) {
  return std::string(kMinimal) + "sync:\n" + std::string(lines);
}

}  // namespace

TEST_CASE("a config with every key is parsed into every field", "[config]") {
  const std::string text = R"(api:
  baseUrl: https://api.example.com:8443/things/
  timeout: 2500ms
  allowInsecureHttp: yes
  caFile: certs/ca.pem
auth:
  tokenFile: ${CREDENTIALS_DIRECTORY}/api-token
desiredState:
  path: fleet
scope:
  clientId: 0B5C8A3E-6F1D-4C2B-9E7A-3D4F5A6B7C8D
sync:
  mode: observe
  pollInterval: 45s
  fullResyncInterval: 1h
  modifiedSinceOverlap: 90s
  prune: true
  maxDeletes: 12
  concurrency: 32
  rateLimit: 2.5
state:
  path: /var/lib/thingsync/other.json
metrics:
  listen: "[::1]:9100"
)";
  auto r = parse_config(text, "/etc/thingsync/config.yaml",
                        env_of({{"CREDENTIALS_DIRECTORY", "/run/credentials/thingsync"}}));
  INFO((r.ok() ? std::string() : all(r.error())));
  REQUIRE(r.ok());
  const Config& c = *r;
  CHECK(c.file == "/etc/thingsync/config.yaml");
  CHECK(c.api.base_url == "https://api.example.com:8443/things");
  CHECK(c.api.timeout == 2500ms);
  CHECK(c.api.allow_insecure_http);
  REQUIRE(c.api.ca_file);
  CHECK(*c.api.ca_file == "/etc/thingsync/certs/ca.pem");
  REQUIRE(c.auth.token_file);
  CHECK(*c.auth.token_file == "/run/credentials/thingsync/api-token");
  CHECK_FALSE(c.auth.oauth2);
  CHECK(c.desired_state_path == "/etc/thingsync/fleet");
  CHECK(c.scope_client_id == "0b5c8a3e-6f1d-4c2b-9e7a-3d4f5a6b7c8d");
  CHECK(c.sync.mode == SyncMode::kObserve);
  CHECK(c.sync.poll_interval == 45s);
  CHECK(c.sync.full_resync_interval == 1h);
  CHECK(c.sync.modified_since_overlap == 90s);
  CHECK(c.sync.prune);
  CHECK(c.sync.max_deletes.kind == DeleteLimit::Kind::kCount);
  CHECK(c.sync.max_deletes.value == 12.0);
  CHECK(c.sync.concurrency == 32);
  CHECK(c.sync.rate_limit == 2.5);
  CHECK(c.state_path == "/var/lib/thingsync/other.json");
  CHECK(c.metrics_listen == "[::1]:9100");
  CHECK(c.metrics_host == "::1");
  CHECK(c.metrics_port == 9100);
}

TEST_CASE("a minimal config gets the documented defaults", "[config]") {
  auto r = parse_config(kMinimal, "c.yaml", {});
  REQUIRE(r.ok());
  CHECK(r->api.base_url == "https://api.kpnthings.com");
  CHECK(r->api.timeout == 10s);
  CHECK_FALSE(r->api.allow_insecure_http);
  CHECK_FALSE(r->api.ca_file);
  CHECK_FALSE(r->scope_client_id);
  CHECK(r->sync.mode == SyncMode::kReconcile);
  CHECK(r->sync.poll_interval == 30s);
  CHECK(r->sync.full_resync_interval == 15min);
  CHECK(r->sync.modified_since_overlap == 1min);
  CHECK_FALSE(r->sync.prune);
  CHECK(r->sync.max_deletes.kind == DeleteLimit::Kind::kPercent);
  CHECK(r->sync.max_deletes.value == 5.0);
  CHECK(r->sync.concurrency == 8);
  CHECK(r->sync.rate_limit == 10.0);
  CHECK(r->state_path == "/var/lib/thingsync/state.json");
  CHECK_FALSE(r->journal_path);
  CHECK(r->metrics_host == "127.0.0.1");
  CHECK(r->metrics_port == 9464);
}

TEST_CASE("oauth2 auth is parsed with its four keys", "[config]") {
  const std::string text = R"(auth:
  oauth2:
    tokenUrl: https://auth.example/token
    clientId: my-api-key-id
    clientSecretFile: secrets/client-secret
    audience: my-app
desiredState:
  path: /srv/fleet
)";
  auto r = parse_config(text, "/etc/ts/c.yaml", {});
  REQUIRE(r.ok());
  CHECK_FALSE(r->auth.token_file);
  REQUIRE(r->auth.oauth2);
  CHECK(r->auth.oauth2->token_url == "https://auth.example/token");
  CHECK(r->auth.oauth2->client_id == "my-api-key-id");
  CHECK(r->auth.oauth2->client_secret_file == "/etc/ts/secrets/client-secret");
  CHECK(r->auth.oauth2->audience == "my-app");
}

TEST_CASE("oauth2 without a required key names the missing key", "[config]") {
  CHECK(only_error("auth:\n  oauth2:\n    tokenUrl: https://a/t\n    clientId: x\n"
                   "    audience: y\ndesiredState:\n  path: /f\n") ==
        "etc/thingsync.yaml:3:5: error: auth.oauth2: missing required key 'clientSecretFile'");
}

TEST_CASE("auth with both tokenFile and oauth2 is an error", "[config]") {
  const std::string text = R"(auth:
  tokenFile: /run/token
  oauth2:
    tokenUrl: https://auth.example/token
    clientId: id
    clientSecretFile: /run/secret
    audience: app
desiredState:
  path: /srv/fleet
)";
  CHECK(only_error(text) ==
        "etc/thingsync.yaml:2:3: error: auth: set exactly one of 'tokenFile' and 'oauth2', not "
        "both");
}

TEST_CASE("auth with neither tokenFile nor oauth2 is an error, and so is no auth at all",
          "[config]") {
  CHECK(only_error("auth: {}\ndesiredState:\n  path: /f\n") ==
        "etc/thingsync.yaml:1:7: error: auth: set exactly one of 'tokenFile' and 'oauth2'");
  CHECK(only_error("desiredState:\n  path: /f\n") ==
        "etc/thingsync.yaml:1:1: error: missing required key 'auth' (with 'tokenFile' or "
        "'oauth2')");
}

TEST_CASE("desiredState.path is required", "[config]") {
  CHECK(only_error("auth:\n  tokenFile: /t\n") ==
        "etc/thingsync.yaml:1:1: error: missing required key 'desiredState' (with 'path': a "
        "directory or file)");
  CHECK(only_error("auth:\n  tokenFile: /t\ndesiredState:\n  pth: /f\n") ==
        "etc/thingsync.yaml:4:3: error: unknown key 'pth' in desiredState; did you mean 'path'?");
}

TEST_CASE("durations take ms, s, m and h, and reject anything else", "[config]") {
  auto r = parse_config(with_sync("  pollInterval: 250ms\n  fullResyncInterval: 2h\n"
                                  "  modifiedSinceOverlap: 0s\n"),
                        "c.yaml", {});
  REQUIRE(r.ok());
  CHECK(r->sync.poll_interval == 250ms);
  CHECK(r->sync.full_resync_interval == 2h);
  CHECK(r->sync.modified_since_overlap == 0ms);

  CHECK(only_error(with_sync("  pollInterval: 30 seconds\n")) ==
        "etc/thingsync.yaml:6:17: error: sync.pollInterval: '30 seconds' is not a duration (a "
        "whole number with ms, s, m or h, as 30s or 15m)");
  CHECK(only_error(with_sync("  pollInterval: 0s\n")) ==
        "etc/thingsync.yaml:6:17: error: sync.pollInterval must be greater than 0");
  CHECK(only_error(std::string(kMinimal) + "api:\n  timeout: -5s\n") ==
        "etc/thingsync.yaml:6:12: error: api.timeout: '-5s' is not a duration (a whole number "
        "with ms, s, m or h, as 30s or 15m)");
}

TEST_CASE("maxDeletes takes a count or a percentage from 0% to 100%", "[config]") {
  auto percent = parse_config(with_sync("  maxDeletes: 2.5%\n"), "c.yaml", {});
  REQUIRE(percent.ok());
  CHECK(percent->sync.max_deletes.kind == DeleteLimit::Kind::kPercent);
  CHECK(percent->sync.max_deletes.value == 2.5);
  auto count = parse_config(with_sync("  maxDeletes: 0\n"), "c.yaml", {});
  REQUIRE(count.ok());
  CHECK(count->sync.max_deletes.kind == DeleteLimit::Kind::kCount);
  CHECK(count->sync.max_deletes.value == 0.0);

  for (const char* bad : {"150%", "-1", "-5%", "1.5", "lots", "5 %"}) {
    INFO(bad);
    CHECK(only_error(with_sync(std::string("  maxDeletes: \"") + bad + "\"\n")) ==
          std::string("etc/thingsync.yaml:6:15: error: sync.maxDeletes: '") + bad +
              "' is not a count (0 or more) or a percentage (0% to 100%)");
  }
}

TEST_CASE("deleteAfter, deleteWindows and approvedDeletesFile parse, and bad windows are errors",
          "[config]") {
  auto ok = parse_config(with_sync("  deleteAfter: 24h\n"
                                   "  deleteWindows: [\"Mon-Fri 09:00-17:00 Europe/Amsterdam\", "
                                   "\"Sat 22:00-02:00 UTC\"]\n"
                                   "  approvedDeletesFile: /etc/thingsync/approved\n"),
                         "c.yaml", {});
  REQUIRE(ok.ok());
  CHECK(ok->sync.delete_after == std::chrono::hours(24));
  REQUIRE(ok->sync.delete_windows.size() == 2);
  CHECK(ok->sync.delete_windows[1].zone == "UTC");
  CHECK(ok->sync.approved_deletes_file == std::filesystem::path("/etc/thingsync/approved"));
  // A zone not in the tz database is an error at its place: deletes must never be let go at
  // any time because a window could not be placed.
  CHECK_THAT(only_error(with_sync("  deleteWindows: [\"Mon 09:00-17:00 Europe/Atlantis\"]\n")),
             Catch::StartsWith("etc/thingsync.yaml:6:19: error: sync.deleteWindows: ") &&
                 Catch::Contains("Europe/Atlantis"));
  CHECK_THAT(only_error(with_sync("  deleteWindows: [\"Mon 9-17 UTC\"]\n")),
             Catch::Contains("is not a time range HH:MM-HH:MM"));
  CHECK_THAT(only_error(with_sync("  deleteWindows: \"Mon 09:00-17:00 UTC\"\n")),
             Catch::Contains("must be a list of windows"));
}

TEST_CASE("mode, prune, concurrency, rateLimit and rateLimitMax reject values of the wrong kind",
          "[config]") {
  const std::pair<std::string, std::string> cases[] = {
      {"  mode: dry-run\n", "6:9: error: sync.mode: 'dry-run' is not a mode (reconcile or observe)"},
      {"  prune: maybe\n", "6:10: error: sync.prune: 'maybe' is not a boolean (true or false)"},
      {"  concurrency: 0\n",
       "6:16: error: sync.concurrency: '0' is not a whole number from 1 to 1024"},
      {"  rateLimit: 0\n",
       "6:14: error: sync.rateLimit: '0' is not a positive number of requests per second (as 10 "
       "or 0.5, or auto)"},
      {"  rateLimit: Auto\n",
       "6:14: error: sync.rateLimit: 'Auto' is not a positive number of requests per second (as "
       "10 or 0.5, or auto)"},
      {"  rateLimitMax: -5\n",
       "6:17: error: sync.rateLimitMax: '-5' is not a positive number of requests per second (as "
       "50 or 0.5)"},
      {"  rateLimitMax: auto\n",
       "6:17: error: sync.rateLimitMax: 'auto' is not a positive number of requests per second "
       "(as 50 or 0.5)"},
      {"  rateLimit: [10]\n",
       "6:14: error: sync.rateLimit must be a single value, found a list"},
  };
  for (const auto& [line, error] : cases) {
    CHECK(only_error(with_sync(line)) == "etc/thingsync.yaml:" + error);
  }
  auto r = parse_config(with_sync("  rateLimit: 0.5\n"), "c.yaml", {});
  REQUIRE(r.ok());
  CHECK(r->sync.rate_limit == 0.5);
  CHECK_FALSE(r->sync.rate_limit_auto);
  CHECK(r->sync.rate_limit_max == 50);
  r = parse_config(with_sync("  rateLimit: auto\n  rateLimitMax: 400\n"), "c.yaml", {});
  REQUIRE(r.ok());
  CHECK(r->sync.rate_limit_auto);
  CHECK(r->sync.rate_limit_max == 400);
  CHECK(check_config(*r, false).empty());
}

TEST_CASE("rateLimitMax beside a numeric rateLimit is a warning: it would do nothing",
          "[config]") {
  auto r = parse_config(with_sync("  rateLimit: 10\n  rateLimitMax: 5\n"), "c.yaml", {});
  REQUIRE(r.ok());
  CHECK(r->sync.rate_limit == 10);
  const auto d = check_config(*r, false);
  REQUIRE(d.size() == 1);
  CHECK(d[0].to_string() ==
        "c.yaml:7:17: warning: sync.rateLimitMax: has no effect unless sync.rateLimit is auto: "
        "the rate is sync.rateLimit");
}

TEST_CASE("URLs must be http or https with a valid host and port", "[config]") {
  auto bad_url = [](const char* url) {
    return only_error(std::string(kMinimal) + "api:\n  baseUrl: " + url + "\n");
  };
  CHECK(bad_url("ftp://api.example.com") ==
        "etc/thingsync.yaml:6:12: error: api.baseUrl: 'ftp://api.example.com' is not a valid "
        "URL: the scheme must be http or https, not 'ftp'");
  CHECK(bad_url("api.example.com") ==
        "etc/thingsync.yaml:6:12: error: api.baseUrl: 'api.example.com' is not a valid URL: "
        "expected http:// or https://");
  CHECK(bad_url("https://api.example.com:99999") ==
        "etc/thingsync.yaml:6:12: error: api.baseUrl: 'https://api.example.com:99999' is not a "
        "valid URL: the port must be a number from 1 to 65535");
  CHECK(bad_url("https://") ==
        "etc/thingsync.yaml:6:12: error: api.baseUrl: 'https://' is not a valid URL: the host "
        "is missing");

  auto u = parse_http_url("HTTP://LocalHost:8080/base?x=1");
  REQUIRE(u.ok());
  CHECK(u->scheme == "http");
  CHECK(u->host == "localhost");
  CHECK(u->port == 8080);
  CHECK(u->path == "/base?x=1");
  auto v6 = parse_http_url("https://[::1]/");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 443);
  CHECK_FALSE(parse_http_url("https://user:pw@host/").ok());
}

TEST_CASE("http:// to a host that is not loopback is refused unless api.allowInsecureHttp",
          "[config]") {
  auto with_api = [](std::string_view api_lines) {
    return std::string(kMinimal) + "api:\n" + std::string(api_lines);
  };
  // tokenUrl on line 3, an api section after it on lines 8-9 when given.
  auto with_oauth2 = [](std::string_view token_url, std::string_view api_lines = {}) {
    return "auth:\n  oauth2:\n    tokenUrl: " + std::string(token_url) +
           "\n    clientId: id\n    clientSecretFile: secret\n    audience: aud\n"
           "desiredState:\n  path: /srv/fleet\n" +
           (api_lines.empty() ? std::string() : "api:\n" + std::string(api_lines));
  };
  const std::string how =
      " in clear text: use https://, or set api.allowInsecureHttp: true (http:// is allowed "
      "without it only to loopback: 127.0.0.0/8, ::1, localhost)";

  SECTION("refused: the base URL would carry the token, the token URL the client secret") {
    CHECK(only_error(with_api("  baseUrl: http://api.kpnthings.com\n")) ==
          "etc/thingsync.yaml:6:12: error: api.baseUrl: 'http://api.kpnthings.com' would send "
          "the API token" + how);
    CHECK(only_error(with_oauth2("http://auth.example/token")) ==
          "etc/thingsync.yaml:3:15: error: auth.oauth2.tokenUrl: 'http://auth.example/token' "
          "would send the client secret" + how);
    // Whatever spelling: upper-case scheme, a ${VAR}, a name that only resolves to loopback,
    // a private address, the unspecified address.
    for (const char* url : {"HTTP://api.example.com", "http://${HOST}:8080",
                            "http://127.0.0.1.nip.io", "http://ip6-localhost", "http://10.0.0.1",
                            "http://0.0.0.0:8080", "http://[::]:8080", "http://[fe80::1]/"}) {
      INFO(url);
      const auto e = only_error(with_api("  baseUrl: " + std::string(url) + "\n"),
                                env_of({{"HOST", "api.example.com"}}));
      CHECK(e.find("would send the API token in clear text") != std::string::npos);
    }
    CHECK(only_error(with_api("  baseUrl: http://api.example.com\n  allowInsecureHttp: false\n"))
              .find("api.allowInsecureHttp: true") != std::string::npos);
  }

  SECTION("loopback and https need no flag") {
    for (const char* url :
         {"http://127.0.0.1:8080", "http://127.1.2.3/base", "http://localhost:9000/x",
          "http://LocalHost", "http://[::1]:8443", "http://[0:0:0:0:0:0:0:1]",
          "http://[::ffff:127.0.0.1]:80", "https://api.kpnthings.com", "https://10.0.0.1"}) {
      INFO(url);
      auto r = parse_config(with_api("  baseUrl: " + std::string(url) + "\n"), "c.yaml", {});
      CHECK(r.ok());
      auto o = parse_config(with_oauth2(url), "c.yaml", {});
      CHECK(o.ok());
    }
  }

  SECTION("api.allowInsecureHttp: true allows both, wherever it is written in the file") {
    auto r = parse_config(
        with_api("  allowInsecureHttp: true\n  baseUrl: http://things.lab.example:8080\n"),
        "c.yaml", {});
    REQUIRE(r.ok());
    CHECK(r->api.allow_insecure_http);
    CHECK(r->api.base_url == "http://things.lab.example:8080");
    // After the auth section that holds the token URL.
    auto o = parse_config(with_oauth2("http://auth.lab.example/token",
                                      "  baseUrl: http://things.lab.example\n"
                                      "  allowInsecureHttp: true\n"),
                          "c.yaml", {});
    REQUIRE(o.ok());
    REQUIRE(o->auth.oauth2);
    CHECK(o->auth.oauth2->token_url == "http://auth.lab.example/token");
  }

  SECTION("the flag is a boolean like the others") {
    CHECK(only_error(with_api("  allowInsecureHttp: sometimes\n")) ==
          "etc/thingsync.yaml:6:22: error: api.allowInsecureHttp: 'sometimes' is not a boolean "
          "(true or false)");
  }
}

TEST_CASE("loopback hosts are 127.0.0.0/8, ::1 and localhost, in any spelling", "[config]") {
  for (const char* host : {"localhost", "127.0.0.1", "127.255.255.254", "127.0.0.0", "::1",
                           "0:0:0:0:0:0:0:1", "0000::0001", "::ffff:127.0.0.1"}) {
    INFO(host);
    CHECK(is_loopback_host(host));
  }
  for (const char* host : {"", "localhost.example", "localhost.", "ip6-localhost",
                           "127.0.0.1.nip.io", "128.0.0.1", "126.255.255.255", "0.0.0.0", "::",
                           "::2", "::ffff:128.0.0.1", "::127.0.0.1", "127.1", "0x7f.0.0.1",
                           "fe80::1", "api.kpnthings.com"}) {
    INFO(host);
    CHECK_FALSE(is_loopback_host(host));
  }
}

TEST_CASE("metrics.listen must be host:port", "[config]") {
  CHECK(only_error(std::string(kMinimal) + "metrics:\n  listen: 9464\n") ==
        "etc/thingsync.yaml:6:11: error: metrics.listen: '9464' is not host:port: the port is "
        "missing");
  CHECK(only_error(std::string(kMinimal) + "metrics:\n  listen: localhost:http\n") ==
        "etc/thingsync.yaml:6:11: error: metrics.listen: 'localhost:http' is not host:port: the "
        "port must be a number from 0 to 65535");
  auto a = parse_listen_address("0.0.0.0:0");
  REQUIRE(a.ok());
  CHECK(a->host == "0.0.0.0");
  CHECK(a->port == 0);
}

TEST_CASE("scope.clientId must be a UUID", "[config]") {
  CHECK(only_error(std::string(kMinimal) + "scope:\n  clientId: my-client\n") ==
        "etc/thingsync.yaml:6:13: error: scope.clientId: 'my-client' is not a UUID (8-4-4-4-12 "
        "hex digits)");
}

TEST_CASE("${VAR} is expanded in every string value and $$ is a literal dollar", "[config]") {
  const std::string text = R"(api:
  baseUrl: https://${API_HOST}:${API_PORT}
auth:
  tokenFile: /run/$$weird/${NAME}
desiredState:
  path: "${FLEET}"
)";
  auto r = parse_config(text, "c.yaml",
                        env_of({{"API_HOST", "api.test"},
                                {"API_PORT", "444"},
                                {"NAME", "tok"},
                                {"FLEET", "/srv/fleet"}}));
  INFO((r.ok() ? std::string() : all(r.error())));
  REQUIRE(r.ok());
  CHECK(r->api.base_url == "https://api.test:444");
  CHECK(*r->auth.token_file == "/run/$weird/tok");
  CHECK(r->desired_state_path == "/srv/fleet");
}

TEST_CASE("an unset ${VAR} is an error naming it at its line and column", "[config]") {
  const std::string text =
      "auth:\n"
      "  tokenFile: ${CREDENTIALS_DIRECTORY}/api-token\n"
      "desiredState:\n"
      "  path: \"/srv/${FLEET_NAME}\"\n";
  auto r = parse_config(text, "c.yaml", env_of({}));
  REQUIRE_FALSE(r.ok());
  CHECK(all(r.error()) ==
        "c.yaml:2:14: error: environment variable CREDENTIALS_DIRECTORY is not set\n"
        "c.yaml:4:15: error: environment variable FLEET_NAME is not set\n");
}

TEST_CASE("an unknown or misspelled key is an error with a suggestion", "[config]") {
  CHECK(only_error(with_sync("  pollIntervall: 30s\n")) ==
        "etc/thingsync.yaml:6:3: error: unknown key 'pollIntervall' in sync; did you mean "
        "'pollInterval'?");
  CHECK(only_error(std::string(kMinimal) + "metric:\n  listen: 127.0.0.1:1\n") ==
        "etc/thingsync.yaml:5:1: error: unknown key 'metric' in the config file; did you mean "
        "'metrics'?");
  CHECK(only_error(std::string(kMinimal) + "frobnicate: 1\n") ==
        "etc/thingsync.yaml:5:1: error: unknown key 'frobnicate' in the config file (expected "
        "one of: api auth desiredState scope sync state metrics)");
}

TEST_CASE("a key given twice is an error naming the first", "[config]") {
  CHECK(only_error(with_sync("  prune: true\n  prune: false\n")) ==
        "etc/thingsync.yaml:7:3: error: key 'prune' appears twice in sync; first at line 6");
}

TEST_CASE("all config errors are reported at once, in file order", "[config]") {
  auto r = parse_config("sync:\n  pollInterval: soon\n  maxDeletes: 150%\napi:\n  baseUrl: nope\n",
                        "c.yaml", {});
  REQUIRE_FALSE(r.ok());
  CHECK(all(r.error()) ==
        "c.yaml:1:1: error: missing required key 'desiredState' (with 'path': a directory or "
        "file)\n"
        "c.yaml:1:1: error: missing required key 'auth' (with 'tokenFile' or 'oauth2')\n"
        "c.yaml:2:17: error: sync.pollInterval: 'soon' is not a duration (a whole number with "
        "ms, s, m or h, as 30s or 15m)\n"
        "c.yaml:3:15: error: sync.maxDeletes: '150%' is not a count (0 or more) or a percentage "
        "(0% to 100%)\n"
        "c.yaml:5:12: error: api.baseUrl: 'nope' is not a valid URL: expected http:// or "
        "https://\n");
}

TEST_CASE("a YAML syntax error in the config is reported at its mark", "[config]") {
  CHECK(only_error("auth:\n  tokenFile: [/run/token\ndesiredState:\n  path: /f\n") ==
        "etc/thingsync.yaml:3:13: error: YAML syntax error: end of sequence flow not found");
}

TEST_CASE("a section given as a scalar names what was expected", "[config]") {
  CHECK(only_error(std::string(kMinimal) + "sync: fast\n") ==
        "etc/thingsync.yaml:5:7: error: sync must be a map, found a scalar");
}

TEST_CASE("relative paths in the config resolve against the config file's directory", "[config]") {
  auto r = parse_config(
      "auth:\n  tokenFile: secrets/token\ndesiredState:\n  path: ../fleet\n"
      "state:\n  path: ./state.json\n  journalPath: changes.jsonl\n",
      "examples/config.yaml", {});
  REQUIRE(r.ok());
  CHECK(*r->auth.token_file == "examples/secrets/token");
  CHECK(r->desired_state_path == "fleet");
  CHECK(r->state_path == "examples/state.json");
  CHECK(*r->journal_path == "examples/changes.jsonl");
}

TEST_CASE("an unreadable config file is one error naming it and the reason", "[config]") {
  TempDir dir;
  const auto missing = dir.path() / "missing.yaml";
  auto r = load_config_file(missing, {});
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.error().size() == 1);
  CHECK(r.error()[0].to_string() ==
        missing.string() + ": error: cannot read config file: No such file or directory");

  const auto good = dir.write("c.yaml", kMinimal);
  auto ok = load_config_file(good, {});
  REQUIRE(ok.ok());
  CHECK(ok->file == good);
}

TEST_CASE("a checked-in oauth2 config loads and points at its checked-in fleet", "[config]") {
  const std::string dir = std::string(THINGSYNC_TEST_DATA_DIR) + "/config";
  auto r = load_config_file(dir + "/oauth2-config.yaml",
                            env_of({{"CREDENTIALS_DIRECTORY", "/run/credentials/thingsync"}}));
  INFO((r.ok() ? std::string() : all(r.error())));
  REQUIRE(r.ok());
  REQUIRE(r->auth.oauth2);
  CHECK(r->auth.oauth2->client_secret_file == "/run/credentials/thingsync/client-secret");
  CHECK(r->api.timeout == 15s);
  CHECK(r->sync.prune);
  CHECK(r->sync.max_deletes.kind == DeleteLimit::Kind::kCount);
  CHECK(r->desired_state_path == dir + "/fleet");
}

// Found by fuzz/fuzz_config: diagnostics must point inside the file.
TEST_CASE("a ${VAR} error in a value spread over lines points at the value", "[config]") {
  const std::string text =
      "auth:\n"
      "  tokenFile: /run/token\n"
      "desiredState:\n"
      "  path: |\n"
      "    multi\n"
      "    ${UNSET} line\n";
  CHECK(only_error(text, env_of({})) ==
        "etc/thingsync.yaml:4:9: error: environment variable UNSET is not set");
  // Folded onto one line the value reads "/srv ${UNSET}": its column is not the file's.
  CHECK(only_error("auth: {tokenFile: /run/token}\ndesiredState:\n  path: /srv\n    ${UNSET}\n",
                   env_of({})) ==
        "etc/thingsync.yaml:3:9: error: environment variable UNSET is not set");
}

TEST_CASE("a syntax error at the very end of the input stays on its line", "[config]") {
  // yaml-cpp places this one two bytes past the end of the input.
  auto r = parse_config(std::string(kMinimal) + "state:\n  path: \"x\\", "c.yaml", env_of({}));
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.error().size() == 1);
  CHECK(r.error()[0].line == 6);
  CHECK(r.error()[0].column == 12);  // just after the 11 bytes of the line
}

// Found by fuzz/fuzz_desired_state: a NUL among the first four bytes made yaml-cpp read the
// file as UTF-16, which turned it into one long comment: an empty file, only a warning.
TEST_CASE("a NUL byte is an error at its place", "[config]") {
  CHECK(only_error(std::string("#\0 comment\n", 11) + kMinimal) ==
        "etc/thingsync.yaml:1:2: error: a NUL byte: the file must be UTF-8 text");
  CHECK(only_error(std::string(kMinimal) + std::string("state:\n  path: a\0b\n", 19)) ==
        "etc/thingsync.yaml:6:10: error: a NUL byte: the file must be UTF-8 text");
}

TEST_CASE("a quoted value left open at the end of the config is a syntax error", "[config]") {
  CHECK(only_error(std::string(kMinimal) + "state:\n  path: \"/var/lib/thingsync/state.json\n") ==
        "etc/thingsync.yaml:6:9: error: YAML syntax error: a quoted value starts here and is "
        "never closed");
}
