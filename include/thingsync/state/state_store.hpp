#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "thingsync/core/binding.hpp"
#include "thingsync/core/binding_lists.hpp"
#include "thingsync/core/delete_rules.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/packed.hpp"
#include "thingsync/state/medium.hpp"

namespace thingsync::state {

/// A create whose POST may have been sent but whose outcome is not known yet. After a crash
/// the next pass resolves it by looking the device up, never by a second POST.
struct PendingCreate {
  core::DeviceId device;
  std::int64_t since_ms = 0;
};

/// A device whose last operation failed permanently; it waits until next_attempt_ms.
struct FailureRecord {
  std::uint32_t failures = 0;
  std::int64_t next_attempt_ms = 0;
  std::string last_error;  ///< status and problem title/detail; never a secret
};

/// The state of one thingsync installation: which password (as a salted fingerprint) was last
/// applied to each binding, the pending-create journal, per-device failure backoff, the
/// deletes waiting for their grace and the approvals already used.
///
/// It is kept on a Medium as a snapshot (JSON, replaced atomically) plus an append-only
/// journal (JSON lines); on disk (FileMedium) they are `state.path` and `state.path +
/// ".journal"`, mode 0600. Mutations go to memory and to the journal buffer; flush() writes the
/// buffer with one sync, so a batch of operations costs one fsync; checkpoint() folds the
/// journal into a new snapshot. Loading replays the journal over the snapshot; a torn last
/// journal line (a crash during a write that was never acknowledged) is ignored. Not
/// thread-safe: one owner (the engine's event loop).
class StateStore {
 public:
  /// Opens the state at `path` (a FileMedium). A missing file starts an empty state with a
  /// fresh salt (first adoption); an unreadable or corrupt file is an error that says how to
  /// recover, never discarded. `fresh_salt` supplies the salt for a new state (random bytes in
  /// production).
  static Result<std::unique_ptr<StateStore>> open(const std::filesystem::path& path,
                                                  const std::string& fresh_salt);
  /// Opens the state kept on `medium`, as above.
  static Result<std::unique_ptr<StateStore>> open(std::shared_ptr<Medium> medium,
                                                  const std::string& fresh_salt);

  /// Random bytes from the OS, for fresh_salt.
  static std::string random_salt();

  /// The state file; empty when opened on a Medium.
  const std::filesystem::path& path() const { return path_; }
  const std::string& salt() const { return salt_; }
  bool existed() const { return existed_; }  ///< false on first adoption

  std::size_t size() const { return applied_.size() + odd_applied_.size(); }
  /// All applied records, sorted by binding id (the plan's input).
  std::vector<core::AppliedBinding> applied() const;
  /// The same, packed: what make_plan takes (no strings, in the store's order). It borrows the
  /// store's records: use it before the store changes again.
  core::AppliedList applied_list() const;
  std::optional<core::AppliedBinding> find(const std::string& binding_id) const;
  std::vector<PendingCreate> pending() const;
  const std::unordered_map<std::string, FailureRecord>& failures() const { return failures_; }

