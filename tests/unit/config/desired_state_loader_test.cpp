#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "thingsync/config/desired_state.hpp"

using thingsync::config::DesiredStateLoader;
using thingsync::config::load_desired_state;
using thingsync::config::LoadResult;
using thingsync::config::ReloadResult;
using thingsync::config::to_string;
using thingsync::config::test::all;
using thingsync::config::test::fleet;
using thingsync::config::test::kDefaults;
using thingsync::config::test::load_options;
using thingsync::config::test::TempDir;

namespace fs = std::filesystem;

namespace {

/// Everything a load result holds, one fact a line, so that a mismatch shows where it is.
std::string dump(const LoadResult& r) {
  std::string s;
  for (const auto& f : r.state.files) s += "file " + f + "\n";
  for (const auto& src : r.state.sources) {
    s += "source " + std::string(to_string(src.kind)) + " " + src.ref + " " + src.value.reveal() +
         " @" + std::to_string(src.file) + ":" + std::to_string(src.line) + ":" +
         std::to_string(src.column) + "\n";
  }
  for (const auto& e : r.state.bindings) {
    s += "binding " + e.device.canonical() + " source=" + std::to_string(e.source) + " @" +
         std::to_string(e.file) + ":" + std::to_string(e.line) + ":" + std::to_string(e.column) +
         "\n";
  }
  return s + all(r.diagnostics);
}

/// The reload's result is exactly what a fresh one-shot load of the tree gives now.
void check_fresh(const ReloadResult& r, const fs::path& root) {
  CHECK(dump(r.result) == dump(load_desired_state(root, load_options())));
}

std::vector<std::string> affected(const ReloadResult& r) {
  std::vector<std::string> v;
  for (const auto& d : r.affected) v.push_back(d.canonical());
  return v;
}

using Names = std::vector<std::string>;

/// device -> what its entry says (source content and location), for comparing two results.
std::map<std::string, std::string> entries_of(const LoadResult& r) {
  std::map<std::string, std::string> m;
  for (const auto& e : r.state.bindings) {
    const auto& src = r.state.sources[e.source];
    m[e.device.canonical()] = std::string(to_string(src.kind)) + " " + src.ref + " " +
                              src.value.reveal() + " @" + r.state.location(e);
  }
  return m;
}

}  // namespace

TEST_CASE("a loader's first load equals the one-shot load", "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001", "imei:350266800610002"}));
  dir.write("sub/b.yml",
            "defaults:\n  password:\n    env: FLEET_PW\nbindings:\n"
            "  - deviceId: imei:350266800610003\n"
            "  - deviceId: imei:350266800610001\n");  // a duplicate of a.yaml's
  DesiredStateLoader loader(dir.path(), load_options());
  const auto r = loader.load_all();
  CHECK(r.full);
  CHECK(r.files_parsed == 2);
  CHECK(r.affected.empty());
  CHECK_FALSE(r.result.ok());
  check_fresh(r, dir.path());
}

TEST_CASE("a reload of one modified file parses only it and equals a fresh load",
          "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001", "imei:350266800610002"}));
  const auto b = dir.write("b.yaml", fleet({"imei:350266800610003", "imei:350266800610004"}));
  dir.write("c.yaml",
            "defaults:\n  password:\n    env: C_PW\nbindings:\n"
            "  - deviceId: imei:350266800610005\n");
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE(loader.load_all().result.ok());
  // One device swapped for another, one given its own source (which shifts c.yaml's source).
  dir.write("b.yaml", std::string(kDefaults) +
                          "  - deviceId: imei:350266800610004\n"
                          "    password:\n      file: b4.pass\n"
                          "  - deviceId: imei:350266800610006\n");
  const auto r = loader.reload({b});
  CHECK_FALSE(r.full);
  CHECK(r.files_parsed == 1);
  INFO(all(r.result.diagnostics));
  CHECK(r.result.ok());
  check_fresh(r, dir.path());
  CHECK(affected(r) ==
        Names{"imei:350266800610003", "imei:350266800610004", "imei:350266800610006"});
  REQUIRE(r.result.state.sources.size() == 3);
  CHECK(r.result.state.sources[1].ref == dir.str() + "/b4.pass");
}

