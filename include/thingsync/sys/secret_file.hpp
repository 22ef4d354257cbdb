#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "thingsync/core/result.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::sys {

/// Reads a file that holds a secret (a password, a fleet key, a token, a client secret),
/// without its one trailing newline ("\n" or "\r\n"). Only a regular file of at most `limit`
/// bytes is read: anything else is refused before a byte of it is read, so that a FIFO cannot
/// block the caller, /dev/zero cannot fill its memory and a large file is not read whole. The
/// buffer it read into is zeroed. `name` names the file in messages ("password file /x").
core::Result<core::Secret, std::string> read_secret_file(const std::string& path,
                                                         std::string_view name,
                                                         std::size_t limit);

}  // namespace thingsync::sys
