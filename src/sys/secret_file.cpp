#include "thingsync/sys/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace thingsync::sys {
namespace {

// What a file that is not a regular file is, for a message; "" for a regular file.
std::string_view not_regular(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return {};
    case S_IFIFO:
      return "a FIFO (named pipe)";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFDIR:
      return "a directory";
    case S_IFSOCK:
      return "a socket";
    default:
      return "an unknown kind of file";
  }
}

std::string bytes(std::size_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

// Closes a descriptor on every way out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Zeroes a buffer that held a secret on every way out (core::Secret does so for the value).
class Wipe {
 public:
  explicit Wipe(std::string& s) : s_(s) {}
  ~Wipe() {
    volatile char* p = s_.data();
    for (std::size_t i = 0; i < s_.size(); ++i) p[i] = 0;
  }
  Wipe(const Wipe&) = delete;
  Wipe& operator=(const Wipe&) = delete;

 private:
  std::string& s_;
};

}  // namespace

core::Result<core::Secret, std::string> read_secret_file(const std::string& path,
                                                         std::string_view name_view,
                                                         std::size_t limit) {
  using SecretOrError = core::Result<core::Secret, std::string>;
  const std::string name(name_view);
  const auto refuse = [&](std::string_view is) {
    return SecretOrError::failure(name + " is " + std::string(is) + ", not a regular file");
  };
  const auto too_large = [&](std::size_t size) {
    return SecretOrError::failure(name + " is " + bytes(size) + ", " + bytes(size - limit) +
                                  " over the limit of " + bytes(limit));
  };
  const auto failed = [&](int err) {
    return SecretOrError::failure("cannot read " + name + ": " + std::strerror(err));
  };
  // Looked at before it is opened: opening a device may already act (a tape rewinds, a
  // watchdog starts).
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return failed(errno);
  if (auto is = not_regular(st.st_mode); !is.empty()) return refuse(is);
  // The path may have been replaced since: O_NONBLOCK keeps the open (and a read) of a FIFO
  // from waiting for a writer, and what was opened is checked again.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return failed(errno);
  if (::fstat(fd.get(), &st) != 0) return failed(errno);
  if (auto is = not_regular(st.st_mode); !is.empty()) return refuse(is);
  if (static_cast<std::uintmax_t>(st.st_size) > limit) {
    return too_large(static_cast<std::size_t>(st.st_size));
  }
  // One byte more than the limit: a file that grew since fstat, or one whose size says nothing
  // (as in /proc), is still caught without reading it whole.
  std::string buffer(limit + 1, '\0');
  const Wipe wipe(buffer);
  std::size_t got = 0;
  while (got <= limit) {
    const ssize_t n = ::read(fd.get(), buffer.data() + got, limit + 1 - got);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return failed(errno);
    }
    got += static_cast<std::size_t>(n);
  }
  if (got > limit) {
    return SecretOrError::failure(name + " is larger than the limit of " + bytes(limit));
  }
  std::string_view text(buffer.data(), got);
  if (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  }
  return core::Secret(std::string(text));
}

}  // namespace thingsync::sys
