// The fast YAML path against yaml-cpp: on every input it either declines or builds exactly the
// tree yaml-cpp builds (nodes, kinds, texts, places, parents, streamed lists, the items handed
// to the sink and their order), and yaml-cpp finds no error in what it takes.
#include "fast_yaml.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "thingsync/config/desired_state.hpp"
#include "yaml_paths.hpp"
#include "yaml_tree.hpp"

namespace thingsync::config::detail {
namespace {

namespace fs = std::filesystem;

// Compares both paths on `text`; records a disagreement in `failures`. Returns whether the
// fast path took the text.
bool compare(std::string_view text, std::vector<std::string>& failures) {
  testsupport::YamlComparison c = testsupport::compare_yaml_paths(text);
  if (!c.difference.empty()) failures.push_back(std::move(c.difference));
  return c.taken;
}

bool takes(std::string_view text) {
  std::vector<std::string> failures;
  const bool taken = compare(text, failures);
  CHECK(failures.empty());
  return taken;
}

struct Tally {
  std::size_t inputs = 0;
  std::size_t taken = 0;
  std::vector<std::string> failures;
  bool add(std::string_view text) {
    ++inputs;
    const bool t = compare(text, failures);
    taken += t ? 1 : 0;
    return t;
  }
  void check() const {
    INFO(failures.size() << " of " << inputs << " inputs differ; the first:\n"
                         << (failures.empty() ? std::string() : failures.front()));
    CHECK(failures.empty());
  }
};

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The string literals of a C++ source, adjacent ones joined ("a\n" "b\n" is one text), with
// their simple escapes undone: the YAML that the tests feed to the loader, among others.
std::vector<std::string> literals(std::string_view src) {
  std::vector<std::string> out;
  std::string cur;
  bool open = false;  // cur is a group that the next literal may extend
  auto flush = [&] {
    if (open) out.push_back(cur);
    cur.clear();
    open = false;
  };
  for (std::size_t i = 0; i < src.size();) {
    const char c = src[i];
    if (src.compare(i, 2, "//") == 0) {
      i = std::min(src.size(), src.find('\n', i));
    } else if (src.compare(i, 2, "/*") == 0) {
      i = std::min(src.size(), src.find("*/", i) + 2);
    } else if (c == '\'') {
      for (++i; i < src.size() && src[i] != '\''; ++i) i += src[i] == '\\' ? 1 : 0;
      ++i;
      flush();
    } else if (src.compare(i, 2, "R\"") == 0) {
      const std::size_t paren = src.find('(', i);
      if (paren == std::string_view::npos) break;
      const std::string end = ")" + std::string(src.substr(i + 2, paren - i - 2)) + "\"";
      const std::size_t stop = src.find(end, paren);
      if (stop == std::string_view::npos) break;
      cur += src.substr(paren + 1, stop - paren - 1);
      open = true;
      i = stop + end.size();
    } else if (c == '"') {
      for (++i; i < src.size() && src[i] != '"'; ++i) {
        if (src[i] != '\\' || i + 1 == src.size()) {
          cur += src[i];
          continue;
        }
        const char e = src[++i];
        cur += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? '\0' : e;
      }
      ++i;
      open = true;
    } else if (c == ' ' || c == '\n' || c == '\t') {
      ++i;
    } else {
      flush();
      ++i;
    }
  }
  flush();
  return out;
}

// A desired-state file as the benchmark and the big fleets write it: derive defaults, then
// `count` bindings; `style` varies the spelling the fast path must take.
std::string fleet(std::size_t count, int style) {
  std::string s;
  if (style == 3) s += "# generated\n---\n";
  s += "defaults:\n  password:\n    derive:\n      keyFile: ../../fleet-key\n";
  s += style == 2 ? "bindings: # all of them\n" : "bindings:\n";
  const std::string item = style == 1 ? "- " : "  - ";
  const std::string more = style == 1 ? "  " : "    ";
  for (std::size_t i = 0; i < count; ++i) {
    std::string digits = std::to_string(350000000000000ULL + i);
    switch (i % 5) {
      case 0:
        s += item + "deviceId: \"imei:" + digits + "\"\n";
        break;
      case 1:
        s += item + "deviceId: imei:" + digits + "\n";
        break;
      case 2:
        s += item + "deviceId: 'urn:dev:IMEI:" + digits + ":'  # quoted: it ends in ':'\n";
        break;
      case 3:
        s += item + "deviceId: deveui:70b3d5" + digits.substr(5) + "\n" + more + "password:\n" +
             more + "  file: /secrets/" + digits + ".pass\n";
        break;
      default:
        s += "\n" + item + "deviceId: \"imei:" + digits + "\"   \n" + more + "password:\n" + more +
             "  env: FLEET_KEY\n";
        break;
    }
  }
  return s;
}

std::string hex(std::uint64_t v, int digits) {
  std::string out(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0 && v != 0; --i, v >>= 4) {
    out[static_cast<std::size_t>(i)] = "0123456789abcdef"[v & 15];
  }
  return out;
}

// A file as bench/engine/daemon_bench.py's fleet_file writes it (fleet_bench.py's 1,000 files
// too), byte for byte: the sim's device IDs (UUIDs), quoted; `with_files`: ten bindings take a
// password file. If the fast path declined these, the benchmarks would measure yaml-cpp.
std::string bench_fleet_file(std::size_t count, bool with_files) {
  std::string s =
      "defaults:\n  password:\n    derive:\n      keyFile: ../../fleet-key\nbindings:\n";
  const std::size_t step = std::max<std::size_t>(1, count / 10);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t r = (i + 1) * 0x9E3779B97F4A7C15ULL;
    s += "  - deviceId: \"" + hex(i * 4099, 8) + "-" + hex(r >> 48, 4) + "-4" + hex(r >> 36, 3) +
         "-a" + hex(r >> 24, 3) + "-" + hex(r, 12) + "\"\n";
    if (with_files && i % step == 0 && i / step < 10) {
      s += "    password:\n      file: ../../pw/" + std::to_string(i / step) + ".pass\n";
    }
  }
  return s;
}

// A file as tests/e2e/fleet.cpp's Fleet::set_desired writes it: IMEIs, quoted, and a literal
// password for some of them.
std::string e2e_fleet_file(std::size_t count) {
  std::string s = "defaults:\n  password:\n    derive:\n      keyFile: ../fleet-key\nbindings:\n";
  for (std::size_t i = 0; i < count; ++i) {
    s += "  - deviceId: \"imei:" + std::to_string(350000000000000ULL + i) + "\"\n";
    if (i % 7 == 3) s += "    password:\n      value: \"Portal-Password-12345678\"\n";
  }
  return s;
}

// Checks that the fast path takes `text` (a fleet file), whole and cut into parts as
// desired_state.cpp's split_chunks cuts it: before an item line, each part parsed alone as a
// bare list placed by its line offset.
void check_fleet_taken(const std::string& text, Tally& tally) {
  CHECK(tally.add(text));
  std::vector<std::size_t> cuts;
  std::vector<std::uint32_t> lines;
  std::size_t line = 0;
  for (std::size_t pos = 0; pos < text.size(); ++line) {
    const bool item = text.compare(pos, 2, "- ") == 0 || text.compare(pos, 4, "  - ") == 0;
    if (item && line > 6 && line % 97 == 0) {
      cuts.push_back(pos);
      lines.push_back(static_cast<std::uint32_t>(line));
    }
    const std::size_t nl = text.find('\n', pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  REQUIRE(cuts.size() > 3);
  for (std::size_t c = 0; c + 1 < cuts.size(); ++c) {
    const std::string_view part = std::string_view(text).substr(cuts[c], cuts[c + 1] - cuts[c]);
    using testsupport::YamlRule;
    const auto f = testsupport::parse_yaml_path(true, part, YamlRule::kChunk, lines[c]);
    const auto s = testsupport::parse_yaml_path(false, part, YamlRule::kChunk, lines[c]);
    CHECK(f.taken);
    CHECK(s.ok);
    CHECK(f.log == s.log);
  }
}

TEST_CASE("the fast YAML path reads the examples, test data and fuzz seeds as yaml-cpp does",
          "[config][yaml]") {
  const fs::path root = THINGSYNC_SOURCE_DIR;
  Tally tally;
  std::size_t desired = 0;
  std::size_t desired_taken = 0;
  for (const char* dir :
       {"examples", "tests/data", "tests/ops", "fuzz/corpus/desired_state", "fuzz/corpus/config"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      if (!e.is_regular_file()) continue;
      const std::string ext = e.path().extension().string();
      const bool yaml = ext == ".yaml" || ext == ".yml";
      if (!yaml && std::string(dir).rfind("fuzz", 0) != 0) continue;
      const std::string text = read(e.path());
      const bool taken = tally.add(text);
      if (yaml && text.find("deviceId") != std::string::npos) {
        ++desired;
        desired_taken += taken ? 1 : 0;
      }
    }
  }
  // The YAML written inside the tests.
  for (const auto& e : fs::recursive_directory_iterator(root / "tests")) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) continue;
    for (const std::string& text : literals(read(e.path()))) {
      if (text.find('\n') != std::string::npos || text.find(": ") != std::string::npos) {
        tally.add(text);
      }
    }
  }
  tally.check();
  CHECK(tally.inputs > 1000);
  // The shipped desired-state examples are plain block YAML.
  CHECK(desired >= 5);
  CHECK(desired_taken * 2 > desired);
}

TEST_CASE("the fast YAML path reads tricky hand-written inputs as yaml-cpp does",
          "[config][yaml]") {
  const std::vector<std::string> cases = {
      "",
      "\n\n",
      "# only a comment",
      "# only a comment\n  # another\n",
      "---\n",
      "---",
      "--- # a comment\n",
      "---\nbindings:\n",
      "--- bindings:\n",
      "bindings:\n---\n",
      "bindings:\n...\n",
      "bindings:\n",
      "bindings:",
      "bindings:   \n",
      "bindings: # none yet\n",
      "bindings: ~\n",
      "bindings: null\n",
      "bindings: Null # x\n",
      "bindings: NULL\n",
      "bindings: nULL\n",
      "bindings: []\n",
      "bindings: {}\n",
      "bindings: ''\n",
      "bindings: \"\"\n",
      "bindings:\n  - deviceId: imei:350266800610993\n",
      "bindings:\n- deviceId: imei:350266800610993\n- deviceId: imei:350266800610994\n",
      "bindings:\n  - deviceId: imei:350266800610993",
      "bindings:\n  - deviceId: imei:350266800610993   \n",
      "bindings:\n  - deviceId: imei:350266800610993 # a comment\n",
      "bindings:\n  - deviceId: imei:350266800610993# not a comment\n",
      "bindings:\n  - deviceId: \"imei:350266800610993\"# a comment\n",
      "bindings:\n  - deviceId: \"imei:350266800610993\"x\n",
      "bindings:\n  - deviceId: 'imei:350266800610993' \n",
      "bindings:\n  - deviceId: 'it''s'\n",
      "bindings:\n  - deviceId: ''''\n",
      "bindings:\n  - deviceId: \"a\\\"b\\\\c\\/d\\te\\n\"\n",
      "bindings:\n  - deviceId: \"a\\x41\"\n",
      "bindings:\n  - deviceId: \"a\\u00e9\"\n",
      "bindings:\n  - deviceId: \"a\\q\"\n",
      "bindings:\n  - deviceId: \"a\\\n    b\"\n",
      "bindings:\n  - deviceId: \"open\n",
      "bindings:\n  - deviceId: 'open\n",
      "bindings:\n  - deviceId: \"two\n    lines\"\n",
      "bindings:\n  - deviceId: urn:dev:IMEI:350266800610993:\n",
      "bindings:\n  - urn:dev:IMEI:350266800610993:\n  - deviceId: x\n",
      "bindings:\n  - urn:dev:IMEI:350266800610993:\n",
      "bindings:\n  - urn:dev:IMEI:350266800610993:",
      "bindings:\n  - deviceId: \"urn:dev:IMEI:350266800610993:\"\n",
      "bindings:\n  - deviceId: a: b\n",
      "bindings:\n  - deviceId: a:b\n",
      "bindings:\n  - deviceId: http://x/y?z=1#frag\n",
      "bindings:\n  - deviceId: a #b: c\n",
      "bindings:\n  - deviceId:\n",
      "bindings:\n  - deviceId:\n  - deviceId: x\n",
      "bindings:\n  - deviceId:\n    password:\n      env: X\n",
      "bindings:\n  - deviceId:\n      x\n",
      "bindings:\n  - deviceId: x\n      y\n",
      "bindings:\n  - deviceId: x\n\n      y\n",
      "bindings:\n  - deviceId: x\n    # comment deeper\n  - deviceId: y\n",
      "bindings:\n  - deviceId: x\n        # comment much deeper\n  - deviceId: y\n",
      "bindings:\n  - deviceId: x\n# comment at 0\n  - deviceId: y\n",
      "bindings:\n  - deviceId: x\n\n\n  - deviceId: y\n\n",
      "bindings:\n  - deviceId: x\n   password: y\n",
      "bindings:\n  - deviceId: x\n  password: y\n",
      "bindings:\n  - deviceId: x\n     password: y\n",
      "bindings:\n  - deviceId: x\n    password: y\n",
      "bindings:\n  -   deviceId: x\n      password: y\n",
      "bindings:\n  -\n    deviceId: x\n",
      "bindings:\n  -\n  - \n  -",
      "bindings:\n  - # empty\n  - x\n",
      "bindings:\n  -\n",
      "bindings:\n  -",
      "bindings:\n  - x\n",
      "bindings:\n  - 'x'\n",
      "bindings:\n  - x\n    y\n",
      "bindings:\n  - x\n   y\n",
      "bindings:\n  - ~\n",
      "bindings:\n  - - x\n",
      "bindings:\n  - -x\n",
      "bindings:\n  - ? x\n",
      "bindings:\n  - ?x: 1\n",
      "bindings:\n  - :x: 1\n",
      "bindings:\n  - : x\n",
      "bindings:\n  - &a deviceId: x\n  - *a\n",
      "bindings:\n  - deviceId: &id imei:350266800610993\n",
      "bindings:\n  - deviceId: !!str 350266800610993\n",
      "bindings:\n  - {deviceId: x}\n",
      "bindings:\n  - [x]\n",
      "bindings:\n  - deviceId: |\n      x\n",
      "bindings:\n  - deviceId: >\n      x\n",
      "bindings:\n  - deviceId: x\n  - deviceId: x\n",
      "bindings:\n  - deviceId: x\n    deviceId: y\n",
      "bindings:\n\t- deviceId: x\n",
      "bindings:\n  - deviceId:\tx\n",
      "bindings:\r\n  - deviceId: x\r\n",
      "bindings:\n  - deviceId: x\r\n",
      "bindings:\n  - deviceId: a\rb\n",
      "\xEF\xBB\xBF"
      "bindings:\n",
      "bindings:\n  - deviceId: caf\xC3\xA9\n",
      "bindings:\n  - deviceId: \"caf\xC3\xA9\"\n",
      "bindings:\n  - deviceId: x\x04y\n",
      "bindings: x\nbindings: y\n",
      "defaults:\nbindings:\n",
      "defaults:\n\nbindings:\n",
      "defaults: # x\n# y\nbindings:",
      "defaults:\n  password:\n    derive:\n      keyFile: ../../fleet-key\nbindings:\n  - "
      "deviceId: "
      "x\n",
      "defaults:\n  password:\n    derive:\n      keyFile:\nbindings:\n",
      "defaults:\n  password:\n    derive:\n      keyFile:\n",
      "defaults:\n  password:\n    derive:\n      keyFile:",
      "defaults:\n  password:\n    derive:\n    keyFile: x\n",
      "defaults:\n  password:\n  derive:\n",
      "defaults:\n    password:\n      env: X\n  bindings:\n",
      "defaults:\n  - x\nbindings:\n",
      "defaults: x\n  y: z\n",
      "defaults:\n  password: {env: X}\n",
      "defaults:\n- password: x\n- y\nbindings:\n- deviceId: z\n",
      "a:\n- b:\n  - c\n  - d\n  e: f\ng: h\n",
      "a:\n- b\nc: d\n- e\n",
      "a:\n  - b\n  c: d\n",
      "a:\n  b: c\n d: e\n",
      "a:\n  b: c\n    d: e\n",
      "a: b\n- c\n",
      "a: b\n  c: d\n",
      "a:\n  b:\n    c:\n      d:\n        e:\n          f: g\n  h: i\n",
      "  a: 1\n  b: 2\n",
      "  a: 1\nb: 2\n",
      "  - a\n  - b\n",
      "  - a\n- b\n",
      "- a\n- b\nc: d\n",
      "a b: c d\n",
      "a : b\n",
      "a  :   b   \n",
      "\"a\": b\n",
      "\"a\" : b\n",
      "'a': b\n",
      "\"a\":b\n",
      "a:b: c\n",
      "a:: b\n",
      "a:\n",
      "a",
      "a\n",
      "'a'\n",
      "\"a\" # c\n",
      "a\nb\n",
      "a # c\n",
      "~\n",
      "null\n",
      "- \n",
      "-\n",
      "-",
      "- - - x\n",
      ":\n",
      ": a\n",
      "? a\n: b\n",
      "%YAML 1.2\n---\na: b\n",
      "@a: b\n",
      "`a`: b\n",
      "a: @b\n",
      "a: b @c\n",
      "a: [b\n",
      "a: b]\n",
      "a: b, c\n",
      "a: {b\n",
      "a: -\n",
      "a: - b\n",
      "a: -b\n",
      "a: ? b\n",
      "a: ?b\n",
      "a: :b\n",
      "a: : b\n",
      "a: yes\n",
      "a: 0x1F\n",
      "a: 1e3\n",
      "a: .inf\n",
      "a: 'null'\n",
      "a: \"~\"\n",
      "null: a\n",
      "~: a\n",
      "a: #\n",
      "a: b #\n",
      "a: b#\n",
      "a: b  #  c  # d\n",
      "#a: b\n",
      " #a: b\n",
      "a: b\n#c: d\n",
      "a: b\n  #c: d\n",
      "a: b\n\n",
      "a: b\n \n  \n",
      "a: ---\n",
      "--- a\n",
      "---a: b\n",
      "---: b\n",
      "...: b\n",
      "...\n",
      "a: b\n--- \n",
      "a: b\n---x: c\n",
      "a: b\n  ---\n",
      "x: " + std::string(1100, 'k') + "\n",
      std::string(1100, 'k') + ": x\n",
      std::string(990, 'k') + ": x\n",
      "'" + std::string(1100, 'k') + "': x\n",
      std::string(200, ' ') + "a: b\n",
  };
  Tally tally;
  for (const auto& text : cases) tally.add(text);
  tally.check();

  // What the fast path must take (or the speed-up is gone for ordinary files) ...
  for (const char* text : {
           "",
           "# only a comment\n",
           "---\nbindings:\n",
           "bindings:\n",
           "bindings:\n  - deviceId: \"imei:350266800610993\" # c\n",
           "bindings:\n- deviceId: imei:350266800610993\n",
           "bindings:\n  - deviceId: 'it''s'\n",
           "bindings:\n  - urn:dev:IMEI:350266800610993:\n",
           "bindings:\n  - deviceId:\n  - x\n",
           "defaults:\n  password:\n    derive:\n      keyFile: ../../fleet-key\nbindings:\n",
       }) {
    INFO(text);
    CHECK(takes(text));
  }
  // ... and what it must leave to yaml-cpp.
  for (const char* text : {
           "bindings: []\n",
           "bindings:\n  - &a deviceId: x\n",
           "bindings:\n  - *a\n",
           "bindings:\n  - deviceId: !!str 1\n",
           "bindings:\n  - deviceId: |\n      x\n",
           "bindings:\n  - deviceId: x\n      y\n",
           "bindings:\n\t- deviceId: x\n",
           "bindings:\r\n",
           "\xEF\xBB\xBF"
           "bindings:\n",
           "bindings:\n  - deviceId: urn:dev:IMEI:350266800610993:\n",
           "bindings:\n  - deviceId: \"a\\u00e9\"\n",
           "bindings:\n  - deviceId: \"open\n",
           "a: b\n---\nc: d\n",
       }) {
    INFO(text);
    CHECK_FALSE(takes(text));
  }
}

TEST_CASE("the fast YAML path takes generated fleets, whole and in parts, as yaml-cpp reads them",
          "[config][yaml]") {
  Tally tally;
  for (int style = 0; style < 4; ++style) {
    INFO("style " << style);
    check_fleet_taken(fleet(400, style), tally);
  }
  tally.check();
}

TEST_CASE("the fast YAML path takes the fleet files the benchmarks and e2e tests write",
          "[config][yaml]") {
  Tally tally;
  SECTION("bench/engine/daemon_bench.py, derived passwords") {
    check_fleet_taken(bench_fleet_file(1000, false), tally);
  }
  SECTION("bench/engine/daemon_bench.py, some password files") {
    check_fleet_taken(bench_fleet_file(1000, true), tally);
  }
  SECTION("tests/e2e/fleet.cpp, some literal passwords") {
    check_fleet_taken(e2e_fleet_file(400), tally);
  }
  tally.check();
}

// The fast path reads a file up to its first fault and declines; yaml-cpp then reads it as it
// did before the fast path: the same message, file, line and column.
TEST_CASE("a syntax error deep in a fleet file is reported at its place, as before",
          "[config][yaml]") {
  const std::string head = bench_fleet_file(700, false);  // lines 1 to 705
  const std::string tail = "  - deviceId: \"imei:350266800610994\"\n";
  const std::string at = "fleet/part-7.yaml:";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"   - deviceId: \"imei:350266800610993\"\n",
       "706:4: error: YAML syntax error: end of sequence not found"},
      {" - deviceId: \"imei:350266800610993\"\n",
       "706:2: error: YAML syntax error: end of map not found"},
      {"  - deviceId: \"imei:350266800610993\"x\n",
       "706:37: error: YAML syntax error: end of map not found"},
      {"  - deviceId: [imei:350266800610993\n",
       "707:13: error: YAML syntax error: end of sequence flow not found"},
      {"  - deviceId: urn:dev:imei:350266800610993:\n",
       "706:43: error: YAML syntax error: illegal map value; quote device IDs that end in ':' "
       "(write deviceId: \"urn:dev:IMEI:...:\")"},
  };
  for (const auto& [bad, message] : cases) {
    const std::string text = head + bad + tail;
    INFO(bad);
    CHECK_FALSE(takes(text));
    const auto r = parse_desired_state_file(text, "fleet/part-7.yaml", {});
    REQUIRE(r.diagnostics.size() == 1);
    CHECK(r.diagnostics[0].to_string() == at + message);
  }
}

