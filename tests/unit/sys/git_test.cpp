#include "thingsync/sys/git.hpp"

#include <catch2/catch.hpp>

#include <fstream>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using thingsync::sys::git_head_commit;

namespace {
const std::string kSha1 = "0123456789abcdef0123456789abcdef01234567";
const std::string kSha2 = "89abcdef0123456789abcdef0123456789abcdef";
void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
}  // namespace

TEST_CASE("git HEAD is read from a loose ref, a packed ref, or a detached head", "[sys][git]") {
  thingsync::test::TempDir t;
  fs::create_directories(t.path / "fleet" / "sub");
  SECTION("loose ref") {
    write(t.path / ".git" / "HEAD", "ref: refs/heads/main\n");
    write(t.path / ".git" / "refs" / "heads" / "main", kSha1 + "\n");
    CHECK(git_head_commit(t.path / "fleet" / "sub") == kSha1);
  }
  SECTION("packed ref") {
    write(t.path / ".git" / "HEAD", "ref: refs/heads/main\n");
    write(t.path / ".git" / "packed-refs",
          "# pack-refs with: peeled fully-peeled sorted\n" + kSha2 + " refs/heads/main\n");
    CHECK(git_head_commit(t.path / "fleet") == kSha2);
  }
  SECTION("detached") {
    write(t.path / ".git" / "HEAD", kSha2 + "\n");
    CHECK(git_head_commit(t.path) == kSha2);
  }
  SECTION("worktree .git file") {
    write(t.path / "store" / "HEAD", "ref: refs/heads/x\n");
    write(t.path / "store" / "refs" / "heads" / "x", kSha1 + "\n");
    write(t.path / "fleet" / ".git", "gitdir: ../store\n");
    CHECK(git_head_commit(t.path / "fleet" / "sub") == kSha1);
  }
}

TEST_CASE("a directory outside any work tree has no commit", "[sys][git]") {
  thingsync::test::TempDir t;
  write(t.path / ".git" / "HEAD", "ref: refs/heads/unborn\n");  // no such ref yet
  CHECK_FALSE(git_head_commit(t.path));
}
