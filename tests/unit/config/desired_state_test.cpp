#include "thingsync/config/desired_state.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

using thingsync::config::LoadResult;
using thingsync::config::parse_desired_state_file;
using thingsync::config::PasswordSource;
using thingsync::config::test::all;
using thingsync::config::test::env_of;
using thingsync::config::test::kDefaults;
using thingsync::config::test::kSharedSources;
using thingsync::core::Severity;

namespace {

LoadResult parse(std::string_view text, const thingsync::config::EnvLookup& env = {}) {
  return parse_desired_state_file(text, "fleet/a.yaml", env);
}

// The file's only diagnostic as the user sees it.
std::string only(std::string_view text, const thingsync::config::EnvLookup& env = {}) {
  const auto r = parse(text, env);
  INFO(all(r.diagnostics));
  REQUIRE(r.diagnostics.size() == 1);
  return r.diagnostics[0].to_string();
}

std::string with_defaults(std::string_view bindings) {
  return std::string(kDefaults) + std::string(bindings);
}

}  // namespace

TEST_CASE("a file with derive defaults yields sorted bindings sharing one source",
          "[config][desired_state]") {
  const auto r =
      parse(with_defaults("  - deviceId: imei:350266800610994\n"
                          "  - deviceId: deveui:EA8FA35E2CF3489F\n"
                          "  - deviceId: \"urn:dev:IMEI:350266800610993:\"\n"));
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  REQUIRE(r.state.files == std::vector<std::string>{"fleet/a.yaml"});
  REQUIRE(r.state.sources.size() == 1);
  CHECK(r.state.sources[0].kind == PasswordSource::Kind::kDerive);
  CHECK(r.state.sources[0].ref == "/keys/fleet");
  CHECK(r.state.sources[0].line == 3);
  CHECK(r.state.sources[0].column == 5);
  REQUIRE(r.state.bindings.size() == 3);
  CHECK(r.state.bindings[0].device.canonical() == "deveui:ea8fa35e2cf3489f");
  CHECK(r.state.bindings[1].device.canonical() == "imei:350266800610993");
  CHECK(r.state.bindings[2].device.canonical() == "imei:350266800610994");
  CHECK(r.state.location(r.state.bindings[1]) == "fleet/a.yaml:8:15");
  for (const auto& b : r.state.bindings) CHECK(b.source == 0);
}

TEST_CASE("per-binding password sources override the default", "[config][desired_state]") {
  const auto r =
      parse(with_defaults("  - deviceId: imei:350266800610993\n"
                          "    password:\n"
                          "      file: secrets/a.pass\n"
                          "  - deviceId: imei:350266800610994\n"
                          "    password: {env: SENSOR_42_PASSWORD}\n"
                          "  - deviceId: imei:350266800610995\n"));
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  REQUIRE(r.state.bindings.size() == 3);
  const auto& s = r.state.sources;
  const auto& b = r.state.bindings;
  CHECK(s[b[0].source].kind == PasswordSource::Kind::kFile);
  CHECK(s[b[0].source].ref == "fleet/secrets/a.pass");
  CHECK(s[b[1].source].kind == PasswordSource::Kind::kEnv);
  CHECK(s[b[1].source].ref == "SENSOR_42_PASSWORD");
  CHECK(s[b[2].source].kind == PasswordSource::Kind::kDerive);
}

TEST_CASE("relative paths resolve against the file's directory, ${VAR} paths as given",
          "[config][desired_state]") {
  const auto r = parse_desired_state_file(
      "defaults:\n  password:\n    derive:\n      keyFile: ../../keys/fleet\n"
      "bindings:\n  - deviceId: imei:350266800610993\n"
      "    password:\n      derive:\n        keyFile: ${KEY_FILE}\n",
      "repo/fleet/sensors/a.yaml", env_of({{"KEY_FILE", "examples/secrets/./fleet-key"}}));
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  REQUIRE(r.state.sources.size() == 2);
  REQUIRE(r.state.bindings.size() == 1);
  const auto& used = r.state.sources[r.state.bindings[0].source];
  const auto& unused = r.state.sources[1 - r.state.bindings[0].source];
  CHECK(used.ref == "examples/secrets/fleet-key");
  CHECK(unused.ref == "repo/keys/fleet");
}

TEST_CASE("an IMEI of the wrong length is an error at the device ID", "[config][desired_state]") {
  CHECK(only(with_defaults("  - deviceId: imei:35026680061099\n")) ==
        "fleet/a.yaml:6:15: error: invalid device ID 'imei:35026680061099': IMEI must have 15 "
        "or 16 digits, got 14 characters");
}

