#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "thingsync/config/desired_state.hpp"

using thingsync::config::load_desired_state;
using thingsync::config::LoadOptions;
using thingsync::config::test::all;
using thingsync::config::test::env_of;
using thingsync::config::test::fleet;
using thingsync::config::test::kDefaults;
using thingsync::config::test::kSharedSources;
using thingsync::config::test::load_options;
using thingsync::config::test::TempDir;

namespace fs = std::filesystem;

namespace {

std::string imei(std::size_t i) {
  const std::string digits = std::to_string(i);
  return "imei:35" + std::string(13 - digits.size(), '0') + digits;
}

}  // namespace

TEST_CASE("a directory is read recursively in sorted order, hidden entries skipped",
          "[config][load]") {
  TempDir dir;
  dir.write("b.yaml", fleet({"imei:350266800610001"}));
  dir.write("a/z.yaml", fleet({"imei:350266800610002"}));
  dir.write("a/b.yml", fleet({"imei:350266800610003"}));
  dir.write("a/b/c.yaml", fleet({"imei:350266800610004"}));
  dir.write("notes.txt", "not yaml at all: [");
  dir.write("a/.draft.yaml", "not: [valid");
  dir.write(".git/config.yaml", "not: [valid");
  dir.write("a/.hidden/deep.yaml", "not: [valid");
  const auto r = load_desired_state(dir.path(), load_options());
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  const std::string d = dir.str();
  CHECK(r.state.files == std::vector<std::string>{d + "/a/b.yml", d + "/a/b/c.yaml",
                                                  d + "/a/z.yaml", d + "/b.yaml"});
  CHECK(r.state.bindings.size() == 4);
  CHECK(r.state.sources.size() == 1);  // one derive key for every file
}

TEST_CASE("one file can be loaded directly, whatever its name", "[config][load]") {
  TempDir dir;
  const auto file = dir.write("fleet.txt", fleet({"imei:350266800610001", "imei:350266800610002"}));
  const auto r = load_desired_state(file, load_options());
  REQUIRE(r.ok());
  CHECK(r.state.files == std::vector<std::string>{file});
  CHECK(r.state.bindings.size() == 2);
}

TEST_CASE("a device listed in two files in different spellings names both places",
          "[config][load]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610993", "deveui:ea8fa35e2cf3489f"}));
  dir.write("sub/b.yaml", fleet({"imei:350266800610111", "\"urn:dev:IMEI:350266800610993:\""}));
  dir.write("sub/c.yaml", fleet({"DEVEUI:EA8FA35E2CF3489F"}));
  const auto r = load_desired_state(dir.path(), load_options());
  const std::string d = dir.str();
  CHECK(all(r.diagnostics) ==
        d + "/sub/b.yaml:7:15: error: duplicate device imei:350266800610993; first listed at " + d +
            "/a.yaml:6:15\n" + d +
            "/sub/c.yaml:6:15: error: duplicate device deveui:ea8fa35e2cf3489f; first listed at " +
            d + "/a.yaml:7:15\n");
  CHECK_FALSE(r.ok());
  CHECK(r.state.bindings.size() == 3);  // each device once, at its first place
}

TEST_CASE("errors of all files are reported at once, sorted by file, line and column",
          "[config][load]") {
  TempDir dir;
  dir.write("b.yaml", fleet({"imei:1"}));
  dir.write("a.yaml", "bindings:\n  - deviceId: imei:350266800610993\n");
  dir.write("c.yaml", "bindings: [");
  const auto r = load_desired_state(dir.path(), load_options());
  const std::string d = dir.str();
  CHECK(all(r.diagnostics) ==
        d +
            "/a.yaml:2:15: error: binding for imei:350266800610993 has no password source: add "
            "'password:' to it or 'defaults: password:' to the file\n" +
            d +
            "/b.yaml:6:15: error: invalid device ID 'imei:1': IMEI must have 15 or 16 digits, "
            "got 1 characters\n" +
            d + "/c.yaml:1:1: error: YAML syntax error: end of sequence flow not found\n");
}

TEST_CASE("a missing path and a directory without YAML files are errors", "[config][load]") {
  TempDir dir;
  const auto missing = dir.path() / "nope";
  CHECK(all(load_desired_state(missing, load_options()).diagnostics) ==
        missing.string() + ": error: cannot read desired state: No such file or directory\n");
  std::filesystem::create_directories(dir.path() / "empty");
  CHECK(all(load_desired_state(dir.path() / "empty", load_options()).diagnostics) ==
        (dir.path() / "empty").string() +
            ": error: no *.yaml or *.yml files in the desired-state directory\n");
  // A directory named like a YAML file is a directory, not a file.
  std::filesystem::create_directories(dir.path() / "weird" / "x.yaml");
  CHECK(all(load_desired_state(dir.path() / "weird", load_options()).diagnostics) ==
        (dir.path() / "weird").string() +
            ": error: no *.yaml or *.yml files in the desired-state directory\n");
}

