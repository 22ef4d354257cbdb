#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "thingsync/state/medium.hpp"

namespace thingsync::state {

/// One writer at a time for a state file: `run` and `apply` hold this lock, an exclusive
/// flock(2) on a lock file beside the state file (`state.path + ".lock"`), for their whole run.
/// The kernel drops it when the process ends, however it ends, so a crash never leaves it
/// behind. `plan` and `export` take no lock: they only read the state (the snapshot is replaced
/// atomically and a torn last journal line is ignored), so they may run beside a daemon.
class WriterLock {
 public:
  /// Takes the lock at once or fails at once: held by another process, the error names its PID
  /// and command (which the holder writes into the lock file); a lock file that cannot be
  /// created (a missing or read-only directory) is an error naming it. `command` is what this
  /// process is ("thingsync run", "thingsync apply").
  static Result<std::unique_ptr<WriterLock>> acquire(const std::filesystem::path& state_path,
                                                     std::string_view command);
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// Whether the lock file's path still names the file this lock is on. Someone who deletes
  /// or replaces the lock file (taking it for a stale pidfile) lets another writer lock a new
  /// file there: the holder must then stop writing.
  bool still_held() const;

 private:
  WriterLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace thingsync::state
