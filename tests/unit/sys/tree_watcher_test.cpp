#include "thingsync/sys/tree_watcher.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <fstream>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
namespace net = boost::asio;
using thingsync::sys::TreeChanges;
using thingsync::sys::TreeWatcher;
using thingsync::testsupport::TempDir;

namespace {

// Events queue in the kernel, so the test makes its changes first and then collects them.
TreeChanges collect(net::io_context& ioc, TreeWatcher& w) {
  auto f = net::co_spawn(ioc, w.next(), net::use_future);
  ioc.restart();
  ioc.run();
  return f.get();
}
bool contains(const TreeChanges& c, const fs::path& p) {
  return std::find(c.paths.begin(), c.paths.end(), p) != c.paths.end();
}
void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

}  // namespace

TEST_CASE("the watcher reports a file written in a nested directory", "[sys][inotify]") {
  TempDir t;
  fs::create_directories(t.path() / "a" / "b");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path());
  write(t.path() / "a" / "b" / "fleet.yaml", "bindings: []\n");
  const auto c = collect(ioc, w);
  CHECK(contains(c, t.path() / "a" / "b" / "fleet.yaml"));
}

TEST_CASE("the watcher sees an editor's write-to-temp-then-rename", "[sys][inotify]") {
  TempDir t;
  write(t.path() / "fleet.yaml", "old\n");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path());
  write(t.path() / ".fleet.yaml.swp", "new\n");
  fs::rename(t.path() / ".fleet.yaml.swp", t.path() / "fleet.yaml");
  const auto c = collect(ioc, w);
  CHECK(contains(c, t.path() / "fleet.yaml"));
  CHECK_FALSE(contains(c, t.path() / ".fleet.yaml.swp"));  // hidden files are not desired state
}

TEST_CASE("the watcher reports files of a directory moved in whole", "[sys][inotify]") {
  TempDir t;
  TempDir outside;
  fs::create_directories(t.path() / "fleet");
  fs::create_directories(outside.path() / "batch");
  write(outside.path() / "batch" / "one.yaml", "x\n");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path() / "fleet");
  fs::rename(outside.path() / "batch", t.path() / "fleet" / "batch");
  const auto c = collect(ioc, w);
  CHECK(contains(c, t.path() / "fleet" / "batch" / "one.yaml"));
  // The new directory is watched from now on.
  write(t.path() / "fleet" / "batch" / "two.yaml", "y\n");
  const auto c2 = collect(ioc, w);
  CHECK(contains(c2, t.path() / "fleet" / "batch" / "two.yaml"));
}

TEST_CASE("a watched single file is seen through its directory, other files are not",
          "[sys][inotify]") {
  TempDir t;
  write(t.path() / "fleet.yaml", "a\n");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path() / "fleet.yaml");
  write(t.path() / "other.yaml", "b\n");
  write(t.path() / "fleet.yaml", "c\n");
  const auto c = collect(ioc, w);
  REQUIRE(c.paths.size() == 1);
  CHECK(c.paths[0] == t.path() / "fleet.yaml");
}

TEST_CASE("changes inside .git are ignored", "[sys][inotify]") {
  TempDir t;
  fs::create_directories(t.path() / ".git" / "objects");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path());
  write(t.path() / ".git" / "objects" / "x", "blob\n");
  write(t.path() / "fleet.yaml", "a\n");
  const auto c = collect(ioc, w);
  REQUIRE(c.paths.size() == 1);
  CHECK(c.paths[0] == t.path() / "fleet.yaml");
}

namespace {
using Paths = std::vector<fs::path>;

// The git-sync pattern: a new symbolic link renamed over the old one, atomically.
void swap_link(const fs::path& link, const fs::path& target) {
  const fs::path tmp = link.string() + ".tmp";
  fs::create_symlink(target, tmp);
  fs::rename(tmp, link);
}

// Two checkouts, v1 and v2 (with a subdirectory), and the link `fleet` to v1.
fs::path two_checkouts(const fs::path& dir) {
  fs::create_directories(dir / "v1");
  fs::create_directories(dir / "v2" / "sub");
  write(dir / "v1" / "a.yaml", "a\n");
  write(dir / "v2" / "a.yaml", "b\n");
  fs::create_symlink(dir / "v1", dir / "fleet");
  return dir / "fleet";
}

// The next report is a change of the root: re-armed, the root itself in `paths`.
void next_is_root_change(net::io_context& ioc, TreeWatcher& w, const fs::path& root) {
  const auto c = collect(ioc, w);
  CHECK(c.root_changed);
  CHECK(c.full());
  CHECK(contains(c, root));
}

// The next report is exactly `file`, with no change of the root.
void next_is(net::io_context& ioc, TreeWatcher& w, const fs::path& file) {
  const auto c = collect(ioc, w);
  CHECK_FALSE(c.root_changed);
  CHECK(c.paths == Paths{file});
}
}  // namespace

