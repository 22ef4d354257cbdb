#pragma once

#include <string_view>
#include <vector>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/env.hpp"
#include "thingsync/core/binding.hpp"
#include "thingsync/core/diagnostic.hpp"

namespace thingsync::engine {

/// The desired state as the plan needs it: each binding with the salted fingerprint of the
/// password its source yields now.
struct PreparedDesired {
  std::vector<core::DesiredBinding> bindings;  ///< DesiredBinding::index → DesiredState::bindings
  core::Diagnostics diagnostics;  ///< one per source that could not be resolved (with its count)
  bool ok() const { return !core::has_errors(diagnostics); }
};

/// Only the fingerprints, one per DesiredState::bindings entry and in its order: what a
/// long-running process keeps between passes (8 bytes a binding; the devices are in the
/// DesiredState already). with_fingerprints() makes the plan's input from it when needed.
struct DesiredFingerprints {
  std::vector<core::Fingerprint> fps;
  core::Diagnostics diagnostics;  ///< one per source that could not be resolved (with its count)
  bool ok() const { return !core::has_errors(diagnostics); }
};

/// Resolves every binding's password (derive, file, env, value) and fingerprints it under
/// `salt`, on `threads` threads (0: all cores). Any error makes the result unusable as a
/// whole: a binding left out would look undesired and could be deleted. A source that yields
/// no password is one diagnostic, however many bindings use it (config::source_errors).
PreparedDesired prepare_desired(const config::DesiredState& state, std::string_view salt,
                                const config::EnvLookup& env, unsigned threads = 0);

/// prepare_desired() without the DesiredBinding copies: fingerprints only.
DesiredFingerprints fingerprint_desired(const config::DesiredState& state, std::string_view salt,
                                        const config::EnvLookup& env, unsigned threads = 0);

/// After an incremental reload: fingerprints only the bindings of `affected` devices (sorted)
/// and takes every other fingerprint from `previous_fps`, the fingerprints of `previous` (the
/// state the reload replaced). Both states are sorted by device, so this is one linear merge.
DesiredFingerprints fingerprint_desired_incremental(const config::DesiredState& state,
                                                    const config::DesiredState& previous,
                                                    const std::vector<core::Fingerprint>& previous_fps,
                                                    const std::vector<core::DeviceId>& affected,
                                                    std::string_view salt,
                                                    const config::EnvLookup& env);

/// The plan's input: binding i of `state` with fps[i] and index i (fps.size() must be
/// state.bindings.size()). Diagnostics stay empty.
PreparedDesired with_fingerprints(const config::DesiredState& state,
                                  const std::vector<core::Fingerprint>& fps);

/// Loads the desired state at `path` for a one-shot command, never a Git checkout in
/// progress: while `.git/index.lock` exists, or when HEAD moved during the load, it waits a
/// second and loads again, 30 s at most (a lock left by a git that crashed must not hang a CI
/// job). False, with an error logged, when it gave up.
bool load_settled_checkout(const std::filesystem::path& path, config::LoadResult& out);

}  // namespace thingsync::engine
