#pragma once

#include <cstdint>
#include <string_view>

namespace thingsync::sim {

/// The Date header's IMF-fixdate (RFC 9110, section 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
/// Formats once per second. Single-threaded.
class HttpDate {
 public:
  /// The date of `unix_seconds` (years 0000-9999); valid until a call with another second.
  std::string_view format(std::int64_t unix_seconds);

 private:
  std::int64_t second_ = 0;
  bool set_ = false;
  char text_[29] = {};
};

}  // namespace thingsync::sim