// Random block documents: maps, lists (indented or at their key's column, with maps on the
// item's line), scalars of every quoting from a pool of awkward ones, empty values, comments,
// blank lines, trailing spaces, and ends with or without a line break.
class DocumentMaker {
 public:
  explicit DocumentMaker(unsigned seed) : rng_(seed) {}

  std::string make() {
    out_.clear();
    if (pick(6) == 0) out_ += "---\n";
    if (pick(2) == 0) {
      map(0, false, 0);
    } else {
      list(pick(3) == 0 ? 2 : 0, 0);
    }
    switch (pick(6)) {
      case 0:
        if (!out_.empty() && out_.back() == '\n') out_.pop_back();
        break;
      case 1:
        out_ += std::string(pick(5), ' ');
        break;
      case 2:
        out_ += "# end";
        break;
      default:
        break;
    }
    return out_;
  }

 private:
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  template <std::size_t N>
  const char* any(const char* const (&pool)[N]) {
    return pool[pick(N)];
  }

  void filler(std::size_t col) {
    switch (pick(10)) {
      case 0:
        out_ += "\n";
        break;
      case 1:
        out_ += std::string(pick(col + 4), ' ') + "# note\n";
        break;
      case 2:
        out_ += std::string(pick(4), ' ') + "\n";
        break;
      default:
        break;
    }
  }
  void line_end() {
    static const char* const kEnds[] = {"",    "",     "", " ", "   ", " # c", "# not a comment",
                                        "  #", " #: x"};
    out_ += any(kEnds);
    out_ += '\n';
  }
  void scalar() {
    static const char* const kScalars[] = {"x",
                                           "imei:350266800610993",
                                           "\"imei:350266800610993\"",
                                           "'imei:350266800610993'",
                                           "urn:dev:IMEI:350266800610993:",
                                           "\"urn:dev:IMEI:350266800610993:\"",
                                           "~",
                                           "null",
                                           "Null",
                                           "NULL",
                                           "nULL",
                                           "''",
                                           "\"\"",
                                           "'it''s'",
                                           "\"a\\\"b\\\\\"",
                                           "\"tab\\there\"",
                                           "\"\\x41\"",
                                           "a b  c",
                                           "a:b",
                                           "a#b",
                                           "-a",
                                           "?a",
                                           ":a",
                                           "a,b]",
                                           "http://h:1/p?q#f",
                                           "'s'#c",
                                           "\"d\" ",
                                           "yes",
                                           "-1",
                                           ".5",
                                           "a: b",
                                           "- x",
                                           "&a x",
                                           "*a",
                                           "!t x",
                                           "[x]",
                                           "{x: y}",
                                           "|",
                                           ">",
                                           "%x",
                                           "@x",
                                           "`x`",
                                           "'open",
                                           "\"open"};
    out_ += any(kScalars);
  }
  void key() {
    static const char* const kKeys[] = {
        "deviceId", "password", "bindings", "defaults", "a b", "a",   "\"q\"", "'s'", "\"q\" ",
        "null",     "~",        "k:x",      "-k",       "x#y", "? k", "\"\"",  "d"};
    out_ += any(kKeys);
  }

