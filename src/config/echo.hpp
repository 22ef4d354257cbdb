#pragma once

// User input quoted back in a message. A device ID of 50 MB, a key name of a megabyte, must not
// become a message (and a log line, and a terminal full) of that size: what a message quotes is
// cut to about kEchoBytes, and the cut says so.

#include <cstddef>
#include <string>
#include <string_view>

namespace thingsync::config::detail {

/// About how many bytes of one piece of user input a message quotes.
inline constexpr std::size_t kEchoBytes = 100;

/// `text` whole when it is at most kEchoBytes long; else its first kEchoBytes bytes (less, so
/// as not to split a UTF-8 character) and a marker that says it was cut and how long it was:
/// "imei:1234...[cut: 52428805 bytes in all]".
std::string echo(std::string_view text);

/// echo() for a path: keeps its start and its end (the file name), cuts the middle.
std::string echo_path(std::string_view path);

}  // namespace thingsync::config::detail