TEST_CASE("an edit that keeps a file's devices (passwords changed) equals a fresh load",
          "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001", "imei:350266800610003"}));
  const auto b = dir.write("b.yaml", fleet({"imei:350266800610002", "imei:350266800610004",
                                            "imei:350266800610001"}));  // a duplicate
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE_FALSE(loader.load_all().result.ok());
  dir.write("b.yaml", std::string(kDefaults) +
                          "  - deviceId: imei:350266800610002\n"
                          "    password:\n      env: PW_2\n"
                          "  - deviceId: imei:350266800610004\n"
                          "  - deviceId: imei:350266800610001\n"
                          "    password:\n      env: PW_1\n");
  auto r = loader.reload({b});
  CHECK(r.files_parsed == 1);
  check_fresh(r, dir.path());
  // The same devices in another order: other lines, other places.
  dir.write("b.yaml",
            fleet({"imei:350266800610001", "imei:350266800610004", "imei:350266800610002"}));
  r = loader.reload({b});
  check_fresh(r, dir.path());
  CHECK(affected(r) ==
        Names{"imei:350266800610001", "imei:350266800610002", "imei:350266800610004"});
}

TEST_CASE("a reload follows added, deleted and renamed files", "[config][loader]") {
  TempDir dir;
  const auto a = dir.write("a.yaml", fleet({"imei:350266800610001"}));
  dir.write("m.yaml", fleet({"imei:350266800610002"}));
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE(loader.load_all().result.ok());

  SECTION("added") {
    const auto n = dir.write("n/new.yaml", fleet({"imei:350266800610003"}));
    const auto r = loader.reload({n});
    CHECK(r.files_parsed == 1);
    CHECK(r.result.state.files.size() == 3);
    check_fresh(r, dir.path());
    CHECK(affected(r) == Names{"imei:350266800610003"});
  }
  SECTION("deleted") {
    fs::remove(a);
    const auto r = loader.reload({a});
    CHECK(r.files_parsed == 0);
    CHECK(r.result.state.files == Names{dir.str() + "/m.yaml"});
    check_fresh(r, dir.path());
    CHECK(affected(r) == Names{"imei:350266800610001"});
  }
  SECTION("renamed, as a watcher reports it: the old name and the new one") {
    const auto z = (dir.path() / "z.yaml").string();
    fs::rename(a, z);
    const auto r = loader.reload({a, z});
    CHECK(r.files_parsed == 1);
    CHECK(r.result.state.files == Names{dir.str() + "/m.yaml", z});
    check_fresh(r, dir.path());
    CHECK(affected(r) == Names{"imei:350266800610001"});
  }
  SECTION("an editor's save: write a temp file, rename it over the original") {
    const auto tmp = dir.write(".a.yaml.swp", fleet({"imei:350266800610009"}));
    CHECK(loader.reload({tmp}).files_parsed == 0);  // hidden: ignored
    fs::rename(tmp, a);
    const auto r = loader.reload({tmp, a});
    CHECK(r.files_parsed == 1);
    check_fresh(r, dir.path());
    CHECK(affected(r) == Names{"imei:350266800610001", "imei:350266800610009"});
  }
  SECTION("every file deleted, then one back") {
    fs::remove(a);
    fs::remove(dir.path() / "m.yaml");
    auto r = loader.reload({dir.path()});
    CHECK(all(r.result.diagnostics) ==
          dir.str() + ": error: no *.yaml or *.yml files in the desired-state directory\n");
    check_fresh(r, dir.path());
    dir.write("a.yaml", fleet({"imei:350266800610001"}));
    r = loader.reload({a});
    CHECK(r.result.ok());
    check_fresh(r, dir.path());
  }
}

