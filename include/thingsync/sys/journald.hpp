#pragma once

#include <span>
#include <string>

namespace thingsync::sys {

/// Sends one structured entry to journald (sd_journal_sendv): each field is "NAME=value",
/// NAME in upper case; values may hold newlines or any bytes. Returns 0, or the negative errno
/// of the failure (-ENOENT or -ECONNREFUSED: no journald runs here). Thread-safe.
int journal_send(std::span<const std::string> fields);

}  // namespace thingsync::sys
