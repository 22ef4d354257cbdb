#include "state_gate.hpp"

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {
namespace {
constexpr const char* kCommand = "thingsync run";
}  // namespace

bool StateGate::take_lock() {
  auto lock = state::WriterLock::acquire(state_path_, kCommand);
  if (lock) {
    lock_ = std::move(lock.value());
    return true;
  }
  obs::logger("daemon")->error("{}", lock.error().message);
  return !lock.error().busy;
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
    } else {
      problem = lock.error().message;
    }
  }
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