  /// Records that the password of fingerprint `fp` was written to the binding, and the
  /// binding's `modifiedAt` that the API answered to that write (0: none known).
  void record_applied(const std::string& binding_id, const core::DeviceId& device,
                      const core::Fingerprint& fp, std::int64_t receipt_ms);
  /// Records a receipt for a binding already recorded, its fingerprint unchanged (a state of
  /// version 2 or older holds none). Does nothing when the binding is not recorded.
  void set_receipt(const std::string& binding_id, std::int64_t receipt_ms);
  void forget(const std::string& binding_id);
  void begin_create(const core::DeviceId& device, std::int64_t now_ms);
  void end_create(const core::DeviceId& device);
  /// Records a permanent failure; the device waits min(base * 2^(n-1), cap) before the next try.
  void record_failure(const core::DeviceId& device, std::string error, std::int64_t now_ms,
                      std::int64_t base_ms = 30'000, std::int64_t cap_ms = 3'600'000);
  void clear_failure(const core::DeviceId& device);
  /// Binds this state to the API it records: `api_base_url` (api.baseUrl; trailing slashes
  /// do not count) and `scope` (scope.clientId, "" for none). A state of another API or scope
  /// is refused, saying how to recover; a state that names none (new, or written before
  /// thingsync recorded it) takes this one, written with the next snapshot.
  Result<Ok> claim(std::string_view api_base_url, std::string_view scope);
  /// Drops records of bindings that no longer exist remotely (after a complete list).
  void retain_only(const core::BindingIdSet& live_binding_ids);

  /// Deletes waiting for their grace (sync.deleteAfter): when their reason was first seen and
  /// last confirmed (core::hold_deletes()), sorted by binding id. Kept across restarts.
  std::vector<core::Tombstone> tombstones() const;
  /// Replaces them with `keep` (what core::hold_deletes() returned); journals the difference.
  void set_tombstones(const std::vector<core::Tombstone>& keep);
  /// Whether an approval of a blocked delete set (its hash) was used already: each is used once.
  bool approval_used(std::string_view hash) const;
  void use_approval(const std::string& hash, std::int64_t now_ms);

  /// Appends buffered journal records and syncs once. Cheap when nothing is buffered. On an
  /// error nothing buffered counts as durable: the records stay buffered, and the next flush
  /// writes them with a new snapshot (the journal's tail can no longer be trusted).
  Result<Ok> flush();
  /// Writes a new snapshot atomically and empties the journal.
  Result<Ok> checkpoint();
  /// Whether records wait in the buffer for flush().
  bool journal_buffered() const { return !journal_buffer_.empty(); }
  /// Journal records written since the last checkpoint.
  std::size_t journal_records() const { return journal_records_; }

  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

 private:
  struct Applied {
    core::DeviceId device;
    core::Fingerprint fp;
    std::int64_t receipt_ms = 0;
  };
  // One applied record in 48 bytes (plus ~5-10 of index): the store holds one per binding of
  // the fleet for the daemon's whole life. A binding whose id is not a lower-case UUID, or
  // whose receipt does not fit 6 bytes, is an Applied in odd_applied_ instead.
  using AppliedRec = core::AppliedRecord;  // a plan's AppliedList borrows them
  static_assert(sizeof(AppliedRec) == 48);
  void put_applied(const std::string& binding_id, const core::DeviceId& device,
                   const core::Fingerprint& fp, std::int64_t receipt_ms);
  bool erase_applied(const std::string& binding_id);
  // False when the binding is not recorded or already has this receipt.
  bool put_receipt(const std::string& binding_id, std::int64_t receipt_ms);
  explicit StateStore(std::shared_ptr<Medium> medium);
  Result<Ok> load_snapshot(bool& existed);
  Result<Ok> replay_journal();
  Result<Ok> apply_line(std::string_view line);
  void append(std::string line);
  void release_journal_buffer();

  std::shared_ptr<Medium> medium_;
  struct Owner {
    std::string api;
    std::string scope;
  };
  std::optional<Owner> owner_;
  std::filesystem::path path_;
  std::string salt_;
  bool existed_ = false;  // the snapshot existed when opened
  bool on_disk_ = false;  // a snapshot with our salt, of today's version, is on the medium
  int version_ = 0;       // of the snapshot as loaded (0: none)
  // The journal's tail cannot take an append (a torn last line, a failed write or sync): the
  // next flush writes a snapshot instead.
  bool rewrite_ = false;
  core::PackedUuidTable<AppliedRec> applied_;                // ids that are lower-case UUIDs
  std::unordered_map<std::string, Applied> odd_applied_;     // see AppliedRec
  std::unordered_map<std::string, PendingCreate> pending_;   // by canonical device id
  std::unordered_map<std::string, FailureRecord> failures_;  // by canonical device id
  std::map<std::string, core::Tombstone, std::less<>> tombstones_;  // by binding id
  std::map<std::string, std::int64_t, std::less<>> approvals_;      // used: hash -> when
  std::string journal_buffer_;
  std::size_t journal_records_ = 0;
};

}  // namespace thingsync::state
