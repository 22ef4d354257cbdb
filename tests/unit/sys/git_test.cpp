#include "thingsync/sys/git.hpp"

#include <catch2/catch.hpp>

#include <fstream>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using thingsync::sys::git_checkout_in_progress;
using thingsync::sys::git_head_commit;
using thingsync::testsupport::TempDir;

namespace {
const std::string kSha1 = "0123456789abcdef0123456789abcdef01234567";
const std::string kSha2 = "89abcdef0123456789abcdef0123456789abcdef";
void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
}  // namespace

TEST_CASE("git HEAD is read from a loose ref, a packed ref, or a detached head", "[sys][git]") {
  TempDir t;
  fs::create_directories(t.path() / "fleet" / "sub");
  SECTION("loose ref") {
    write(t.path() / ".git" / "HEAD", "ref: refs/heads/main\n");
    write(t.path() / ".git" / "refs" / "heads" / "main", kSha1 + "\n");
    CHECK(git_head_commit(t.path() / "fleet" / "sub") == kSha1);
  }
  SECTION("packed ref") {
    write(t.path() / ".git" / "HEAD", "ref: refs/heads/main\n");
    write(t.path() / ".git" / "packed-refs",
          "# pack-refs with: peeled fully-peeled sorted\n" + kSha2 + " refs/heads/main\n");
    CHECK(git_head_commit(t.path() / "fleet") == kSha2);
  }
  SECTION("detached") {
    write(t.path() / ".git" / "HEAD", kSha2 + "\n");
    CHECK(git_head_commit(t.path()) == kSha2);
  }
  SECTION("worktree .git file") {
    write(t.path() / "store" / "HEAD", "ref: refs/heads/x\n");
    write(t.path() / "store" / "refs" / "heads" / "x", kSha1 + "\n");
    write(t.path() / "fleet" / ".git", "gitdir: ../store\n");
    CHECK(git_head_commit(t.path() / "fleet" / "sub") == kSha1);
  }
}

TEST_CASE("a directory outside any work tree has no commit", "[sys][git]") {
  TempDir t;
  write(t.path() / ".git" / "HEAD", "ref: refs/heads/unborn\n");  // no such ref yet
  CHECK_FALSE(git_head_commit(t.path()));
}

TEST_CASE("git HEAD is found from where a symbolic link into a checkout resolves",
          "[sys][git]") {
  TempDir repo;
  TempDir outside;
  write(repo.path() / ".git" / "HEAD", kSha1 + "\n");
  fs::create_directories(repo.path() / "fleet");
  fs::create_symlink(repo.path() / "fleet", outside.path() / "fleet");
  CHECK(git_head_commit(outside.path() / "fleet") == kSha1);
  // A repository around the link itself does not count: the files are read from the target.
  write(outside.path() / ".git" / "HEAD", kSha2 + "\n");
  CHECK(git_head_commit(outside.path() / "fleet") == kSha1);
}

TEST_CASE("a linked worktree's HEAD and branches are read through its gitdir file",
          "[sys][git]") {
  TempDir t;
  // git worktree add: the worktree's own HEAD, the branches in the main repository.
  write(t.path() / "main" / ".git" / "worktrees" / "w" / "HEAD", "ref: refs/heads/feature\n");
  write(t.path() / "main" / ".git" / "worktrees" / "w" / "commondir", "../..\n");
  write(t.path() / "main" / ".git" / "refs" / "heads" / "feature", kSha2 + "\n");
  const auto gitdir = t.path() / "main" / ".git" / "worktrees" / "w";
  write(t.path() / "w" / ".git", "gitdir: " + gitdir.string() + "\n");
  fs::create_directories(t.path() / "w" / "fleet");
  CHECK(git_head_commit(t.path() / "w" / "fleet") == kSha2);
}

TEST_CASE("a checkout in progress shows as the index lock of the work tree", "[sys][git]") {
  TempDir t;
  fs::create_directories(t.path() / "fleet" / "sub");
  CHECK_FALSE(git_checkout_in_progress(t.path() / "fleet"));  // no work tree at all
  SECTION("a .git directory") {
    write(t.path() / ".git" / "HEAD", kSha1 + "\n");
    CHECK_FALSE(git_checkout_in_progress(t.path() / "fleet"));
    write(t.path() / ".git" / "index.lock", "");
    CHECK(git_checkout_in_progress(t.path() / "fleet" / "sub") == t.path() / ".git" / "index.lock");
    CHECK(git_checkout_in_progress(t.path() / "fleet" / "a.yaml") ==
          t.path() / ".git" / "index.lock");
    fs::remove(t.path() / ".git" / "index.lock");
    CHECK_FALSE(git_checkout_in_progress(t.path() / "fleet"));
  }
  SECTION("a gitdir file (a submodule)") {
    write(t.path() / "super" / ".git" / "modules" / "fleet" / "HEAD", kSha1 + "\n");
    write(t.path() / "fleet" / ".git", "gitdir: ../super/.git/modules/fleet\n");
    CHECK_FALSE(git_checkout_in_progress(t.path() / "fleet"));
    // The submodule's own lock counts, not one at the work tree's top.
    write(t.path() / "fleet" / "index.lock", "");
    CHECK_FALSE(git_checkout_in_progress(t.path() / "fleet" / "sub"));
    write(t.path() / "super" / ".git" / "modules" / "fleet" / "index.lock", "");
    CHECK(git_checkout_in_progress(t.path() / "fleet" / "sub") ==
          t.path() / "fleet" / "../super/.git/modules/fleet" / "index.lock");
  }
  SECTION("through a symbolic link into the checkout") {
    TempDir outside;
    write(t.path() / ".git" / "index.lock", "");
    fs::create_symlink(t.path() / "fleet", outside.path() / "current");
    CHECK(git_checkout_in_progress(outside.path() / "current") == t.path() / ".git" / "index.lock");
  }
}