TEST_CASE("a large file parsed in parts gives the same bindings and locations as in one piece",
          "[config][load]") {
  TempDir dir;
  std::string text = "# a big fleet\n";
  text += kDefaults;
  const std::size_t n = 3000;
  for (std::size_t i = 0; i < n; ++i) {
    text += "  - deviceId: " + imei(i) + "\n";
    if (i % 7 == 0) text += "    # a comment\n";
    if (i % 11 == 0) text += "    password:\n      env: PW_" + std::to_string(i % 3) + "\n";
  }
  text += "  - deviceId: " + imei(2500) + "\n";  // a duplicate near the end: later chunk
  const auto file = dir.write("big.yaml", text);
  LoadOptions split = load_options(2);
  split.split_bytes = 8 * 1024;  // many parts
  LoadOptions whole = load_options(1);
  whole.split_bytes = std::size_t{1} << 40;
  const auto a = load_desired_state(file, split);
  const auto b = load_desired_state(file, whole);
  REQUIRE(a.state.bindings.size() == n);
  REQUIRE(b.state.bindings.size() == n);
  CHECK(all(a.diagnostics) == all(b.diagnostics));
  REQUIRE(a.diagnostics.size() == 1);
  CHECK(a.diagnostics[0].message == "duplicate device " + imei(2500) + "; first listed at " +
                                        b.state.location(b.state.bindings[2500]));
  CHECK(a.state.sources.size() == b.state.sources.size());
  for (std::size_t i = 0; i < n; ++i) {
    INFO(i);
    REQUIRE(a.state.bindings[i].device == b.state.bindings[i].device);
    REQUIRE(a.state.location(a.state.bindings[i]) == b.state.location(b.state.bindings[i]));
    REQUIRE(a.state.sources[a.state.bindings[i].source].ref ==
            b.state.sources[b.state.bindings[i].source].ref);
  }
}

TEST_CASE("a syntax error in a later part of a split file is reported at its real line",
          "[config][load]") {
  TempDir dir;
  std::string text = kDefaults;
  for (std::size_t i = 0; i < 2000; ++i) text += "  - deviceId: " + imei(i) + "\n";
  text += "  - deviceId: [broken\n";
  const std::uint32_t broken_line = 5 + 2000 + 1;
  for (std::size_t i = 2000; i < 2100; ++i) text += "  - deviceId: " + imei(i) + "\n";
  const auto file = dir.write("big.yaml", text);
  LoadOptions split = load_options(2);
  split.split_bytes = 4 * 1024;
  const auto r = load_desired_state(file, split);
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].message == "YAML syntax error: end of sequence flow not found");
  CHECK(r.diagnostics[0].line == broken_line + 1);
}

TEST_CASE("the checked-in test fleet loads with its sources shared", "[config][load]") {
  const std::string dir = std::string(THINGSYNC_TEST_DATA_DIR) + "/config/fleet";
  LoadOptions o = load_options();
  o.env = env_of({{"CREDENTIALS_DIRECTORY", "/run/credentials/thingsync"}});
  const auto r = load_desired_state(dir, o);
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  CHECK(r.state.files == std::vector<std::string>{dir + "/meters.yaml", dir + "/sensors/lora.yml"});
  REQUIRE(r.state.bindings.size() == 4);
  REQUIRE(r.state.sources.size() == 2);  // one fleet key, one env variable
  CHECK(r.state.sources[0].ref == "/run/credentials/thingsync/fleet-key");
  CHECK(r.state.location(r.state.bindings[0]) == dir + "/sensors/lora.yml:6:15");
}

// Found by fuzz/fuzz_desired_state, which loads every input whole and in parts: the numbering
// of sources depended on how the file was cut, and a part that ended inside a quoted value
// (which yaml-cpp accepted) hid a cut that must not be made.
TEST_CASE("a file loads the same, source numbers included, whole or in parts", "[config][load]") {
  TempDir dir;
  const std::string text = std::string(kSharedSources) +
                           "  - deviceId: imei:350266800610996\n"
                           "    password: {value: \"x\n"
                           "  - deviceId: imei:350266800610997 # \"}\n"
                           "  - deviceId: imei:350266800610998\n";
  for (const char* variant : {"closed", "open"}) {
    INFO(variant);
    // "open": the value of line 10 runs to line 11, over a place where the file may be cut.
    std::string t = text;
    if (std::string_view(variant) == "closed") t.replace(t.find("\"x\n"), 3, "\"x\"}\n");
    const auto file = dir.write(std::string(variant) + ".yaml", t);
    LoadOptions split = load_options(1);
    split.split_bytes = 1;  // as many parts as it takes
    LoadOptions whole = load_options(1);
    whole.split_bytes = std::size_t{1} << 40;
    const auto a = load_desired_state(file, split);
    const auto b = load_desired_state(file, whole);
    CHECK(all(a.diagnostics) == all(b.diagnostics));
    REQUIRE(a.state.bindings.size() == b.state.bindings.size());
    for (std::size_t i = 0; i < a.state.bindings.size(); ++i) {
      CHECK(a.state.bindings[i].source == b.state.bindings[i].source);
      CHECK(a.state.location(a.state.bindings[i]) == b.state.location(b.state.bindings[i]));
    }
    REQUIRE(a.state.sources.size() == b.state.sources.size());
    for (std::size_t i = 0; i < a.state.sources.size(); ++i) {
      CHECK(a.state.sources[i].ref == b.state.sources[i].ref);
      CHECK(a.state.sources[i].line == b.state.sources[i].line);
    }
  }
}