  // A map at column `col`; `inline_first`: its first key goes on the current line.
  void map(std::size_t col, bool inline_first, int depth) {
    const std::size_t n = 1 + pick(4);
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0 || !inline_first) {
        filler(col);
        out_ += std::string(col, ' ');
      }
      key();
      out_ += pick(8) == 0 ? " :" : ":";
      value(col, depth);
    }
  }
  void value(std::size_t col, int depth) {
    const std::size_t what = depth > 4 ? pick(2) : pick(5);
    if (what == 0) {  // a scalar
      out_ += std::string(1 + pick(2), ' ');
      scalar();
      line_end();
    } else if (what == 1) {  // empty
      line_end();
    } else if (what == 2) {
      line_end();
      map(col + 1 + pick(4), false, depth + 1);
    } else {
      line_end();
      list(pick(3) == 0 ? col : col + 1 + pick(3), depth + 1);
    }
  }
  void list(std::size_t col, int depth) {
    const std::size_t n = 1 + pick(4);
    for (std::size_t i = 0; i < n; ++i) {
      filler(col);
      out_ += std::string(col, ' ') + "-";
      const std::size_t what = depth > 4 ? pick(2) : pick(5);
      if (what == 0) {
        out_ += std::string(1 + pick(2), ' ');
        scalar();
        line_end();
      } else if (what == 1) {
        line_end();
      } else if (what == 2) {
        const std::size_t gap = 1 + pick(3);
        out_ += std::string(gap, ' ');
        map(col + 1 + gap, true, depth + 1);
      } else if (what == 3) {
        line_end();
        map(col + 1 + pick(4), false, depth + 1);
      } else {
        line_end();
        list(col + 1 + pick(3), depth + 1);
      }
    }
  }

  std::mt19937 rng_;
  std::string out_;
};

