#pragma once

// JSON bodies of API answers, as every decoder here reads them.

#include <string_view>

#include <nlohmann/json.hpp>

namespace thingsync::api::detail {

/// nlohmann's lexer takes a NUL byte for the end of the input, as in a C string, and so accepts
/// "{...}\0junk". JSON text never holds a raw NUL (RFC 8259: not whitespace, and escaped in
/// strings): a body with one is not JSON.
inline bool has_nul(std::string_view body) { return body.find('\0') != std::string_view::npos; }

/// The body as a DOM; discarded (is_discarded()) when it is not JSON.
inline nlohmann::json parse_json(std::string_view body) {
  if (has_nul(body)) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(body, nullptr, false);
}

}  // namespace thingsync::api::detail
