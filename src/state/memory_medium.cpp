#include "thingsync/state/medium.hpp"

#include <algorithm>
#include <sstream>

namespace thingsync::state {

void MemoryMedium::crash(std::size_t unsynced_kept) {
  journal_.append(unsynced_, 0, std::min(unsynced_kept, unsynced_.size()));
  unsynced_.clear();
}

Result<Ok> MemoryMedium::refused(std::string_view what) const {
  return Result<Ok>::failure(Error{"cannot " + std::string(what) + ": injected write failure"});
}

Result<std::unique_ptr<std::istream>> MemoryMedium::read_snapshot() {
  if (!snapshot_) return std::unique_ptr<std::istream>();
  return std::unique_ptr<std::istream>(std::make_unique<std::istringstream>(*snapshot_));
}

Result<Ok> MemoryMedium::replace_snapshot(std::string_view bytes) {
  if (fail_writes_) return refused("write state file " + snapshot_name());
  snapshot_ = std::string(bytes);
  return Ok{};
}

Result<std::unique_ptr<std::istream>> MemoryMedium::read_journal() {
  return std::unique_ptr<std::istream>(std::make_unique<std::istringstream>(journal_ + unsynced_));
}

Result<Ok> MemoryMedium::append_journal(std::string_view bytes) {
  if (fail_writes_) {
    unsynced_ += bytes.substr(0, bytes.size() / 2);
    return refused("write state journal " + journal_name());
  }
  unsynced_ += bytes;
  return Ok{};
}

Result<Ok> MemoryMedium::sync_journal() {
  if (fail_writes_) return refused("write state journal " + journal_name());
  journal_ += unsynced_;
  unsynced_.clear();
  return Ok{};
}

Result<Ok> MemoryMedium::clear_journal() {
  if (fail_writes_) return refused("truncate state journal " + journal_name());
  journal_.clear();
  unsynced_.clear();
  return Ok{};
}

}  // namespace thingsync::state
