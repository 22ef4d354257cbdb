#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace thingsync::sys {

// Both functions find the Git work tree holding `path` from where `path` resolves (symbolic
// links followed, so a desired-state path that is a link into a checkout finds that
// checkout's repository), walking up to the first `.git`: a directory, or a `gitdir: DIR`
// file (linked worktrees and submodules; a relative DIR is taken from the file's directory).
// Neither runs git; both only read files, and are cheap enough to call around every load.
//
// To load a desired state that lives in a Git checkout without ever taking a half-done one:
//   1. if git_checkout_in_progress(path): do not load; try again a little later;
//   2. before = git_head_commit(path);
//   3. load;
//   4. if git_checkout_in_progress(path) or git_head_commit(path) != before: drop the result
//      (a checkout ran during the load) and load again a little later.
// A desired state outside any work tree gives nullopt from both, which passes these checks.

/// The commit the work tree holding `path` is at (40 or 64 hex digits), from its HEAD: a
/// detached commit, or a branch read from a loose ref or packed-refs (a linked worktree's
/// branches from the common directory its `commondir` names). nullopt when `path` is not in
/// a work tree or HEAD is unreadable or names a branch without commits.
std::optional<std::string> git_head_commit(const std::filesystem::path& path);

/// Whether Git is writing the work tree holding `path` now: the lock file of its index
/// (`index.lock` in its git directory; for a linked worktree or a submodule, in the directory
/// its `gitdir:` file names), which git holds through a checkout, pull, merge, reset or commit.
/// Returns that lock file's path while it exists; nullopt when it does not or when `path` is
/// in no work tree. A lock left behind by a git that crashed looks the same and stays until
/// someone removes it: a caller that waits should give up after a while and say so (naming
/// the lock file) rather than wait forever.
std::optional<std::filesystem::path> git_checkout_in_progress(const std::filesystem::path& path);

}  // namespace thingsync::sys