TEST_CASE("a symbolic link root swapped to a new checkout is followed", "[sys][inotify]") {
  TempDir t;
  const auto root = two_checkouts(t.path());
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), root);
  CHECK(w.take_warnings().empty());
  swap_link(root, t.path() / "v2");
  next_is_root_change(ioc, w, root);
  // The new tree is watched, its subdirectories too, and the old one no longer.
  write(t.path() / "v1" / "old.yaml", "x\n");
  write(t.path() / "v2" / "sub" / "new.yaml", "y\n");
  next_is(ioc, w, root / "sub" / "new.yaml");
}

TEST_CASE("a swapped symbolic link further up the path is followed", "[sys][inotify]") {
  TempDir t;
  fs::create_directories(t.path() / "rev1" / "fleet");
  fs::create_directories(t.path() / "rev2" / "fleet");
  fs::create_symlink(t.path() / "rev1", t.path() / "current");
  const auto root = t.path() / "current" / "fleet";
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), root);
  swap_link(t.path() / "current", t.path() / "rev2");
  next_is_root_change(ioc, w, root);
  write(t.path() / "rev1" / "fleet" / "old.yaml", "x\n");
  write(t.path() / "rev2" / "fleet" / "new.yaml", "y\n");
  next_is(ioc, w, root / "new.yaml");
}

TEST_CASE("a root directory replaced by another is followed", "[sys][inotify]") {
  TempDir t;
  const auto root = t.path() / "fleet";
  fs::create_directories(root);
  fs::create_directories(t.path() / "next");
  write(root / "a.yaml", "a\n");
  write(t.path() / "next" / "b.yaml", "b\n");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), root);
  fs::rename(root, t.path() / "fleet.bak");
  fs::rename(t.path() / "next", root);
  next_is_root_change(ioc, w, root);
  write(t.path() / "fleet.bak" / "old.yaml", "x\n");
  write(root / "new.yaml", "y\n");
  next_is(ioc, w, root / "new.yaml");
}

TEST_CASE("a root that vanishes and comes back is watched again", "[sys][inotify]") {
  TempDir t;
  const auto root = t.path() / "fleet";
  fs::create_directories(root);
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), root);
  fs::remove_all(root);
  next_is_root_change(ioc, w, root);
  fs::create_directories(root);
  next_is_root_change(ioc, w, root);
  write(root / "a.yaml", "a\n");
  next_is(ioc, w, root / "a.yaml");
}

TEST_CASE("check_root() finds a swap whose events were not read, and re-arms",
          "[sys][inotify]") {
  TempDir t;
  const auto root = two_checkouts(t.path());
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), root);
  auto c = w.check_root();
  CHECK_FALSE(c.root_changed);
  CHECK(c.paths.empty());
  swap_link(root, t.path() / "v2");
  c = w.check_root();  // no event has been read yet
  CHECK(c.root_changed);
  CHECK(c.paths == Paths{root});
  CHECK_FALSE(w.check_root().root_changed);  // reported once
  // The swap's events, read now, are not reported again; the new tree is watched.
  write(t.path() / "v2" / "sub" / "b.yaml", "b\n");
  next_is(ioc, w, root / "sub" / "b.yaml");
}

TEST_CASE("a one-file root behind a symbolic link is watched where the link leads",
          "[sys][inotify]") {
  TempDir t;
  fs::create_directories(t.path() / "repo");
  fs::create_directories(t.path() / "etc");
  write(t.path() / "repo" / "fleet.yaml", "a\n");
  write(t.path() / "repo" / "other.yaml", "b\n");
  const auto root = t.path() / "etc" / "fleet.yaml";
  fs::create_symlink(t.path() / "repo" / "fleet.yaml", root);
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), root);
  write(t.path() / "repo" / "fleet.yaml", "c\n");
  next_is(ioc, w, root);
  swap_link(root, t.path() / "repo" / "other.yaml");
  next_is_root_change(ioc, w, root);
}

TEST_CASE("a directory that cannot be watched is a warning naming it and the error",
          "[sys][inotify]") {
  TempDir t;
  const auto root = t.path() / "missing" / "fleet";
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), root);
  const auto warnings = w.take_warnings();
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "cannot watch " + (t.path() / "missing").string() +
                           ": No such file or directory; changes there are seen by a full "
                           "reload only");
  CHECK(w.take_warnings().empty());  // each once
  // Nothing tells the watcher that the root appeared; check_root() finds it.
  fs::create_directories(root);
  const auto c = w.check_root();
  CHECK(c.root_changed);
  CHECK(c.warnings.empty());
  write(root / "a.yaml", "a\n");
  next_is(ioc, w, root / "a.yaml");
}