TEST_CASE("a reload of a directory parses the files in it that are new or changed",
          "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001"}));
  dir.write("old/x.yaml", fleet({"imei:350266800610002"}));
  dir.write("old/y.yaml", fleet({"imei:350266800610003"}));
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE(loader.load_all().result.ok());

  SECTION("a new directory with files (moved in, or created before it was watched)") {
    dir.write("new/p.yaml", fleet({"imei:350266800610004"}));
    dir.write("new/deeper/q.yml", fleet({"imei:350266800610005"}));
    dir.write("new/readme.md", "# not YAML");
    dir.write("new/.hidden/r.yaml", fleet({"imei:350266800610006"}));
    const auto r = loader.reload({dir.path() / "new"});
    CHECK(r.files_parsed == 2);
    check_fresh(r, dir.path());
    CHECK(affected(r) == Names{"imei:350266800610004", "imei:350266800610005"});
  }
  SECTION("a directory removed") {
    fs::remove_all(dir.path() / "old");
    const auto r = loader.reload({dir.path() / "old"});
    CHECK(r.files_parsed == 0);
    CHECK(r.result.state.files == Names{dir.str() + "/a.yaml"});
    check_fresh(r, dir.path());
    CHECK(affected(r) == Names{"imei:350266800610002", "imei:350266800610003"});
  }
  SECTION("the root: only the file whose size changed is parsed again") {
    dir.write("old/y.yaml", fleet({"imei:350266800610003", "imei:350266800610007"}));
    const auto r = loader.reload({dir.path()});
    CHECK(r.files_parsed == 1);
    check_fresh(r, dir.path());
    CHECK(affected(r) == Names{"imei:350266800610003", "imei:350266800610007"});
  }
  SECTION("nothing changed") {
    const auto r = loader.reload({dir.path() / "old"});
    CHECK(r.files_parsed == 0);
    CHECK(r.affected.empty());
    check_fresh(r, dir.path());
  }
}

TEST_CASE("hidden, non-YAML and outside paths do not cause a parse", "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001"}));
  const auto git = dir.write(".git/refs/heads/main.yaml", "broken: [");
  const auto notes = dir.write("notes.txt", "broken: [");
  TempDir other;
  const auto outside = other.write("x.yaml", fleet({"imei:350266800610002"}));
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE(loader.load_all().result.ok());
  const auto r = loader.reload({git, notes, outside, dir.path() / ".git"});
  CHECK(r.files_parsed == 0);
  CHECK(r.affected.empty());
  CHECK_FALSE(r.full);
  check_fresh(r, dir.path());
}

TEST_CASE("a duplicate introduced in another file names both places, and its fix recovers",
          "[config][loader]") {
  TempDir dir;
  const auto a = dir.write("a.yaml", fleet({"imei:350266800610001", "imei:350266800610002"}));
  const auto b = dir.write("b.yaml", fleet({"imei:350266800610003"}));
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE(loader.load_all().result.ok());

  dir.write("b.yaml", fleet({"imei:350266800610003", "\"urn:dev:IMEI:350266800610001:\""}));
  auto r = loader.reload({b});
  CHECK(all(r.result.diagnostics) ==
        b + ":7:15: error: duplicate device imei:350266800610001; first listed at " + a +
            ":6:15\n");
  check_fresh(r, dir.path());
  CHECK(affected(r) == Names{"imei:350266800610001", "imei:350266800610003"});

  SECTION("fixed where it was added") {
    dir.write("b.yaml", fleet({"imei:350266800610003"}));
    r = loader.reload({b});
    CHECK(r.result.ok());
    check_fresh(r, dir.path());
  }
  SECTION("moved: dropped from the first file, the second place now counts") {
    dir.write("a.yaml", fleet({"imei:350266800610002"}));
    r = loader.reload({a});
    CHECK(r.result.ok());
    check_fresh(r, dir.path());
    CHECK(r.result.state.location(r.result.state.bindings[0]) == b + ":7:15");
    CHECK(affected(r) == Names{"imei:350266800610001", "imei:350266800610002"});
  }
  SECTION("the first file deleted") {
    fs::remove(a);
    r = loader.reload({a});
    CHECK(r.result.ok());
    check_fresh(r, dir.path());
  }
  SECTION("a file sorting before both lists it too") {
    const auto first = dir.write("0.yaml", fleet({"imei:350266800610001"}));
    r = loader.reload({first});
    CHECK(all(r.result.diagnostics) ==
          a + ":6:15: error: duplicate device imei:350266800610001; first listed at " + first +
              ":6:15\n" + b +
              ":7:15: error: duplicate device imei:350266800610001; first listed at " + first +
              ":6:15\n");
    check_fresh(r, dir.path());
  }
}

