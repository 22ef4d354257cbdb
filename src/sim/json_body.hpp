#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace thingsync::sim {

/// The JSON type of a member; kAbsent when the object has no such member.
enum class JsonType : std::uint8_t { kAbsent, kNull, kBoolean, kNumber, kString, kArray, kObject };

/// One member of the top-level object. For a string, `text` is its decoded value (UTF-8,
/// escapes resolved; it points into the body or into `decoded`); for a boolean, `boolean`.
struct JsonMember {
  JsonType type = JsonType::kAbsent;
  bool boolean = false;
  std::string_view text;
  std::string decoded;  ///< storage for a string that had escapes
};

/// The members of a binding write (POST/PUT, and the admin's) read straight from the body,
/// without a DOM. It accepts what nlohmann::json::parse(body, nullptr, false) accepts and reads
/// the same values: RFC 8259 grammar with no comments; strings must be valid UTF-8 with no raw
/// control character, and \u escapes must pair surrogates; a number whose value overflows a
/// double is an error; a UTF-8 byte order mark may start the body; when a key repeats, its last
/// value counts. Nested values are checked and skipped. One difference: nlohmann ends the input
/// at a NUL byte, this reader rejects any raw NUL, as JSON does. tests/sim/json_body_test.cpp
/// compares it with nlohmann.
class BindingBody {
 public:
  enum class Status : std::uint8_t { kObject, kInvalid, kNotObject };

  /// Parses `body`; the members' views stay valid while `body` and this object live unchanged.
  Status parse(std::string_view body);

  /// The members the API reads, then the admin's (the API ignores modifiedBy/modifiedAt, which
  /// are read-only there).
  JsonMember device_id, password, client_id, allow_duplicate, modified_by, modified_at;

 private:
  JsonMember* member(std::string_view raw_key, bool escaped);
  bool string_at(std::size_t& pos, std::string_view& raw, bool& escaped) const;
  bool number_at(std::size_t& pos) const;
  void ws(std::size_t& pos) const;

  std::string_view in_;
  std::vector<char> stack_;  ///< '{' or '[' per open container
  std::string key_;          ///< a decoded key that had escapes
};

/// True when nlohmann::json writes `s` as it is between quotes: printable ASCII without '"'
/// and '\\'. Such strings can be written without the library, byte for byte the same.
bool json_plain(std::string_view s);

/// Decodes the raw content of a valid JSON string (between its quotes) into `out`.
void json_unescape(std::string_view raw, std::string& out);

}  // namespace thingsync::sim
