#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/core/binding.hpp"
#include "thingsync/core/plan.hpp"
#include "thingsync/obs/metrics.hpp"

namespace thingsync::engine {

/// journald's MESSAGE_ID of every write record: `journalctl MESSAGE_ID=…` lists them all.
inline constexpr std::string_view kWriteMessageId = "a5a65886759848319ae0d2cecc736773";

/// What the API said about a binding's last write.
struct WriteStamp {
  std::int64_t modified_at_ms = 0;  ///< 0: not known
  std::string modified_by;
  friend bool operator==(const WriteStamp&, const WriteStamp&) = default;
};

enum class WriteResult : std::uint8_t {
  kOk,
  kFailed,
  kUnknown,  ///< a POST whose answer was lost: it may have created a binding
};
std::string_view to_string(WriteResult r);

/// One write to the API (POST, PUT or DELETE) and its outcome: a line of the change journal
/// (docs/reference.md, "Change journal"). IDs, times and reasons only: never a secret.
struct WriteRecord {
  std::int64_t time_ms = 0;  ///< when the outcome was known, ms since the epoch
  obs::Action action = obs::Action::kCreate;
  std::string device;      ///< canonical
  std::string binding_id;  ///< "" for a create that got no binding
  WriteResult result = WriteResult::kOk;
  int status = 0;              ///< the HTTP status when known (a failure's, a delete's 404); else 0
  std::string reason;          ///< updates and deletes: why
  std::string error;           ///< failures: api::ApiError::to_string()
  std::string plan_hash;       ///< plan_hash() of the pass's plan
  std::string desired_commit;  ///< "" when the desired state is not a Git checkout
  std::optional<WriteStamp> before;  ///< the binding as last seen before the write
  std::optional<WriteStamp> after;   ///< the binding as the write's answer gave it
  friend bool operator==(const WriteRecord&, const WriteRecord&) = default;
};

/// The record as one line of JSON, without the newline.
std::string to_json_line(const WriteRecord& record);
/// A line to_json_line() made; nullopt for anything else.
std::optional<WriteRecord> parse_json_line(std::string_view line);

/// The first 16 hex digits of the SHA-256 of the plan's operation lines (as `plan --out`
/// saves them, sorted), each ended by a newline: the same plan gives the same hash.
std::string plan_hash(const core::Plan& plan);

/// Records every write to the API: a line appended to a file (state.journalPath), and a
/// structured journald entry with MESSAGE_ID kWriteMessageId. A record that cannot be written
/// is logged (once until the writes succeed again) and dropped: the journal is an audit
/// trail, and it never stops or fails a write to the API. Each record opens the file to
/// append and closes it again, so a rotation that renames the file (logrotate without
/// copytruncate) is followed at the next record; lines are not fsynced (the state file, not
/// this journal, is what thingsync relies on). Not thread-safe: use it from one thread.
class ChangeJournal {
 public:
  struct Options {
    std::optional<std::filesystem::path> path;  ///< unset: journald only
    bool journald = true;                       ///< also send each record to journald
  };
  explicit ChangeJournal(Options options);

  void record(const WriteRecord& record);

  /// The executor's hook for one pass (ExecOptions::on_write): each record gets the pass's
  /// plan hash and desired commit, and a record without `before` gets what `observed` shows
  /// for its binding (the plan's observation). Keeps a reference to this journal.
  std::function<void(WriteRecord)> hook(const core::Plan& plan,
                                        std::span<const core::RemoteBinding> observed,
                                        std::string desired_commit);

 private:
  void append(const std::string& line);
  void send(const WriteRecord& record, const std::string& line);

  Options opts_;
  bool file_failing_ = false;
  bool journald_failing_ = false;
};

/// The devices whose bindings the plan updates or deletes (sorted, once each): whose observed
/// bindings ChangeJournal::hook() needs.
std::vector<core::DeviceId> written_devices(const core::Plan& plan);

}  // namespace thingsync::engine
