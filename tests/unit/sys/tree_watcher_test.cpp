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
  thingsync::test::TempDir t;
  fs::create_directories(t.path / "a" / "b");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path);
  write(t.path / "a" / "b" / "fleet.yaml", "bindings: []\n");
  const auto c = collect(ioc, w);
  CHECK(contains(c, t.path / "a" / "b" / "fleet.yaml"));
}

TEST_CASE("the watcher sees an editor's write-to-temp-then-rename", "[sys][inotify]") {
  thingsync::test::TempDir t;
  write(t.path / "fleet.yaml", "old\n");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path);
  write(t.path / ".fleet.yaml.swp", "new\n");
  fs::rename(t.path / ".fleet.yaml.swp", t.path / "fleet.yaml");
  const auto c = collect(ioc, w);
  CHECK(contains(c, t.path / "fleet.yaml"));
  CHECK_FALSE(contains(c, t.path / ".fleet.yaml.swp"));  // hidden files are not desired state
}

TEST_CASE("the watcher reports files of a directory moved in whole", "[sys][inotify]") {
  thingsync::test::TempDir t;
  thingsync::test::TempDir outside;
  fs::create_directories(t.path / "fleet");
  fs::create_directories(outside.path / "batch");
  write(outside.path / "batch" / "one.yaml", "x\n");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path / "fleet");
  fs::rename(outside.path / "batch", t.path / "fleet" / "batch");
  const auto c = collect(ioc, w);
  CHECK(contains(c, t.path / "fleet" / "batch" / "one.yaml"));
  // The new directory is watched from now on.
  write(t.path / "fleet" / "batch" / "two.yaml", "y\n");
  const auto c2 = collect(ioc, w);
  CHECK(contains(c2, t.path / "fleet" / "batch" / "two.yaml"));
}

TEST_CASE("a watched single file is seen through its directory, other files are not",
          "[sys][inotify]") {
  thingsync::test::TempDir t;
  write(t.path / "fleet.yaml", "a\n");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path / "fleet.yaml");
  write(t.path / "other.yaml", "b\n");
  write(t.path / "fleet.yaml", "c\n");
  const auto c = collect(ioc, w);
  REQUIRE(c.paths.size() == 1);
  CHECK(c.paths[0] == t.path / "fleet.yaml");
}

TEST_CASE("changes inside .git are ignored", "[sys][inotify]") {
  thingsync::test::TempDir t;
  fs::create_directories(t.path / ".git" / "objects");
  net::io_context ioc;
  TreeWatcher w(ioc.get_executor(), t.path);
  write(t.path / ".git" / "objects" / "x", "blob\n");
  write(t.path / "fleet.yaml", "a\n");
  const auto c = collect(ioc, w);
  REQUIRE(c.paths.size() == 1);
  CHECK(c.paths[0] == t.path / "fleet.yaml");
}