TEST_CASE("a file broken and then fixed reloads correctly", "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001"}));
  const auto b = dir.write("b.yaml", fleet({"imei:350266800610002", "imei:350266800610003"}));
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE(loader.load_all().result.ok());

  dir.write("b.yaml", std::string(kDefaults) + "  - deviceId: imei:350266800610002\n  - [\n");
  auto r = loader.reload({b});
  CHECK_FALSE(r.result.ok());
  CHECK(r.files_parsed == 1);
  check_fresh(r, dir.path());
  // The caller keeps its last good state; the loader follows the disk.
  dir.write("b.yaml", fleet({"imei:350266800610002", "imei:350266800610004"}));
  r = loader.reload({b});
  INFO(all(r.result.diagnostics));
  CHECK(r.result.ok());
  CHECK(r.files_parsed == 1);
  check_fresh(r, dir.path());
  CHECK(affected(r) == Names{"imei:350266800610002", "imei:350266800610004"});
}

TEST_CASE("a file that sorts between others shifts their places and shared sources",
          "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml",
            "defaults:\n  password:\n    env: A_PW\nbindings:\n"
            "  - deviceId: imei:350266800610001\n");
  dir.write("c.yaml",
            "defaults:\n  password:\n    env: C_PW\nbindings:\n"
            "  - deviceId: imei:350266800610003\n");
  DesiredStateLoader loader(dir.path(), load_options());
  REQUIRE(loader.load_all().result.ok());
  // b.yaml names C_PW first and a value of its own: c.yaml's source moves behind them.
  const auto b = dir.write("b.yaml",
                           "defaults:\n  password:\n    env: C_PW\nbindings:\n"
                           "  - deviceId: imei:350266800610002\n"
                           "    password:\n      value: hunter2-hunter2\n");
  auto r = loader.reload({b});
  check_fresh(r, dir.path());
  CHECK(affected(r) == Names{"imei:350266800610002"});
  fs::remove(b);
  r = loader.reload({b});
  check_fresh(r, dir.path());
}

TEST_CASE("a loader of one file re-parses it on any change", "[config][loader]") {
  TempDir dir;
  const auto file = dir.write("fleet.txt", fleet({"imei:350266800610001"}));
  DesiredStateLoader loader(file, load_options());
  REQUIRE(loader.load_all().result.ok());
  dir.write("fleet.txt", fleet({"imei:350266800610002"}));
  const auto r = loader.reload({file});
  CHECK(r.files_parsed == 1);
  CHECK_FALSE(r.full);
  check_fresh(r, file);
  CHECK(affected(r) == Names{"imei:350266800610001", "imei:350266800610002"});
}

TEST_CASE("a root that vanishes or appears makes the reload a full one", "[config][loader]") {
  TempDir dir;
  const auto root = dir.path() / "fleet";
  DesiredStateLoader loader(root, load_options());
  auto r = loader.load_all();
  CHECK_FALSE(r.result.ok());
  dir.write("fleet/a.yaml", fleet({"imei:350266800610001"}));
  r = loader.reload({root});
  CHECK(r.full);
  CHECK(r.result.ok());
  check_fresh(r, root);
  fs::remove_all(root);
  r = loader.reload({root});
  CHECK(r.full);
  check_fresh(r, root);
}

TEST_CASE("a reload before the first load loads everything", "[config][loader]") {
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001"}));
  DesiredStateLoader loader(dir.path(), load_options());
  const auto r = loader.reload({dir.path() / "a.yaml"});
  CHECK(r.full);
  CHECK(r.files_parsed == 1);
  check_fresh(r, dir.path());
}

