#pragma once

#include <cstddef>
#include <filesystem>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "thingsync/core/result.hpp"

namespace thingsync::state {

struct Error {
  std::string message;
  bool busy = false;  ///< WriterLock: another process holds the lock (not an I/O error)
};
template <typename T>
using Result = core::Result<T, Error>;
struct Ok {};

/// Where the state store keeps its two files: a snapshot that is only ever replaced whole,
/// and a journal that is only ever appended to or emptied. Errors carry messages for the
/// operator that name what failed. Not thread-safe.
class Medium {
 public:
  virtual ~Medium() = default;

  /// The snapshot, to read from the start (a stream, so that a large one is never held whole);
  /// nullptr when there is none.
  virtual Result<std::unique_ptr<std::istream>> read_snapshot() = 0;
  /// A new snapshot, written piece by piece so that a large one is never held whole.
  class SnapshotWriter {
   public:
    virtual ~SnapshotWriter() = default;
    virtual Result<Ok> write(std::string_view bytes) = 0;
    /// Replaces the snapshot with what was written, atomically (a crash leaves the old one or
    /// the new one) and durably (on success it survives a crash). A writer dropped without a
    /// commit changes nothing.
    virtual Result<Ok> commit() = 0;
  };
  virtual Result<std::unique_ptr<SnapshotWriter>> begin_snapshot() = 0;
  /// Replaces the snapshot with `bytes`: begin_snapshot(), write(), commit().
  Result<Ok> replace_snapshot(std::string_view bytes);

  /// The journal as written so far, to read from the start; nullptr when there is none.
  virtual Result<std::unique_ptr<std::istream>> read_journal() = 0;
  /// Appends `bytes` to the journal; not durable before sync_journal().
  virtual Result<Ok> append_journal(std::string_view bytes) = 0;
  /// Makes every byte appended so far durable.
  virtual Result<Ok> sync_journal() = 0;
  /// Empties the journal.
  virtual Result<Ok> clear_journal() = 0;

  /// What the operator knows the snapshot and the journal by, for messages.
  virtual std::string snapshot_name() const = 0;
  virtual std::string journal_name() const = 0;
};

/// The snapshot at `path` and the journal at `path + ".journal"`, both mode 0600. The
/// snapshot is replaced by a temporary file in the same directory, fsync, rename and an
/// fsync of the directory; sync_journal() is one fdatasync.
class FileMedium final : public Medium {
 public:
  explicit FileMedium(std::filesystem::path path);
  ~FileMedium() override;
  FileMedium(const FileMedium&) = delete;
  FileMedium& operator=(const FileMedium&) = delete;

  Result<std::unique_ptr<std::istream>> read_snapshot() override;
  Result<std::unique_ptr<SnapshotWriter>> begin_snapshot() override;
  Result<std::unique_ptr<std::istream>> read_journal() override;
  Result<Ok> append_journal(std::string_view bytes) override;
  Result<Ok> sync_journal() override;
  Result<Ok> clear_journal() override;
  std::string snapshot_name() const override { return path_.string(); }
  std::string journal_name() const override { return journal_path_.string(); }

 private:
  Result<Ok> journal_write_error() const;  // from errno

  std::filesystem::path path_;
  std::filesystem::path journal_path_;
  int journal_fd_ = -1;  // open for appending from the first append until clear_journal()
};

/// The two files in memory, for tests and simulations: what a crash keeps is told apart from
/// what it loses. A replaced snapshot and an emptied journal are durable at once; appended
/// journal bytes become durable at sync_journal(). Readers see every byte written, as readers
/// of a file do before a crash. Share one medium (std::shared_ptr) between a store and the
/// store opened after a crash().
class MemoryMedium final : public Medium {
 public:
  MemoryMedium() = default;

  /// Loses every journal byte appended since the last successful sync, except the first
  /// `unsynced_kept` of them (a write that reached the disk in part, as a torn line).
  void crash(std::size_t unsynced_kept = 0);
  /// While true, every write fails with an error: a failing append first stores the first
  /// half of its bytes (unsynced, as the short write of a full disk), a failing sync makes
  /// nothing durable, a failing replace or clear changes nothing.
  void fail_writes(bool fail) { fail_writes_ = fail; }

  /// The durable snapshot (nullopt: none) and journal bytes.
  const std::optional<std::string>& snapshot() const { return snapshot_; }
  const std::string& durable_journal() const { return journal_; }
  /// Journal bytes appended but not synced yet.
  const std::string& unsynced_journal() const { return unsynced_; }

  Result<std::unique_ptr<std::istream>> read_snapshot() override;
  Result<std::unique_ptr<SnapshotWriter>> begin_snapshot() override;
  Result<std::unique_ptr<std::istream>> read_journal() override;
  Result<Ok> append_journal(std::string_view bytes) override;
  Result<Ok> sync_journal() override;
  Result<Ok> clear_journal() override;
  std::string snapshot_name() const override { return "memory:state"; }
  std::string journal_name() const override { return "memory:state.journal"; }

 private:
  Result<Ok> refused(std::string_view what) const;

  std::optional<std::string> snapshot_;
  std::string journal_;   // durable
  std::string unsynced_;  // appended after journal_, lost by a crash
  bool fail_writes_ = false;
};

}  // namespace thingsync::state
