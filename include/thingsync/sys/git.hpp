#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace thingsync::sys {

/// The commit a Git work tree containing `path` is at (40 hex digits), read from the .git
/// directory without running git (HEAD, loose refs, packed-refs; `.git` files of worktrees and
/// submodules followed). nullopt when `path` is not inside a work tree or HEAD is unreadable.
std::optional<std::string> git_head_commit(const std::filesystem::path& path);

}  // namespace thingsync::sys