TEST_CASE("the fast YAML path agrees with yaml-cpp on generated documents", "[config][yaml]") {
  DocumentMaker maker(18);
  Tally tally;
  for (int i = 0; i < 4000; ++i) tally.add(maker.make());
  tally.check();
  CHECK(tally.taken * 10 > tally.inputs);
}

TEST_CASE("the fast YAML path agrees with yaml-cpp on mutated inputs", "[config][yaml]") {
  const std::vector<std::string> seeds = {
      fleet(6, 0),
      fleet(6, 1),
      fleet(6, 3),
      "defaults:\n  password:\n    env: FLEET\nbindings:\n  - deviceId: 'a''b' # c\n"
      "  - urn:dev:IMEI:350266800610993:\n  -\n  - deviceId:\n    password: ~\n",
      "a:\n- b: \"c\\n\"\n  d:\n  - e\n-  f\n",
  };
  // Characters that change the structure: indentation, keys, items, comments, quotes.
  const std::string alphabet = " :-#'\"\n\\~x&!|[{";
  Tally tally;
  std::size_t n = 0;
  for (const auto& seed : seeds) {
    for (std::size_t i = 0; i <= seed.size(); ++i) {
      if (i < seed.size()) tally.add(seed.substr(0, i) + seed.substr(i + 1));  // delete
      for (const char c : alphabet) {
        if (++n % 3 != 0) continue;  // a third of the insertions: enough, and quick
        tally.add(seed.substr(0, i) + c + seed.substr(i));
      }
      tally.add(seed.substr(0, i));  // truncated
    }
  }
  tally.check();
  CHECK(tally.taken * 4 > tally.inputs);  // the fast path still takes many of them
}

}  // namespace
}  // namespace thingsync::config::detail
