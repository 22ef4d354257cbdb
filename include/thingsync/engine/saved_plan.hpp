#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/config/env.hpp"
#include "thingsync/core/binding.hpp"
#include "thingsync/core/plan.hpp"
#include "thingsync/core/result.hpp"
#include "thingsync/engine/desired.hpp"

namespace thingsync::engine {

/// A plan saved by `plan --out FILE`, which `apply FILE` carries out only if nothing it rests
/// on has moved (docs/reference.md, "Saved plans"). It names what the plan was made on: the
/// API and scope, the desired state (a hash of every desired device with the salted
/// fingerprint of its password, and the Git commit when the desired state is a checkout), the
/// targets and the delete limit; then its operations and every listed binding of a device it
/// touches, with modifiedAt. IDs, times and hashes only: never a secret.
struct SavedPlan {
  static constexpr int kFormatVersion = 1;

  std::string api_base_url;
  std::string scope_client_id;  ///< "" without scope.clientId
  /// The desired state's identity: SHA-256 over every device and the HMAC of its password
  /// keyed with `salt`, a random key of this plan's own (hex in the file), so that the file
  /// tells nothing about a password and does not depend on the state file.
  std::string salt;
  std::string desired_hash;
  std::string desired_commit;        ///< "" when the desired state is not in a Git checkout
  std::vector<std::string> targets;  ///< canonical device IDs; empty: the whole fleet
  std::string max_deletes;           ///< the delete limit in force ("5%", "12")
  /// One line per operation, blocked deletes included: "create imei:…",
  /// "update imei:… id=… (password changed)", "delete imei:… id=… (duplicate)",
  /// "blocked delete imei:… id=… (exceeds sync.maxDeletes)"; sorted.
  std::vector<std::string> operations;
  std::vector<std::string> devices;  ///< canonical IDs of the devices the operations touch
  struct Binding {
    std::string id;
    std::string device;  ///< canonical
    std::int64_t modified_at_ms = 0;
    std::string modified_by;
    friend bool operator==(const Binding&, const Binding&) = default;
  };
  std::vector<Binding> bindings;  ///< sorted by id
};

/// What `plan` would save for `plan`, made on `listed` (its operations and the bindings of the
/// devices they touch, and of the devices in `also`; the rest is the caller's to fill in).
SavedPlan describe_plan(const core::Plan& plan, std::span<const core::RemoteBinding> listed,
                        std::span<const std::string> also = {});

/// SavedPlan::desired_hash of `desired` with the plan's `salt`. Resolves every password
/// source; nullopt (with the diagnostics in `diagnostics`) when one fails.
std::optional<std::string> desired_identity(const config::DesiredState& desired,
                                            std::string_view salt, const config::EnvLookup& env,
                                            core::Diagnostics& diagnostics);

/// The saved file: one JSON object with "format_version" and, for a reader, the plan as
/// `plan --output json` shows it.
std::string saved_plan_json(const SavedPlan& saved, const core::Plan& plan);

/// Reads a saved file; the error says what is wrong (not JSON, another format_version, a
/// missing field).
core::Result<SavedPlan, std::string> parse_saved_plan(std::string_view text);

/// Everything that differs between a saved plan and the one made now on the same terms, one
/// line each ("binding … of imei:… was modified at … by …"); empty when nothing moved.
std::vector<std::string> moved_since(const SavedPlan& saved, const SavedPlan& now);

}  // namespace thingsync::engine
