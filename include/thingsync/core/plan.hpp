#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/core/binding.hpp"
#include "thingsync/core/binding_lists.hpp"

namespace thingsync::core {

/// `sync.maxDeletes`: an absolute count or a percentage of the managed (observed in scope)
/// bindings. A delete set larger than the limit is blocked as a whole.
struct DeleteLimit {
  enum class Kind : std::uint8_t { kCount, kPercent };
  Kind kind = Kind::kPercent;
  double value = 5.0;
  /// The largest number of deletes allowed when `managed` bindings are observed:
  /// floor(value% of managed) for kPercent, floor(value) for kCount; 0 for values <= 0.
  std::size_t resolve(std::size_t managed) const;
};

/// "12" (a count, 0 or more) or "5%" (0% to 100%); nullopt for anything else.
std::optional<DeleteLimit> parse_delete_limit(std::string_view text);
/// "12" or "5%", as parse_delete_limit() reads it.
std::string to_string(const DeleteLimit& limit);

struct SyncPolicy {
  bool prune = false;
  DeleteLimit max_deletes;
  /// What a percentage limit is of. Unset: the observed bindings given to make_plan; a pass
  /// over some devices only (`--target`) sets the whole fleet's count, so that its guard is
  /// the fleet's, not a percentage of a few bindings.
  std::optional<std::size_t> managed;
};

enum class UpdateReason : std::uint8_t {
  kPasswordChanged,  ///< the source yields a password other than the one last applied
  kNotRecorded,      ///< no state for this binding (first adoption, lost state file)
  kDeviceChanged,    ///< the state remembers this binding for another device
  kChangedOutside,   ///< its modifiedAt is not the receipt of thingsync's last write
};
std::string_view to_string(UpdateReason r);

enum class DeleteReason : std::uint8_t {
  kNotDesired,  ///< the device is in no desired-state file
  kDuplicate,   ///< a second binding for a desired device; the oldest one is kept
};
std::string_view to_string(DeleteReason r);

enum class BlockReason : std::uint8_t {
  kMaxDeletes,      ///< the delete set exceeds sync.maxDeletes
  kPruneDisabled,   ///< a duplicate that would be deleted, but prune is off
};
std::string_view to_string(BlockReason r);

struct PlannedCreate {
  DeviceId device;
  std::uint32_t desired_index = 0;  ///< DesiredBinding::index
};
struct PlannedUpdate {
  DeviceId device;
  std::string binding_id;
  UpdateReason reason;
  std::uint32_t desired_index = 0;
  /// kChangedOutside: when and by whom the API says the binding was last written.
  std::int64_t modified_at_ms = 0;
  std::string modified_by;
};
struct PlannedDelete {
  DeviceId device;
  std::string binding_id;
  DeleteReason reason;
  /// kDuplicate: the binding kept for the device. It must be confirmed live before this one
  /// is deleted.
  std::string kept_id;
};
/// A binding whose state record has no receipt (a state file of an older version) and whose
/// password is unchanged: its listed modifiedAt becomes the receipt, without a write.
struct ReceiptToRecord {
  std::string binding_id;
  std::int64_t modified_at_ms = 0;
};
struct BlockedDelete {
  PlannedDelete del;
  BlockReason reason;
};
/// A delete that waits: for its grace (sync.deleteAfter) or for a delete window.
struct WaitingDelete {
  enum class Why : std::uint8_t { kGrace, kWindow };
  PlannedDelete del;
  Why why = Why::kGrace;
  std::int64_t not_before_ms = 0;  ///< when it may go at the earliest
};

/// The difference between desired and observed, every list sorted by canonical device ID
/// (then binding ID).
struct Plan {
  std::vector<PlannedCreate> creates;
  std::vector<PlannedUpdate> updates;
  std::vector<PlannedDelete> deletes;
  std::vector<BlockedDelete> blocked;
  std::vector<WaitingDelete> waiting;  ///< core::hold_deletes(): not yet
  std::vector<ReceiptToRecord> receipts;
  std::size_t unchanged = 0;
  std::size_t unmanaged = 0;     ///< remote bindings not desired, left alone because prune is off
  std::size_t delete_limit = 0;  ///< DeleteLimit::resolve() of this pass

  bool empty() const { return creates.empty() && updates.empty() && deletes.empty(); }
  bool guard_blocked() const;  ///< true when any delete was blocked by kMaxDeletes
};

/// The heart of the product: a pure, deterministic function. Inputs need not be sorted and
/// their order does not change the result. `desired` must not hold one device twice (the
/// loader rejects that). Rules (docs/operations.md "Reconciliation"): a desired device without a
/// remote binding is created; of its remote bindings the oldest (created_at_ms, then smaller
/// binding ID) is kept and the others are kDuplicate deletes; the kept one is updated unless
/// its AppliedBinding (found by binding ID) names the same device and fingerprint, and its
/// receipt is the binding's modifiedAt (kChangedOutside when not; a record without a receipt
/// gets one in `receipts`). Remote
/// bindings of undesired devices are kNotDesired deletes with prune, else only counted in
/// `unmanaged`; without prune duplicates are blocked with kPruneDisabled. More deletes than
/// delete_limit = max_deletes.resolve(observed.size()) move to `blocked` (kMaxDeletes) as a
/// whole. Sorts index arrays (12 bytes a binding) and merges; measured in
/// bench/core/plan_bench.cpp.
Plan make_fleet_plan(std::span<const DesiredBinding> desired, const ObservedList& observed,
               const AppliedList& applied, const SyncPolicy& policy);
/// The same on unpacked inputs (packs them first).
Plan make_plan(std::span<const DesiredBinding> desired, std::span<const RemoteBinding> observed,
               std::span<const AppliedBinding> applied, const SyncPolicy& policy);

}  // namespace thingsync::core
