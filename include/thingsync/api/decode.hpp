#pragma once

// Decoding of Things API answers: pure (no sockets, no Asio), so that the fuzzer and the tests
// link it alone (library thingsync::api_decode, with error.hpp's classify()).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/api/error.hpp"
#include "thingsync/core/binding.hpp"
#include "thingsync/core/result.hpp"

namespace thingsync::api {

/// One page as parsed.
struct Page {
  std::vector<core::RemoteBinding> items;
  std::vector<std::string> skipped;  ///< ids of items whose deviceId did not parse
  std::optional<std::string> next;   ///< the raw `next` link
};
/// Parses a PageOfMqttBindings body. Errors are kProtocol and say what is wrong.
core::Result<Page, ApiError> parse_page(std::string_view body);
/// Parses one MqttBinding body (the answer to GET/POST/PUT).
core::Result<core::RemoteBinding, ApiError> parse_binding(std::string_view body);

/// A kProtocol error: the answer is unusable.
ApiError protocol_error(std::string title, std::string detail = {});

}  // namespace thingsync::api
