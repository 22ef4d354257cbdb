#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "health.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/state/writer_lock.hpp"

namespace thingsync::engine {

/// The daemon's side of "one writer, and nothing sent before the state that must precede it is
/// durable": it holds the writer lock and proves, before a pass may write, that the state can
/// be saved. Not thread-safe (the event loop's).
class StateGate {
 public:
  StateGate(std::filesystem::path state_path, Health& health)
      : state_path_(std::move(state_path)), health_(health) {}

  /// At start. False only when another process holds the lock (the daemon does not start); a
  /// lock that cannot be taken for another reason (a missing directory) is retried by check().
  bool take_lock();
  /// Before a pass may write: takes the lock if it is not held, and writes a snapshot when one
  /// is owed (after the start, or after `save_owed`: a pass that could not journal). Tells
  /// Health why writes wait, or that they may go. True when it wrote a snapshot. Throws when
  /// the lock, taken late, shows that another writer changed the state file since this daemon
  /// loaded it: the process must end, and its restart loads the file as it is now.
  bool check(state::StateStore& state, bool save_owed);
  /// Whether a pass may write now (check() keeps it current).
  const bool& may_write() const { return may_write_; }

 private:
  std::filesystem::path state_path_;
  Health& health_;
  std::unique_ptr<state::WriterLock> lock_;
  // The state file as it was when the daemon loaded it without the lock (the lock could not
  // be taken then): if another writer changed it meanwhile, what the daemon holds is stale.
  std::optional<std::string> unlocked_identity_;
  bool unsaved_ = true;  // a snapshot must prove the state can be saved before writes
  bool may_write_ = false;
};

}  // namespace thingsync::engine