TEST_CASE("a DevEUI with a non-hex digit is an error at the device ID", "[config][desired_state]") {
  CHECK(only(with_defaults("  - deviceId: imei:350266800610993\n"
                           "  - deviceId: deveui:ea8fa35e2cf3489g\n")) ==
        "fleet/a.yaml:7:15: error: invalid device ID 'deveui:ea8fa35e2cf3489g': DevEUI must "
        "contain only hex digits");
}

TEST_CASE("a device ID with trailing garbage is an error", "[config][desired_state]") {
  CHECK(only(with_defaults("  - deviceId: imei:350266800610993x\n")) ==
        "fleet/a.yaml:6:15: error: invalid device ID 'imei:350266800610993x': IMEI must "
        "contain only digits");
  CHECK(only(with_defaults("  - deviceId: \"imei:350266800610993:\"\n")) ==
        "fleet/a.yaml:6:15: error: invalid device ID 'imei:350266800610993:': a trailing ':' "
        "is only allowed on the urn:dev: form");
}

TEST_CASE("an empty file is a warning, not an error", "[config][desired_state]") {
  for (const char* text : {"", "# nothing here yet\n", "---\n"}) {
    INFO(text);
    const auto r = parse(text);
    CHECK(r.ok());
    CHECK(r.state.bindings.empty());
    REQUIRE(r.diagnostics.size() == 1);
    CHECK(r.diagnostics[0].severity == Severity::kWarning);
    CHECK(r.diagnostics[0].to_string() ==
          "fleet/a.yaml:1:1: warning: the file is empty: it declares no bindings");
  }
}

TEST_CASE("a YAML syntax error is reported at its mark", "[config][desired_state]") {
  CHECK(only(with_defaults("  - deviceId: imei:350266800610993\n"
                           "  - deviceId: [imei:350266800610994\n")) ==
        "fleet/a.yaml:8:1: error: YAML syntax error: end of sequence flow not found");
}

TEST_CASE("an unquoted URN ending in ':' is reported with advice to quote it",
          "[config][desired_state]") {
  SECTION("as the value of deviceId: a YAML error") {
    CHECK(only(with_defaults("  - deviceId: imei:350266800610994\n"
                             "  - deviceId: urn:dev:imei:350266800610993:\n")) ==
          "fleet/a.yaml:7:43: error: YAML syntax error: illegal map value; quote device IDs that "
          "end in ':' (write deviceId: \"urn:dev:IMEI:...:\")");
  }
  SECTION("as a list item: a map key") {
    CHECK(only(with_defaults("  - urn:dev:imei:350266800610993:\n")) ==
          "fleet/a.yaml:6:5: error: device ID 'urn:dev:imei:350266800610993:' was read as a map "
          "key: quote device IDs that end in ':' (write - deviceId: "
          "\"urn:dev:imei:350266800610993:\")");
  }
}

TEST_CASE("a scalar where a map belongs names what was expected", "[config][desired_state]") {
  CHECK(only("defaults:\n  password: /etc/pw\nbindings: []\n") ==
        "fleet/a.yaml:2:13: error: password must be a map (with one of derive, file, env, "
        "value), found a scalar");
  CHECK(only(with_defaults("  - imei:350266800610993\n")) ==
        "fleet/a.yaml:6:5: error: a binding must be a map (- deviceId: ID), found a scalar "
        "'imei:350266800610993'; write '- deviceId: imei:350266800610993'");
  CHECK(only("- deviceId: imei:350266800610993\n") ==
        "fleet/a.yaml:1:1: error: a desired-state file must be a map (with 'defaults' and "
        "'bindings'), found a list");
}

TEST_CASE("a map where a list belongs names what was expected", "[config][desired_state]") {
  CHECK(only(with_defaults("  deviceId: imei:350266800610993\n")) ==
        "fleet/a.yaml:6:3: error: bindings must be a list (- deviceId: ID), found a map");
}

TEST_CASE("an unknown key is an error with a suggestion", "[config][desired_state]") {
  const auto r =
      parse(with_defaults("  - deviceID: imei:350266800610993\n"
                          "    pasword: {env: X}\n"));
  CHECK(all(r.diagnostics) ==
        "fleet/a.yaml:6:5: error: unknown key 'deviceID' in a binding; did you mean 'deviceId'?\n"
        "fleet/a.yaml:7:5: error: unknown key 'pasword' in a binding; did you mean "
        "'password'?\n");
  CHECK(only("default:\n  password: {env: X}\nbindings: []\n") ==
        "fleet/a.yaml:1:1: error: unknown key 'default' in a desired-state file; did you mean "
        "'defaults'?");
  CHECK(only("bindings:\n  - deviceId: imei:350266800610993\n    password: {derive: {keyfile: "
             "/k}}\n") ==
        "fleet/a.yaml:3:25: error: unknown key 'keyfile' in derive; did you mean 'keyFile'?");
}