// Found by fuzz/fuzz_desired_state: the parts are cut at '\n', but a lone '\r' ends a line for
// YAML too, so a file the whole parse rejected was accepted in parts.
TEST_CASE("a file with a lone carriage return is accepted or rejected alike, whole or in parts",
          "[config][load]") {
  TempDir dir;
  // The fuzzer's input (fuzz/corpus/desired_state/regression-lone-cr-split.yaml).
  const std::string text("bindings:\r\n  -\r\x8a 93  e\xEF\xBB\xBF" "5or\r&a    env: A\r\n", 43);
  const auto file = dir.write("cr.yaml", text);
  LoadOptions split = load_options(1);
  split.split_bytes = 1;
  LoadOptions whole = load_options(1);
  whole.split_bytes = std::size_t{1} << 40;
  const auto a = load_desired_state(file, split);
  const auto b = load_desired_state(file, whole);
  CHECK(a.ok() == b.ok());
  CHECK(all(a.diagnostics) == all(b.diagnostics));
  CHECK(a.state.bindings.size() == b.state.bindings.size());
}

TEST_CASE("several paths load as one desired state: a device under two of them names both",
          "[config][load]") {
  TempDir dir;
  const auto a = dir.write("one/a.yaml", fleet({"imei:350266800610993", "imei:350266800610001"}));
  const auto b = dir.write("two/b.yaml", fleet({"imei:350266800610002",
                                                "\"urn:dev:IMEI:350266800610993:\""}));
  const auto r = load_desired_state(std::vector<fs::path>{a, b}, load_options());
  const std::string expected =
      b + ":7:15: error: duplicate device imei:350266800610993; first listed at " + a + ":6:15\n";
  CHECK(all(r.diagnostics) == expected);
  CHECK(r.state.files == std::vector<std::string>{a, b});
  CHECK(r.state.bindings.size() == 3);
  // Directories too, and exactly as one directory holding both files says it.
  const auto dirs = load_desired_state(
      std::vector<fs::path>{dir.path() / "one", dir.path() / "two"}, load_options());
  CHECK(all(dirs.diagnostics) == expected);
  CHECK(all(load_desired_state(dir.path(), load_options()).diagnostics) == expected);
  // The place first given is the one that counts.
  const auto reversed = load_desired_state(std::vector<fs::path>{b, a}, load_options());
  CHECK(all(reversed.diagnostics) ==
        a + ":6:15: error: duplicate device imei:350266800610993; first listed at " + b +
            ":7:15\n");
}

TEST_CASE("a file that two of the paths give is read once", "[config][load]") {
  TempDir dir;
  const auto a = dir.write("fleet/a.yaml", fleet({"imei:350266800610001"}));
  dir.write("fleet/b.yaml", fleet({"imei:350266800610002"}));
  const auto other_spelling = dir.path() / "fleet" / ".." / "fleet" / "a.yaml";
  const auto r = load_desired_state(
      std::vector<fs::path>{a, dir.path() / "fleet", other_spelling}, load_options());
  INFO(all(r.diagnostics));
  CHECK(r.ok());
  CHECK(r.state.files == std::vector<std::string>{a, dir.str() + "/fleet/b.yaml"});
  CHECK(r.state.bindings.size() == 2);
}

TEST_CASE("errors of every path are reported, a missing one among them", "[config][load]") {
  TempDir dir;
  const auto a = dir.write("a.yaml", fleet({"imei:1"}));
  const auto missing = dir.path() / "nope";
  fs::create_directories(dir.path() / "empty");
  const auto r = load_desired_state(std::vector<fs::path>{a, missing, dir.path() / "empty"},
                                    load_options());
  CHECK(all(r.diagnostics) ==
        a + ":6:15: error: invalid device ID 'imei:1': IMEI must have 15 or 16 digits, got 1 "
            "characters\n" +
            (dir.path() / "empty").string() +
            ": error: no *.yaml or *.yml files in the desired-state directory\n" +
            missing.string() + ": error: cannot read desired state: No such file or directory\n");
}
