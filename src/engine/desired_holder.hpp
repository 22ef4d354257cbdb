#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/core/binding.hpp"
#include "thingsync/core/diagnostic.hpp"
#include "thingsync/engine/desired.hpp"

namespace thingsync::engine {

/// The desired state in force in the daemon, and its reloads: all or nothing (a load that
/// fails leaves the last good state in force), incremental where it can be (only the changed
/// files are parsed, only the affected devices fingerprinted). Not thread-safe.
class DesiredHolder {
 public:
  DesiredHolder(std::filesystem::path root, std::string salt);

  /// A changed path (from the file watcher) for the next reload.
  void changed(const std::filesystem::path& p) { changed_.insert(p.string()); }
  /// The next reload parses everything (SIGHUP, a lost watch, a swapped root).
  void want_full() { full_ = true; }
  bool full_wanted() const { return full_ || !loaded_once_; }

  struct Outcome {
    bool ok = false;
    /// Not loaded, and not a failure: a Git checkout is in progress or HEAD moved during the
    /// load. Try again a little later; `deferred` says why.
    std::string deferred;
    std::optional<std::string> commit;   ///< the Git commit loaded, when in a work tree
    bool root_changed = false;           ///< the path now resolves to another tree
    bool all = false;                      ///< every device may have changed
    std::vector<core::DeviceId> affected;  ///< else: these did (sorted)
    std::size_t files_parsed = 0;
    std::size_t warnings = 0;
    core::Diagnostics errors;  ///< when !ok: why, one per line
  };
  /// Loads; on success the new state is in force. A checkout in progress is not loaded.
  Outcome reload();

  const config::DesiredState& state() const { return state_; }
  const std::vector<core::Fingerprint>& fingerprints() const { return fps_; }
  std::size_t size() const { return state_.bindings.size(); }
  bool contains(const core::DeviceId& device) const;
  /// The Git commit of the state in force; "" outside a work tree.
  const std::string& commit() const { return commit_; }

  /// The plan's inputs for some devices only (sorted): `desired` and `prepared` hold those.
  void subset(const std::vector<core::DeviceId>& devices, config::DesiredState& desired,
              PreparedDesired& prepared) const;

 private:
  std::filesystem::path root_;
  std::string salt_;
  config::DesiredStateLoader loader_;
  config::DesiredState state_;  // in force: 36 B a binding, the entries shared with loader_
  std::vector<core::Fingerprint> fps_;  // of state_.bindings, in its order
  std::string commit_;                  // of state_
  std::unordered_set<std::string> changed_;
  bool full_ = false;
  bool loaded_once_ = false;
  std::vector<core::DeviceId> unapplied_;  // affected by loads that failed
  bool unapplied_all_ = false;
};

}  // namespace thingsync::engine