TEST_CASE("many reloads of random edits always equal a fresh load", "[config][loader]") {
  TempDir dir;
  const char* names[] = {"a.yaml", "b.yaml", "s/c.yaml", "s/d.yml", "s/t/e.yaml"};
  const char* pw[] = {"", "    password:\n      env: PW_X\n",
                      "    password:\n      file: f.pass\n"};
  unsigned seed = 12345;
  auto next = [&seed](unsigned n) {
    seed = seed * 1103515245U + 12345U;
    return (seed >> 16) % n;
  };
  auto write_random = [&](const char* name) {
    std::string text = kDefaults;
    const unsigned n = next(6);
    for (unsigned i = 0; i < n; ++i) {
      text += "  - deviceId: imei:3502668006100" + std::to_string(10 + next(20)) + "\n";
      text += pw[next(3)];
    }
    return dir.write(name, text);
  };
  for (const char* n : names) write_random(n);
  DesiredStateLoader loader(dir.path(), load_options());
  auto last = loader.load_all();
  check_fresh(last, dir.path());
  for (int round = 0; round < 40; ++round) {
    INFO("round " << round);
    std::vector<fs::path> changed;
    for (unsigned k = 1 + next(2); k > 0; --k) {
      const char* name = names[next(5)];
      if (next(4) == 0) {
        fs::remove(dir.path() / name);
        changed.emplace_back(dir.path() / name);
      } else {
        changed.emplace_back(write_random(name));
      }
    }
    auto r = loader.reload(changed);
    CHECK(r.files_parsed <= changed.size());
    check_fresh(r, dir.path());
    // Every device whose entry differs from the previous result is in `affected`.
    const auto before = entries_of(last.result);
    const auto after = entries_of(r.result);
    const auto listed = affected(r);
    auto check_listed = [&](const auto& from, const auto& to) {
      for (const auto& [device, entry] : from) {
        const auto it = to.find(device);
        if (it != to.end() && it->second == entry) continue;
        INFO(device);
        CHECK(std::binary_search(listed.begin(), listed.end(), device));
      }
    };
    if (!r.full) {
      check_listed(before, after);
      check_listed(after, before);
    }
    last = std::move(r);
  }
}

TEST_CASE("a result shares the loader's entries, and a reload never changes one still held",
          "[config][loader]") {
  const auto unpacked = [](const ReloadResult& p) -> const LoadResult& { return p.result; };
  TempDir dir;
  dir.write("a.yaml", fleet({"imei:350266800610001", "imei:350266800610003"}));
  const auto b = dir.write("b.yaml", fleet({"imei:350266800610002", "imei:350266800610004"}));
  DesiredStateLoader loader(dir.path(), load_options());
  const auto in_force = loader.load_all();  // what a daemon keeps
  REQUIRE(in_force.result.ok());
  const std::string before = dump(unpacked(in_force));
  CHECK(before == dump(load_desired_state(dir.path(), load_options())));

  // Nothing changed: the next result holds the same entries, not a copy.
  const auto same = loader.reload({});
  CHECK(same.result.state.bindings.shares_entries(in_force.result.state.bindings));

  // Edits that move entries (a device swapped, one added): the loader copies before it
  // splices, so the state in force reads as before, and the new one as a fresh load.
  dir.write("b.yaml", fleet({"imei:350266800610000", "imei:350266800610004",
                             "imei:350266800610005"}));
  const auto edited = loader.reload({b});
  REQUIRE(edited.result.ok());
  CHECK_FALSE(edited.result.state.bindings.shares_entries(in_force.result.state.bindings));
  CHECK(dump(unpacked(in_force)) == before);
  CHECK(dump(unpacked(same)) == before);
  CHECK(dump(unpacked(edited)) == dump(load_desired_state(dir.path(), load_options())));

  // An edit that keeps the file's devices swaps entries in place: the same holds.
  dir.write("b.yaml", std::string(kDefaults) +
                          "  - deviceId: imei:350266800610000\n"
                          "    password:\n      env: PW_0\n"
                          "  - deviceId: imei:350266800610004\n"
                          "  - deviceId: imei:350266800610005\n");
  const auto kept = loader.reload({b});
  REQUIRE(kept.result.ok());
  CHECK(dump(unpacked(edited)) != dump(unpacked(kept)));
  CHECK(dump(unpacked(in_force)) == before);
  CHECK(dump(unpacked(kept)) == dump(load_desired_state(dir.path(), load_options())));

  // A duplicate (an error): the result holds the devices once, with the first place.
  dir.write("b.yaml", fleet({"imei:350266800610001", "imei:350266800610004"}));
  const auto dup = loader.reload({b});
  CHECK_FALSE(dup.result.ok());
  CHECK(dump(unpacked(dup)) == dump(load_desired_state(dir.path(), load_options())));
  CHECK(dup.result.state.bindings.size() == 3);
}

