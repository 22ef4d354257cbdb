#include "state_gate.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {
namespace {
constexpr const char* kCommand = "thingsync run";

// "" when the state file's directory can take a new snapshot (written beside the file, then
// renamed over it); else why not. Looked at on every turn of the loop: a directory made
// read-only (a remount, a chmod) is seen at once, not at the next snapshot.
std::string unwritable_directory(const std::filesystem::path& state_path) {
  auto dir = state_path.parent_path();
  if (dir.empty()) dir = ".";
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) == 0) return {};
  return "cannot write in the state directory " + dir.string() + ": " + std::strerror(errno);
}
}  // namespace

// The state file's identity (inode, size, modification time; "" when there is none), to see
// whether someone wrote it.
static std::string file_identity(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return {};
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

bool StateGate::take_lock() {
  auto lock = state::WriterLock::acquire(state_path_, kCommand);
  if (lock) {
    lock_ = std::move(lock.value());
    return true;
  }
  obs::logger("daemon")->error("{}", lock.error().message);
  if (lock.error().busy) return false;
  unlocked_identity_ = file_identity(state_path_) + "|" +
                       file_identity(state_path_.string() + ".journal");
  return true;
}

bool StateGate::check(state::StateStore& state, bool save_owed) {
  std::string problem;
  bool saved = false;
  if (lock_ && !lock_->still_held()) {
    // The lock file was deleted or replaced under us: lock the file that is there now, or, if
    // another writer already did, stop writing.
    obs::logger("daemon")->error("the state lock file {} was deleted or replaced while held; "
                                 "locking it again", lock_->path().string());
    lock_.reset();
  }
  if (!lock_) {
    auto lock = state::WriterLock::acquire(state_path_, kCommand);
    if (lock) {
      lock_ = std::move(lock.value());
      if (unlocked_identity_) {
        const auto now = file_identity(state_path_) + "|" +
                         file_identity(state_path_.string() + ".journal");
        if (now != *unlocked_identity_) {
          throw std::runtime_error(
              "the state file " + state_path_.string() +
              " was written by another thingsync while this one waited for its lock: ending, "
              "so that a restart loads it as it is now");
        }
        unlocked_identity_.reset();
      }
    } else {
      problem = lock.error().message;
    }
  }
  if (problem.empty()) problem = unwritable_directory(state_path_);
  if (problem.empty() && (unsaved_ || save_owed)) {
    if (auto r = state.checkpoint(); r) {
      unsaved_ = false;
      saved = true;
    } else {
      problem = r.error().message;
    }
  }
  may_write_ = problem.empty();
  health_.set_state_error(std::move(problem));
  return saved;
}

}  // namespace thingsync::engine
