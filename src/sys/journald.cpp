#include "thingsync/sys/journald.hpp"

#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <vector>

namespace thingsync::sys {

int journal_send(std::span<const std::string> fields) {
  std::vector<iovec> iov;
  iov.reserve(fields.size());
  for (const auto& f : fields) {
    // sd_journal_sendv() only reads through iov_base.
    iov.push_back({const_cast<char*>(f.data()), f.size()});
  }
  return sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

}  // namespace thingsync::sys
