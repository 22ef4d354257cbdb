// Fuzzes device-ID parsing: core::DeviceId::parse / parse_with_reason and core::is_uuid.
// Invariants: parse and parse_with_reason agree, a rejection always says why; a parsed ID is in
// canonical form (lower case, "<kind>:<value>" or a bare UUID), its canonical form and (for
// prefixed kinds) its URN parse back to the same ID, and letter case never matters.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "thingsync/core/device_id.hpp"

namespace {

using thingsync::core::DeviceId;
using thingsync::core::DeviceKind;

std::string mapped(std::string_view s, char (*f)(char)) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), f);
  return out;
}
char to_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

void check_parsed(const DeviceId& id, std::string_view input) {
  const std::string& c = id.canonical();
  const std::string what = "input '" + std::string(input) + "' -> '" + c + "'";
  FUZZ_CHECK(c == mapped(c, to_lower), "canonical form not lower case: " + what);
  FUZZ_CHECK(c.back() != ':', "canonical form ends in ':': " + what);

  // The canonical form is "<kind>:<value>" (a bare UUID for kUuid), and value() is its tail.
  if (id.kind() == DeviceKind::kUuid) {
    FUZZ_CHECK(thingsync::core::is_uuid(c) && id.value() == c, what);
  } else {
    const std::string prefix = std::string(thingsync::core::kind_name(id.kind())) + ":";
    FUZZ_CHECK(c.rfind(prefix, 0) == 0 && id.value() == c.substr(prefix.size()), what);
  }
  if (id.kind() == DeviceKind::kDvnUuid) FUZZ_CHECK(thingsync::core::is_uuid(id.value()), what);

  // The canonical form parses to itself.
  const auto again = DeviceId::parse(c);
  FUZZ_CHECK(again && *again == id && again->kind() == id.kind() && again->canonical() == c,
             "canonical form does not re-parse to itself: " + what);
  FUZZ_CHECK((id <=> *again) == 0 && std::hash<DeviceId>{}(id) == std::hash<DeviceId>{}(*again),
             what);

  // The URN: "urn:dev:<KIND>:<value>:" parses back; a bare UUID's is "urn:uuid:<uuid>".
  const std::string urn = id.urn();
  if (id.kind() == DeviceKind::kUuid) {
    FUZZ_CHECK(urn == "urn:uuid:" + c, what + " urn " + urn);
  } else {
    FUZZ_CHECK(urn.rfind("urn:dev:", 0) == 0 && urn.back() == ':', what + " urn " + urn);
    const auto from_urn = DeviceId::parse(urn);
    FUZZ_CHECK(from_urn && *from_urn == id, "URN does not parse back: " + what + " urn " + urn);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = thingsync::fuzz::as_text(data, size);

  const auto r = DeviceId::parse_with_reason(input);
  const auto p = DeviceId::parse(input);
  FUZZ_CHECK(r.id.has_value() == p.has_value() && (!p || *p == *r.id),
             "parse and parse_with_reason disagree on '" + std::string(input) + "'");
  FUZZ_CHECK(r.id.has_value() == r.reason.empty(),
             "reason must be empty exactly when the ID parsed: '" + std::string(input) +
                 "' reason '" + r.reason + "'");

  // is_uuid(s) means s is a bare Things device UUID.
  if (thingsync::core::is_uuid(input)) {
    FUZZ_CHECK(p && p->kind() == DeviceKind::kUuid, "a UUID that is no uuid device ID");
  }

  // Letter case never matters: every spelling in any case is the same device (or none).
  for (char (*f)(char) : {to_upper, to_lower}) {
    const std::string other = mapped(input, f);
    const auto q = DeviceId::parse(other);
    FUZZ_CHECK(q.has_value() == p.has_value() && (!p || *q == *p),
               "'" + std::string(input) + "' and '" + other + "' parse differently");
  }

  if (p) check_parsed(*p, input);
  return 0;
}
