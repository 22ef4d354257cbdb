#include "thingsync/config/password_resolver.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"
#include "thingsync/core/password.hpp"

using thingsync::config::DesiredState;
using thingsync::config::LoadResult;
using thingsync::config::parse_desired_state_file;
using thingsync::config::PasswordResolver;
using thingsync::config::validate_sources;
using thingsync::config::test::all;
using thingsync::config::test::env_of;
using thingsync::config::test::TempDir;
using thingsync::core::DeviceId;
using thingsync::core::PasswordDeriver;
using thingsync::core::Secret;

namespace {

constexpr const char* kKey = "0123456789abcdef0123456789abcdef-test-key";
constexpr const char* kGoodPassword = "Correct-Horse-Battery-9-Staple";

// Parses `text` as dir/fleet.yaml, so that relative paths point into the temp dir.
LoadResult parse_in(const TempDir& dir, const std::string& text,
                    const thingsync::config::EnvLookup& env = {}) {
  auto r = parse_desired_state_file(text, (dir.path() / "fleet.yaml").string(), env);
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  return r;
}

std::string derive_fleet(const std::string& key_file, const std::string& bindings) {
  return "defaults:\n  password:\n    derive:\n      keyFile: " + key_file + "\nbindings:\n" +
         bindings;
}

}  // namespace

TEST_CASE("derive passwords come from the fleet key, without its trailing newline",
          "[config][password]") {
  TempDir dir;
  dir.write("fleet-key", std::string(kKey) + "\r\n");
  const auto r = parse_in(dir, derive_fleet("fleet-key",
                                            "  - deviceId: imei:350266800610993\n"
                                            "  - deviceId: deveui:ea8fa35e2cf3489f\n"));
  CHECK(validate_sources(r.state, env_of({})).empty());
  PasswordResolver resolver(r.state, env_of({}));
  PasswordDeriver reference{Secret(kKey)};
  for (const auto& b : r.state.bindings) {
    auto pw = resolver.resolve(b);
    REQUIRE(pw.ok());
    CHECK(pw->reveal() == reference.derive(b.device.unpack()).reveal());
    CHECK(thingsync::core::password_policy_violation(pw->reveal()).empty());
  }
}

TEST_CASE("file, env and value sources yield their passwords", "[config][password]") {
  TempDir dir;
  dir.write("pw/a.pass", std::string(kGoodPassword) + "\n");
  const auto env = env_of({{"SENSOR_PW", "Env-Provided-Passw0rd-1234!"}});
  const auto r = parse_in(dir,
                          "bindings:\n"
                          "  - deviceId: imei:350266800610993\n"
                          "    password: {file: pw/a.pass}\n"
                          "  - deviceId: imei:350266800610994\n"
                          "    password: {env: SENSOR_PW}\n"
                          "  - deviceId: imei:350266800610995\n"
                          "    password: {value: \"Literal-Passw0rd-In-Git-#42\"}\n");
  CHECK(validate_sources(r.state, env).empty());
  PasswordResolver resolver(r.state, env);
  REQUIRE(r.state.bindings.size() == 3);
  CHECK(resolver.resolve(r.state.bindings[0])->reveal() == kGoodPassword);
  CHECK(resolver.resolve(r.state.bindings[1])->reveal() == "Env-Provided-Passw0rd-1234!");
  CHECK(resolver.resolve(r.state.bindings[2])->reveal() == "Literal-Passw0rd-In-Git-#42");
}

TEST_CASE("an unreadable password file is an error at the source and at each binding",
          "[config][password]") {
  TempDir dir;
  const auto r = parse_in(dir,
                          "bindings:\n"
                          "  - deviceId: imei:350266800610993\n"
                          "    password:\n"
                          "      file: missing.pass\n");
  const std::string file = (dir.path() / "fleet.yaml").string();
  const std::string pass = (dir.path() / "missing.pass").string();
  CHECK(all(validate_sources(r.state, env_of({}))) ==
        file + ":4:7: error: cannot read password file " + pass +
            ": No such file or directory; used by 1 binding\n");
  PasswordResolver resolver(r.state, env_of({}));
  auto pw = resolver.resolve(r.state.bindings[0]);
  REQUIRE_FALSE(pw.ok());
  CHECK(pw.error().to_string() ==
        file + ":2:15: error: no password for imei:350266800610993: cannot read password file " +
            pass + ": No such file or directory");
}