TEST_CASE("a binding without a password source and without a default is an error",
          "[config][desired_state]") {
  CHECK(only("bindings:\n  - deviceId: imei:350266800610993\n") ==
        "fleet/a.yaml:2:15: error: binding for imei:350266800610993 has no password source: add "
        "'password:' to it or 'defaults: password:' to the file");
}

TEST_CASE("a password source needs exactly one kind", "[config][desired_state]") {
  CHECK(only(with_defaults("  - deviceId: imei:350266800610993\n"
                           "    password: {env: A, file: /b}\n")) ==
        "fleet/a.yaml:7:15: error: password must have exactly one of derive, file, env or "
        "value, found 2");
  CHECK(only(with_defaults("  - deviceId: imei:350266800610993\n"
                           "    password: {}\n")) ==
        "fleet/a.yaml:7:15: error: password needs one of derive, file, env or value");
  CHECK(only(with_defaults("  - deviceId: imei:350266800610993\n"
                           "    password: {env: \"not a name\"}\n")) ==
        "fleet/a.yaml:7:21: error: 'not a name' is not an environment variable name");
}

TEST_CASE("a literal password value is a warning that never shows the password",
          "[config][desired_state]") {
  const auto r =
      parse(with_defaults("  - deviceId: imei:350266800610993\n"
                          "    password:\n"
                          "      value: \"Sup3r-Secret-Literal-Passw0rd!\"\n"));
  REQUIRE(r.ok());
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].to_string() ==
        "fleet/a.yaml:8:14: warning: password is a literal value: a secret in Git; prefer "
        "derive, file or env");
  CHECK(all(r.diagnostics).find("Sup3r") == std::string::npos);
  const auto& src = r.state.sources[r.state.bindings[0].source];
  CHECK(src.kind == PasswordSource::Kind::kValue);
  CHECK(src.value.reveal() == "Sup3r-Secret-Literal-Passw0rd!");
}

TEST_CASE("an unset variable in a key file path is an error at its column",
          "[config][desired_state]") {
  CHECK(only("defaults:\n  password:\n    derive:\n      keyFile: ${CREDENTIALS_DIRECTORY}/key\n"
             "bindings:\n  - deviceId: imei:350266800610993\n",
             env_of({})) ==
        "fleet/a.yaml:4:16: error: environment variable CREDENTIALS_DIRECTORY is not set");
}

TEST_CASE("a device listed twice in one file names both places", "[config][desired_state]") {
  CHECK(only(with_defaults("  - deviceId: imei:350266800610993\n"
                           "  - deviceId: deveui:ea8fa35e2cf3489f\n"
                           "  - deviceId: URN:DEV:IMEI:350266800610993\n")) ==
        "fleet/a.yaml:8:15: error: duplicate device imei:350266800610993; first listed at "
        "fleet/a.yaml:6:15");
}

TEST_CASE("every error of a file is reported at once, in line order", "[config][desired_state]") {
  const auto r =
      parse(with_defaults("  - deviceId: imei:1\n"
                          "  - deviceId: imei:350266800610993\n"
                          "    password: {nope: 1}\n"
                          "  - deviceId: deveui:xyz\n"));
  CHECK(all(r.diagnostics) ==
        "fleet/a.yaml:6:15: error: invalid device ID 'imei:1': IMEI must have 15 or 16 digits, "
        "got 1 characters\n"
        "fleet/a.yaml:8:16: error: unknown key 'nope' in password (expected one of: derive "
        "file env value)\n"
        "fleet/a.yaml:9:15: error: invalid device ID 'deveui:xyz': DevEUI must have 16 hex "
        "digits, got 3 characters\n");
}

TEST_CASE("YAML aliases are rejected with a clear message", "[config][desired_state]") {
  CHECK(only("defaults:\n  password: &pw {env: A}\nbindings:\n"
             "  - deviceId: imei:350266800610993\n    password: *pw\n") ==
        "fleet/a.yaml:5:15: error: password must be a map (with one of derive, file, env, "
        "value), found an alias (aliases are not supported)");
}

// Found by fuzz/fuzz_desired_state: the builder of the second document kept references to
// temporaries, so a list in it was read through a dangling std::function (ASan:
// stack-use-after-scope).
TEST_CASE("a second YAML document is an error, whatever it holds", "[config][desired_state]") {
  for (const char* second :
       {"bindings: []\n", "- deviceId: imei:350266800610994\n", "{a: [1, [2]]}\n"}) {
    INFO(second);
    CHECK(only(with_defaults("  - deviceId: imei:350266800610993\n---\n") + second) ==
          "fleet/a.yaml:8:1: error: a second YAML document ('---') in one file is not supported");
  }
}

