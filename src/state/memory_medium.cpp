#include "thingsync/state/medium.hpp"

#include <algorithm>
#include <functional>
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

namespace {

class MemorySnapshotWriter final : public Medium::SnapshotWriter {
 public:
  MemorySnapshotWriter(std::optional<std::string>& snapshot, const bool& fail,
                       std::function<Result<Ok>()> refused)
      : snapshot_(snapshot), fail_(fail), refused_(std::move(refused)) {}
  Result<Ok> write(std::string_view bytes) override {
    if (fail_) return refused_();
    bytes_ += bytes;
    return Ok{};
  }
  Result<Ok> commit() override {
    if (fail_) return refused_();
    snapshot_ = std::move(bytes_);
    return Ok{};
  }

 private:
  std::optional<std::string>& snapshot_;
  const bool& fail_;
  std::function<Result<Ok>()> refused_;
  std::string bytes_;
};

}  // namespace

Result<std::unique_ptr<Medium::SnapshotWriter>> MemoryMedium::begin_snapshot() {
  using R = Result<std::unique_ptr<SnapshotWriter>>;
  auto refuse = [this] { return refused("write state file " + snapshot_name()); };
  if (fail_writes_) return R::failure(refuse().error());
  return std::unique_ptr<SnapshotWriter>(
      std::make_unique<MemorySnapshotWriter>(snapshot_, fail_writes_, refuse));
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
