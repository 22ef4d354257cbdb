#include "thingsync/state/writer_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace thingsync::state {
namespace {

constexpr const char* kUnknownHolder = "an unknown process";

// What the holder wrote: "pid=123 command=thingsync run", at most a line of it.
std::string holder_of(int fd) {
  char buf[256];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return kUnknownHolder;
  std::string s(buf, static_cast<std::size_t>(n));
  if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return s.empty() ? kUnknownHolder : s;
}

}  // namespace

Result<std::unique_ptr<WriterLock>> WriterLock::acquire(const std::filesystem::path& state_path,
                                                        std::string_view command) {
  using R = Result<std::unique_ptr<WriterLock>>;
  // Through symbolic links: two configs that name one state file by different paths (one of
  // them a link) must meet at one lock.
  std::error_code ec;
  auto path = std::filesystem::weakly_canonical(state_path, ec);
  if (ec) path = state_path;
  path += ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return R::failure(Error{"cannot open the state lock file " + path.string() + ": " +
                            std::strerror(errno) +
                            " (state.path must be in an existing, writable directory)"});
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    // The holder writes its name right after it locks: give it a moment to.
    std::string holder = holder_of(fd);
    for (int i = 0; i < 20 && holder == kUnknownHolder; ++i) {
      ::usleep(5'000);
      holder = holder_of(fd);
    }
    std::string msg = err == EWOULDBLOCK
                          ? "the state file " + state_path.string() + " is in use by another " +
                                "thingsync (" + holder + "; lock " + path.string() +
                                "): one writer at a time. Stop it first, or give this one " +
                                "its own state.path. Do not delete the lock file: the lock is " +
                                "the kernel's, on the open file, and goes with its process"
                          : "cannot lock " + path.string() + ": " + std::strerror(err);
    ::close(fd);
    return R::failure(Error{std::move(msg), err == EWOULDBLOCK});
  }
  const std::string line =
      "pid=" + std::to_string(::getpid()) + " command=" + std::string(command) + "\n";
  // Best effort: the lock is what counts; the text only names the holder to others.
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, line.data(), line.size(), 0) < 0) {
    // Nothing to do: a full disk must not stop the one writer.
  }
  return std::unique_ptr<WriterLock>(new WriterLock(std::move(path), fd));
}

bool WriterLock::still_held() const {
  struct stat held {}, now {};
  if (::fstat(fd_, &held) != 0 || ::stat(path_.c_str(), &now) != 0) return false;
  return held.st_dev == now.st_dev && held.st_ino == now.st_ino;
}

WriterLock::~WriterLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace thingsync::state