// Found by fuzz/fuzz_desired_state: yaml-cpp 0.7 reads a quoted value that is never closed, at
// the end of a file, as ending there ("abc" plus the line break as a space), so a forgotten
// quote silently changed a value (and let a large file's parts be cut inside a quoted value).
TEST_CASE("a quoted value left open at the end of a file is a syntax error",
          "[config][desired_state]") {
  const auto r = parse("defaults:\n  password:\n    file: \"secrets/a.pass\n\n");
  CHECK(all(r.diagnostics) ==
        "fleet/a.yaml:3:11: error: YAML syntax error: a quoted value starts here and is never "
        "closed\n");
  const auto single = parse("bindings:\n  - deviceId: 'imei:350266800610993''\n  ");
  CHECK_FALSE(single.ok());
  CHECK(single.diagnostics.back().message ==
        "YAML syntax error: a quoted value starts here and is never closed");
  // Closed ones, escaped quotes and quotes in comments are fine.
  const auto fine =
      parse(with_defaults("  - deviceId: \"imei:350266800610993\"  # \"\n"
                          "    password: {value: 'it''s \"x\\\"'}\n"));
  CHECK(fine.ok());
}

// Found by fuzz/fuzz_desired_state: bindings are checked while the file is read and the defaults
// after it, so the defaults' source was numbered last and a source shared with a binding took
// the binding's place -- unlike the same file parsed in parts.
TEST_CASE("sources are numbered in the order they are written, each where it first appears",
          "[config][desired_state]") {
  const auto r = parse(kSharedSources);
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  const auto& s = r.state.sources;
  REQUIRE(s.size() == 2);
  CHECK(s[0].kind == PasswordSource::Kind::kEnv);
  CHECK(s[0].line == 2);
  CHECK(s[0].column == 13);
  CHECK(s[1].kind == PasswordSource::Kind::kFile);
  CHECK(s[1].line == 5);
  REQUIRE(r.state.bindings.size() == 3);
  CHECK(r.state.bindings[0].source == 1);  // imei:...993, its own file
  CHECK(r.state.bindings[1].source == 0);  // the defaults
  CHECK(r.state.bindings[2].source == 0);  // the same env source as the defaults
}

// Found by fuzz/fuzz_config: the column of a ${VAR} error was counted in the value as read, not
// as written, so in a multi-line, escaped or anchored value it pointed past the end of the line.
TEST_CASE("a ${VAR} error points at the reference where it is written as is, else at the value",
          "[config][desired_state]") {
  const auto r = parse(
      "defaults:\n"
      "  password:\n"
      "    derive: {keyFile: \"/k/${A}\"}\n"
      "bindings:\n"
      "  - deviceId: imei:350266800610993\n"
      "    password: {file: \"\\x41/${B}\"}\n"
      "  - deviceId: imei:350266800610994\n"
      "    password:\n"
      "      file: |\n"
      "        /very/long/path/${C}\n"
      "  - deviceId: imei:350266800610995\n"
      "    password:\n"
      "      file: &f /x/${D}\n",
      env_of({}));
  CHECK(all(r.diagnostics) ==
        "fleet/a.yaml:3:27: error: environment variable A is not set\n"
        "fleet/a.yaml:6:22: error: environment variable B is not set\n"
        "fleet/a.yaml:9:13: error: environment variable C is not set\n"
        "fleet/a.yaml:13:13: error: environment variable D is not set\n");
}

TEST_CASE("a NUL byte near the start does not make a file empty", "[config][desired_state]") {
  const auto r = parse(std::string("#\0 a fleet\n", 11) +
                       with_defaults("  - deviceId: imei:350266800610993\n"));
  CHECK(all(r.diagnostics) ==
        "fleet/a.yaml:1:2: error: a NUL byte: the file must be UTF-8 text\n");
}

// Found by fuzz/fuzz_desired_state: a UTF-16 byte order mark made yaml-cpp read the file as
// UTF-16 (one comment: an empty file), while the parts of a large file after the first were
// read as UTF-8. Only UTF-8 is taken (a UTF-8 byte order mark is fine).
TEST_CASE("a UTF-16 or UTF-32 file is an error, a UTF-8 byte order mark is fine",
          "[config][desired_state]") {
  const std::string fleet = with_defaults("  - deviceId: imei:350266800610993\n");
  for (const std::string& bom : {std::string("\xFE\xFF"), std::string("\xFF\xFE"),
                                std::string("\0\0\xFE\xFF", 4)}) {
    CHECK(all(parse(bom + fleet).diagnostics) ==
          "fleet/a.yaml:1:1: error: a UTF-16/UTF-32 byte order mark: the file must be UTF-8 text\n");
  }
  const auto r = parse("\xEF\xBB\xBF" + fleet);
  CHECK(r.ok());
  CHECK(r.state.bindings.size() == 1);
}
