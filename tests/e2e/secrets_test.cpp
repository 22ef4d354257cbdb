// Secret files end to end, with the real binary: a password or key file that is a device, a
// FIFO or far too large is refused at once and at its place (validate, plan), and a source
// broken for a whole fleet is one error line, not one per binding.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "fleet.hpp"
#include "support.hpp"

using thingsync::e2e::Fleet;
using thingsync::e2e::imeis;
using thingsync::testsupport::Process;
using thingsync::testsupport::Sim;
using thingsync::testsupport::TempDir;
using thingsync::testsupport::write_file;

namespace {

constexpr auto kPrompt = std::chrono::seconds(10);  // "at once", with room for a loaded machine

// A desired-state file of one binding whose password is `source` (at line 3, column 15).
std::string one_binding(const std::string& source) {
  return "bindings:\n  - deviceId: imei:350266800610993\n    password: " + source + "\n";
}

// `n` bindings that take the derive default with `key_file` (the source at line 3, column 5).
std::string derive_fleet(const std::string& key_file, int n) {
  std::string y =
      "defaults:\n  password:\n    derive:\n      keyFile: " + key_file + "\nbindings:\n";
  for (const auto& d : imeis(0, n)) y += "  - deviceId: " + d + "\n";
  return y;
}

// The lines of `text` that contain `part`.
std::vector<std::string> lines_with(const std::string& text, const std::string& part) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (line.find(part) != std::string::npos) out.push_back(std::move(line));
    pos = end + 1;
  }
  return out;
}

struct Ran {
  int code = -1;
  std::string out, err;
};

// Runs `argv` to its end; the test fails (and the process is killed) when it is still running
// after `timeout`.
Ran run_within(std::vector<std::string> argv, std::chrono::seconds timeout) {
  Process p(std::move(argv));
  const auto code = p.wait(timeout);
  INFO(p.out() << p.err().substr(0, 2000));
  REQUIRE(code.has_value());
  return {*code, p.out(), p.err()};
}

// `thingsync validate file`, with its peak memory when GNU time is installed to measure it.
std::pair<Ran, std::optional<long>> validate_measured(const std::filesystem::path& file) {
  const bool timed = ::access("/usr/bin/time", X_OK) == 0;
  std::vector<std::string> argv;
  if (timed) argv = {"/usr/bin/time", "-f", "max_rss_kb=%M"};
  argv.insert(argv.end(), {THINGSYNC_PATH, "validate", file.string()});
  Ran r = run_within(std::move(argv), std::chrono::seconds(60));
  std::smatch match;
  if (!timed || !std::regex_search(r.err, match, std::regex("max_rss_kb=([0-9]+)"))) {
    return {std::move(r), std::nullopt};
  }
  const long kb = std::stol(match[1]);
  return {std::move(r), kb};
}

}  // namespace

TEST_CASE("validate refuses /dev/zero as a password file at once, at its place", "[e2e][secrets]") {
  TempDir dir("thingsync-secrets");
  const auto file = dir / "fleet.yaml";
  write_file(file, one_binding("{file: /dev/zero}"));
  // Before the fix: it read /dev/zero until memory ran out.
  const Ran r = run_within({THINGSYNC_PATH, "validate", file.string()}, kPrompt);
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK_THAT(r.err,
             Catch::Contains(file.string() + ":3:15: error: password file /dev/zero is a character "
                                             "device, not a regular file; used by 1 binding"));
  CHECK_THAT(r.out, Catch::Contains("invalid: 1 bindings in 1 files"));
}

TEST_CASE("validate and plan refuse a FIFO as a password file without waiting for a writer",
          "[e2e][secrets]") {
  Sim sim;
  Fleet fleet(sim);
  const auto fifo = fleet.dir() / "pw.fifo";
  const auto file = fleet.desired_dir() / "fleet.yaml";
  // Written before the FIFO exists: the audit resolves the passwords of every YAML it is given.
  write_file(file, one_binding("{file: ../pw.fifo}"));
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string expected = file.string() + ":3:15: error: password file " + fifo.string() +
                               " is a FIFO (named pipe), not a regular file; used by 1 binding";
  // Before the fix: both blocked in open() for good.
  const Ran validated = run_within({THINGSYNC_PATH, "validate", file.string()}, kPrompt);
  CHECK(validated.code == 1);
  CHECK_THAT(validated.err, Catch::Contains(expected));
  const Ran planned =
      run_within({THINGSYNC_PATH, "plan", "--config", fleet.config().string()}, kPrompt);
  CHECK(planned.code == 1);
  CHECK_THAT(planned.err, Catch::Contains(expected));
}

