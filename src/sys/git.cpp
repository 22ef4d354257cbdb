#include "thingsync/sys/git.hpp"

#include <algorithm>
#include <fstream>
#include <string>

namespace thingsync::sys {
namespace fs = std::filesystem;
namespace {

std::optional<std::string> first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

bool is_sha(const std::string& s) {
  return (s.size() == 40 || s.size() == 64) &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The git directory of the work tree holding `start`, following a `.git` file. The walk
// starts where `start` resolves (symbolic links followed), not where it is spelled.
std::optional<fs::path> find_git_dir(fs::path start) {
  std::error_code ec;
  start = fs::weakly_canonical(fs::absolute(start, ec), ec);
  if (ec) return std::nullopt;
  if (!fs::is_directory(start, ec)) start = start.parent_path();
  for (fs::path dir = start;; dir = dir.parent_path()) {
    const fs::path dotgit = dir / ".git";
    if (fs::is_directory(dotgit, ec)) return dotgit;
    if (fs::is_regular_file(dotgit, ec)) {
      auto line = first_line(dotgit);
      if (!line || line->rfind("gitdir: ", 0) != 0) return std::nullopt;
      fs::path target = line->substr(8);
      return target.is_absolute() ? target : dir / target;
    }
    if (dir == dir.root_path() || dir.empty()) return std::nullopt;
  }
}

std::optional<std::string> resolve_ref(const fs::path& git_dir, const std::string& ref) {
  // Linked worktrees keep refs in the common dir.
  fs::path common = git_dir;
  if (auto c = first_line(git_dir / "commondir")) {
    common = fs::path(*c).is_absolute() ? fs::path(*c) : git_dir / *c;
  }
  for (const auto& base : {git_dir, common}) {
    if (auto loose = first_line(base / ref); loose && is_sha(*loose)) return loose;
  }
  std::ifstream packed(common / "packed-refs");
  std::string line;
  while (std::getline(packed, line)) {
    if (line.empty() || line[0] == '#' || line[0] == '^') continue;
    const auto sp = line.find(' ');
    if (sp != std::string::npos && line.substr(sp + 1) == ref && is_sha(line.substr(0, sp))) {
      return line.substr(0, sp);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<fs::path> git_checkout_in_progress(const fs::path& path) {
  const auto git_dir = find_git_dir(path);
  if (!git_dir) return std::nullopt;
  fs::path lock = *git_dir / "index.lock";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(lock, ec))) return std::nullopt;
  return lock;
}

std::optional<std::string> git_head_commit(const fs::path& path) {
  const auto git_dir = find_git_dir(path);
  if (!git_dir) return std::nullopt;
  const auto head = first_line(*git_dir / "HEAD");
  if (!head) return std::nullopt;
  if (is_sha(*head)) return head;  // detached
  if (head->rfind("ref: ", 0) == 0) return resolve_ref(*git_dir, head->substr(5));
  return std::nullopt;
}

}  // namespace thingsync::sys