TEST_CASE("an unset password env variable is an error naming it", "[config][password]") {
  TempDir dir;
  const auto r = parse_in(dir,
                          "bindings:\n"
                          "  - deviceId: imei:350266800610993\n"
                          "    password: {env: SENSOR_42_PASSWORD}\n");
  CHECK(all(validate_sources(r.state, env_of({}))) ==
        (dir.path() / "fleet.yaml").string() +
            ":3:15: error: environment variable SENSOR_42_PASSWORD is not set; used by 1 "
            "binding\n");
}

TEST_CASE("a fleet key shorter than 32 bytes or empty is an error", "[config][password]") {
  TempDir dir;
  dir.write("short-key", "only-20-bytes-long!!\n");
  dir.write("empty-key", "\n");
  const auto r = parse_in(dir, derive_fleet("short-key",
                                            "  - deviceId: imei:350266800610993\n"
                                            "  - deviceId: imei:350266800610994\n"
                                            "    password:\n"
                                            "      derive: {keyFile: empty-key}\n"));
  const std::string file = (dir.path() / "fleet.yaml").string();
  CHECK(all(validate_sources(r.state, env_of({}))) ==
        file + ":3:5: error: fleet key " + (dir.path() / "short-key").string() +
            " is too short (20 bytes, need at least 32); used by 1 binding\n" + file +
            ":9:7: error: fleet key file " + (dir.path() / "empty-key").string() +
            " is empty; used by 1 binding\n");
  PasswordResolver resolver(r.state, env_of({}));
  auto pw = resolver.resolve(r.state.bindings[0]);
  REQUIRE_FALSE(pw.ok());
  CHECK(pw.error().to_string() == file +
                                      ":6:15: error: no password for imei:350266800610993: "
                                      "fleet key " +
                                      (dir.path() / "short-key").string() +
                                      " is too short (20 bytes, need at least 32)");
}

TEST_CASE("a password that breaks the API policy is an error that never shows it",
          "[config][password]") {
  TempDir dir;
  dir.write("weak.pass", "hunter2\n");
  const auto env = env_of({{"WEAK", "alllowercaseandlongenoughtopass"}});
  const auto r = parse_in(dir,
                          "bindings:\n"
                          "  - deviceId: imei:350266800610993\n"
                          "    password: {file: weak.pass}\n"
                          "  - deviceId: imei:350266800610994\n"
                          "    password: {env: WEAK}\n"
                          "  - deviceId: imei:350266800610995\n"
                          "    password: {value: short}\n");
  const auto diags = validate_sources(r.state, env);
  REQUIRE(diags.size() == 3);
  const std::string text = all(diags);
  CHECK(text.find("hunter2") == std::string::npos);
  CHECK(text.find("alllowercase") == std::string::npos);
  CHECK(text.find("short\n") == std::string::npos);
  const std::string file = (dir.path() / "fleet.yaml").string();
  CHECK(diags[0].to_string().rfind(file + ":3:15: error: the password in file " +
                                       (dir.path() / "weak.pass").string() +
                                       " does not meet the API's password policy: ",
                                   0) == 0);
  CHECK(diags[1].to_string().rfind(file + ":5:15: error: the password in environment variable "
                                          "WEAK does not meet the API's password policy: ",
                                   0) == 0);
  CHECK(diags[2].to_string().rfind(
            file + ":7:15: error: the literal password value does not meet the API's password "
                   "policy: ",
            0) == 0);
  PasswordResolver resolver(r.state, env);
  auto pw = resolver.resolve(r.state.bindings[0]);
  REQUIRE_FALSE(pw.ok());
  CHECK(pw.error().line == 2);
  CHECK(pw.error().message.find("hunter2") == std::string::npos);
}

TEST_CASE("derive sources with one key file are one source across files", "[config][password]") {
  TempDir dir;
  dir.write("key", kKey);
  const std::string body =
      "defaults:\n  password:\n    derive:\n      keyFile: ${KEY}\n"
      "bindings:\n  - deviceId: ";
  dir.write("a/one.yaml", body + "imei:350266800610993\n");
  dir.write("b/two.yaml", body + "imei:350266800610994\n");
  dir.write("b/three.yaml",
            "defaults:\n  password:\n    derive:\n      keyFile: ../key\n"
            "bindings:\n  - deviceId: imei:350266800610995\n");
  thingsync::config::LoadOptions o;
  o.env = env_of({{"KEY", (dir.path() / "key").string()}});
  const auto r = thingsync::config::load_desired_state(dir.path(), o);
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  CHECK(r.state.sources.size() == 1);
  CHECK(r.state.bindings.size() == 3);
  CHECK(validate_sources(r.state, o.env).empty());
}

namespace {

// A file of `n` bindings that take the defaults.password `source` (a YAML flow map).
std::string fleet_of(const std::string& source, int n) {
  std::string y = "defaults:\n  password: " + source + "\nbindings:\n";
  for (int i = 0; i < n; ++i) {
    y += "  - deviceId: imei:35" + std::to_string(1000000000000 + i) + "\n";
  }
  return y;
}

}  // namespace