namespace {
// The git-sync pattern: a new symbolic link renamed over the old one, atomically.
void swap_link(const fs::path& link, const fs::path& target) {
  const fs::path tmp = link.string() + ".tmp";
  fs::create_symlink(target, tmp);
  fs::rename(tmp, link);
}
}  // namespace

TEST_CASE("a symbolic link swapped to another checkout makes the next reload a full one",
          "[config][loader]") {
  TempDir dir;
  dir.write("v1/a.yaml", fleet({"imei:350266800610001", "imei:350266800610002"}));
  dir.write("v2/a.yaml", fleet({"imei:350266800610001", "imei:350266800610003"}));
  dir.write("v2/sub/b.yaml", fleet({"imei:350266800610004"}));
  const auto root = dir.path() / "fleet";
  fs::create_symlink(dir.path() / "v1", root);
  DesiredStateLoader loader(root, load_options());
  auto r = loader.load_all();
  REQUIRE(r.result.ok());
  CHECK_FALSE(r.root_changed);
  // Nothing changed: nothing is parsed.
  r = loader.reload({});
  CHECK_FALSE(r.full);
  CHECK_FALSE(r.root_changed);
  CHECK(r.files_parsed == 0);
  swap_link(root, dir.path() / "v2");
  SECTION("with no changed path (a watcher still on the old tree)") { r = loader.reload({}); }
  SECTION("with a path under the root") { r = loader.reload({root / "a.yaml"}); }
  CHECK(r.full);
  CHECK(r.root_changed);
  CHECK(r.files_parsed == 2);
  check_fresh(r, root);
  CHECK(r.result.state.files ==
        std::vector<std::string>{(root / "a.yaml").string(), (root / "sub" / "b.yaml").string()});
  CHECK(r.result.state.bindings.size() == 3);
  // Settled again.
  r = loader.reload({});
  CHECK_FALSE(r.full);
  CHECK_FALSE(r.root_changed);
}

TEST_CASE("a directory replaced by another makes the next reload a full one", "[config][loader]") {
  TempDir dir;
  dir.write("fleet/a.yaml", fleet({"imei:350266800610001"}));
  dir.write("next/a.yaml", fleet({"imei:350266800610002"}));
  dir.write("next/b.yaml", fleet({"imei:350266800610003"}));
  const auto root = dir.path() / "fleet";
  DesiredStateLoader loader(root, load_options());
  REQUIRE(loader.load_all().result.ok());
  fs::rename(root, dir.path() / "fleet.bak");
  fs::rename(dir.path() / "next", root);
  const auto r = loader.reload({});
  CHECK(r.full);
  CHECK(r.root_changed);
  check_fresh(r, root);
  CHECK(affected(r).empty());
  CHECK(r.result.state.bindings.size() == 2);
}

TEST_CASE("a one-file root behind a swapped link is loaded in full", "[config][loader]") {
  TempDir dir;
  dir.write("v1.yaml", fleet({"imei:350266800610001"}));
  dir.write("v2.yaml", fleet({"imei:350266800610002"}));
  const auto root = dir.path() / "fleet.yaml";
  fs::create_symlink(dir.path() / "v1.yaml", root);
  DesiredStateLoader loader(root, load_options());
  REQUIRE(loader.load_all().result.ok());
  swap_link(root, dir.path() / "v2.yaml");
  const auto r = loader.reload({});
  CHECK(r.full);
  CHECK(r.root_changed);
  REQUIRE(r.result.state.bindings.size() == 1);
  CHECK(r.result.state.bindings[0].device.canonical() == "imei:350266800610002");
}

TEST_CASE("a one-file root renamed over in its directory is an edit, not another root",
          "[config][loader]") {
  TempDir dir;
  const auto root = dir.write("fleet.yaml", fleet({"imei:350266800610001"}));
  DesiredStateLoader loader(root, load_options());
  REQUIRE(loader.load_all().result.ok());
  dir.write(".fleet.yaml.swp", fleet({"imei:350266800610002"}));
  fs::rename(dir.path() / ".fleet.yaml.swp", root);
  const auto r = loader.reload({root});
  CHECK_FALSE(r.full);
  CHECK_FALSE(r.root_changed);
  CHECK(r.files_parsed == 1);
  check_fresh(r, root);
  CHECK(affected(r) == Names{"imei:350266800610001", "imei:350266800610002"});
}
