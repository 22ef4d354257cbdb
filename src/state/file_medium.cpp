#include "thingsync/state/medium.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace thingsync::state {
namespace {

std::string errno_text() { return std::strerror(errno); }

// Writes all of `data` to fd; false with errno set on failure.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

FileMedium::FileMedium(std::filesystem::path path)
    : path_(std::move(path)), journal_path_(path_.string() + ".journal") {}

FileMedium::~FileMedium() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

Result<std::unique_ptr<std::istream>> FileMedium::read_snapshot() {
  auto in = std::make_unique<std::ifstream>(path_, std::ios::binary);
  if (!*in) {
    if (errno == ENOENT) return std::unique_ptr<std::istream>();
    return Result<std::unique_ptr<std::istream>>::failure(
        Error{"cannot read state file " + path_.string() + ": " + errno_text()});
  }
  return std::unique_ptr<std::istream>(std::move(in));
}

namespace {

// A temporary file beside the snapshot, mode 0600; commit: fsync, rename over it, fsync of the
// directory. Removed when dropped before its commit.
class FileSnapshotWriter final : public Medium::SnapshotWriter {
 public:
  FileSnapshotWriter(std::filesystem::path path, std::string tmp, int fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  ~FileSnapshotWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  FileSnapshotWriter(const FileSnapshotWriter&) = delete;
  FileSnapshotWriter& operator=(const FileSnapshotWriter&) = delete;

  Result<Ok> write(std::string_view bytes) override {
    if (fd_ < 0 || !write_all(fd_, bytes)) return failed(errno_text());
    return Ok{};
  }
  Result<Ok> commit() override {
    if (fd_ < 0) return failed("written in part");
    const bool ok = ::fsync(fd_) == 0;
    const std::string why = ok ? "" : errno_text();
    ::close(fd_);
    fd_ = -1;
    if (!ok) return failed(why);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) return failed(errno_text());
    committed_ = true;
    if (!fsync_dir(path_.parent_path())) {
      return Result<Ok>::failure(
          Error{"cannot fsync the directory of " + path_.string() + ": " + errno_text()});
    }
    return Ok{};
  }

 private:
  Result<Ok> failed(const std::string& why) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return Result<Ok>::failure(Error{"cannot write state file " + path_.string() + ": " + why});
  }

  std::filesystem::path path_;
  std::string tmp_;
  int fd_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<Medium::SnapshotWriter>> FileMedium::begin_snapshot() {
  using R = Result<std::unique_ptr<SnapshotWriter>>;
  const auto dir = path_.parent_path();
  std::string tmpl = (dir.empty() ? std::string(".") : dir.string()) + "/." +
                     path_.filename().string() + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    return R::failure(
        Error{"cannot create a temporary file beside " + path_.string() + ": " + errno_text()});
  }
  if (::fchmod(fd, 0600) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    ::unlink(tmpl.c_str());
    return R::failure(Error{"cannot write state file " + path_.string() + ": " + why});
  }
  return std::unique_ptr<SnapshotWriter>(
      std::make_unique<FileSnapshotWriter>(path_, std::move(tmpl), fd));
}

Result<std::unique_ptr<std::istream>> FileMedium::read_journal() {
  auto in = std::make_unique<std::ifstream>(journal_path_, std::ios::binary);
  if (!*in) {
    if (errno == ENOENT) return std::unique_ptr<std::istream>();
    return Result<std::unique_ptr<std::istream>>::failure(
        Error{"cannot read state journal " + journal_path_.string() + ": " + errno_text()});
  }
  return std::unique_ptr<std::istream>(std::move(in));
}

Result<Ok> FileMedium::append_journal(std::string_view bytes) {
  if (journal_fd_ < 0) {
    journal_fd_ = ::open(journal_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (journal_fd_ < 0) {
      return Result<Ok>::failure(
          Error{"cannot open state journal " + journal_path_.string() + ": " + errno_text()});
    }
  }
  if (!write_all(journal_fd_, bytes)) return journal_write_error();
  return Ok{};
}

Result<Ok> FileMedium::sync_journal() {
  if (journal_fd_ >= 0 && ::fdatasync(journal_fd_) != 0) return journal_write_error();
  return Ok{};
}

Result<Ok> FileMedium::journal_write_error() const {
  return Result<Ok>::failure(
      Error{"cannot write state journal " + journal_path_.string() + ": " + errno_text()});
}

Result<Ok> FileMedium::clear_journal() {
  if (journal_fd_ >= 0) {
    ::close(journal_fd_);
    journal_fd_ = -1;
  }
  if (::truncate(journal_path_.c_str(), 0) != 0 && errno != ENOENT) {
    return Result<Ok>::failure(
        Error{"cannot truncate state journal " + journal_path_.string() + ": " + errno_text()});
  }
  return Ok{};
}

}  // namespace thingsync::state