TEST_CASE("a missing key file used by 10,000 bindings is one error naming the count",
          "[config][password]") {
  TempDir dir;
  const auto r = parse_in(dir, fleet_of("{derive: {keyFile: missing-key}}", 10000));
  REQUIRE(r.state.bindings.size() == 10000);
  const std::string file = (dir.path() / "fleet.yaml").string();
  CHECK(all(validate_sources(r.state, env_of({}))) ==
        file + ":2:13: error: cannot read fleet key file " + (dir.path() / "missing-key").string() +
            ": No such file or directory; used by 10000 bindings\n");
  // Every binding gets the same reason, so that a caller can count them by source.
  PasswordResolver resolver(r.state, env_of({}));
  const auto first = resolver.password(r.state.bindings[0]);
  const auto last = resolver.password(r.state.bindings[r.state.bindings.size() - 1]);
  REQUIRE_FALSE(first.ok());
  REQUIRE_FALSE(last.ok());
  CHECK(first.error() == last.error());
  CHECK(first.error().data() == last.error().data());  // the same text, not a copy each time
}

TEST_CASE("a password file or env variable shared by many bindings is one error",
          "[config][password]") {
  TempDir dir;
  const std::string file = (dir.path() / "fleet.yaml").string();
  SECTION("a password file") {
    const auto r = parse_in(dir, fleet_of("{file: gone.pass}", 250));
    CHECK(all(validate_sources(r.state, env_of({}))) ==
          file + ":2:13: error: cannot read password file " + (dir.path() / "gone.pass").string() +
              ": No such file or directory; used by 250 bindings\n");
  }
  SECTION("an env variable") {
    const auto r = parse_in(dir, fleet_of("{env: FLEET_PASSWORD}", 250));
    CHECK(all(validate_sources(r.state, env_of({}))) ==
          file +
              ":2:13: error: environment variable FLEET_PASSWORD is not set; used by 250 "
              "bindings\n");
  }
}

TEST_CASE("a missing key file shared across files is one error at its first place",
          "[config][password]") {
  TempDir dir;
  const std::string head = "defaults:\n  password:\n    derive:\n      keyFile: ";
  dir.write("a/one.yaml", head + "../key\nbindings:\n  - deviceId: imei:350266800610993\n");
  dir.write("b/two.yaml", head +
                              "../key\nbindings:\n  - deviceId: imei:350266800610994\n"
                              "  - deviceId: imei:350266800610995\n");
  dir.write("c.yaml",
            "bindings:\n  - deviceId: imei:350266800610996\n"
            "    password: {derive: {keyFile: key}}\n");
  const auto r =
      thingsync::config::load_desired_state(dir.path(), thingsync::config::test::load_options());
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  REQUIRE(r.state.sources.size() == 1);
  CHECK(all(validate_sources(r.state, env_of({}))) ==
        (dir.path() / "a/one.yaml").string() + ":3:5: error: cannot read fleet key file " +
            (dir.path() / "key").string() + ": No such file or directory; used by 4 bindings\n");
}

TEST_CASE("source_errors places each broken source once and counts what uses it",
          "[config][password]") {
  DesiredState st;
  st.files = {"a.yaml", "b.yaml"};
  thingsync::config::PasswordSource derive;
  derive.ref = "/keys/fleet";
  derive.file = 1;
  derive.line = 4;
  derive.column = 7;
  thingsync::config::PasswordSource literal;
  literal.kind = thingsync::config::PasswordSource::Kind::kValue;
  literal.file = 0;
  literal.line = 9;
  literal.column = 15;
  st.sources = {derive, literal};
  thingsync::config::SourceFailures failures;
  failures[0] = {"cannot read fleet key file /keys/fleet: Permission denied", 1};
  failures[1] = {"the literal password value does not meet the API's password policy: x", 1};
  // Sorted by place; a literal is its own source, so no count is given for it.
  CHECK(all(thingsync::config::source_errors(st, failures)) ==
        "a.yaml:9:15: error: the literal password value does not meet the API's password "
        "policy: x\n"
        "b.yaml:4:7: error: cannot read fleet key file /keys/fleet: Permission denied; used by "
        "1 binding\n");
  failures[0].bindings = 0;  // a source of a file's defaults that no binding takes
  failures.erase(1);
  CHECK(all(thingsync::config::source_errors(st, failures)) ==
        "b.yaml:4:7: error: cannot read fleet key file /keys/fleet: Permission denied\n");
}