TEST_CASE("validate refuses a 64 MiB password file by its size, without reading it",
          "[e2e][secrets]") {
  TempDir dir("thingsync-secrets");
  const auto small = dir / "small.yaml";
  const auto big = dir / "big.yaml";
  write_file(dir / "small.pass", "Correct-Horse-Battery-9-Staple\n");
  write_file(small, one_binding("{file: small.pass}"));
  write_file(big, one_binding("{file: big.pass}"));
  // 64 MiB of file (sparse: it costs no disk, but a read of it costs 64 MiB of memory).
  write_file(dir / "big.pass", "");
  REQUIRE(::truncate((dir / "big.pass").c_str(), off_t{64} << 20) == 0);

  const auto [baseline, baseline_kb] = validate_measured(small);
  INFO(baseline.err);
  REQUIRE(baseline.code == 0);
  const auto [refused, refused_kb] = validate_measured(big);
  INFO(refused.err);
  CHECK(refused.code == 1);
  CHECK_THAT(
      refused.err,
      Catch::Contains(big.string() + ":3:15: error: password file " + (dir / "big.pass").string() +
                      " is 67108864 bytes, 67104768 bytes over the limit of 4096 bytes; "
                      "used by 1 binding"));
  if (baseline_kb && refused_kb) {
    // Reading the file would add at least 64 MiB.
    CHECK(*refused_kb < *baseline_kb + 16 * 1024);
  } else {
    WARN("no /usr/bin/time: peak memory not checked, only the message");
  }
}

TEST_CASE("a missing key file of 10,000 bindings is one error line naming them all",
          "[e2e][secrets]") {
  Sim sim;
  Fleet fleet(sim);
  const auto file = fleet.desired_dir() / "fleet.yaml";
  const auto key = fleet.dir() / "missing-key";
  write_file(file, derive_fleet("../missing-key", 10000));
  const std::string expected = file.string() + ":3:5: error: cannot read fleet key file " +
                               key.string() + ": No such file or directory; used by 10000 bindings";

  const Ran validated =
      run_within({THINGSYNC_PATH, "validate", file.string()}, std::chrono::seconds(60));
  INFO(validated.out << validated.err.substr(0, 2000));
  CHECK(validated.code == 1);
  CHECK(lines_with(validated.err, ": error: ") == std::vector<std::string>{expected});
  CHECK_THAT(validated.out, Catch::Contains("invalid: 10000 bindings in 1 files"));
  CHECK_THAT(validated.out, Catch::Contains("; 1 errors, 0 warnings"));

  // plan fingerprints every binding: the same one line, not one per binding.
  const auto plan = fleet.run({"plan"});
  INFO(plan.out << plan.err.substr(0, 2000));
  CHECK(plan.code == 1);
  CHECK(lines_with(plan.err, key.string()) == std::vector<std::string>{expected});
}

TEST_CASE("a FIFO as the API token file is refused without waiting for a writer",
          "[e2e][secrets]") {
  Sim sim;
  Fleet fleet(sim);
  fleet.set_desired(imeis(1, 3));
  const auto token = fleet.dir() / "api-token";
  std::filesystem::remove(token);
  REQUIRE(::mkfifo(token.c_str(), 0600) == 0);
  // Before the fix: plan blocked in the token file's open() for good.
  const Ran planned =
      run_within({THINGSYNC_PATH, "plan", "--config", fleet.config().string()}, kPrompt);
  CHECK(planned.code == 1);
  CHECK_THAT(planned.err, Catch::Contains("is a FIFO (named pipe), not a regular file"));
}
