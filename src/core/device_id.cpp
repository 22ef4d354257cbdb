#include "thingsync/core/device_id.hpp"

#include <algorithm>
#include <array>

namespace thingsync::core {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) {
  c = lower(c);
  return is_digit(c) || (c >= 'a' && c <= 'f');
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

struct KindInfo {
  DeviceKind kind;
  std::string_view name;  // lower case, as in the short form
  std::string_view urn_name;
};
constexpr std::array<KindInfo, 3> kPrefixed{{
    {DeviceKind::kImei, "imei", "IMEI"},
    {DeviceKind::kDevEui, "deveui", "DEVEUI"},
    {DeviceKind::kDvnUuid, "dvnuuid", "DVNUUID"},
}};

// Checks the value part of a prefixed ID; returns an empty string when valid.
std::string check_value(DeviceKind kind, std::string_view v) {
  switch (kind) {
    case DeviceKind::kImei:
      if (v.size() != 15 && v.size() != 16) {
        return "IMEI must have 15 or 16 digits, got " + std::to_string(v.size()) + " characters";
      }
      if (!std::all_of(v.begin(), v.end(), is_digit)) return "IMEI must contain only digits";
      return {};
    case DeviceKind::kDevEui:
      if (v.size() != 16) {
        return "DevEUI must have 16 hex digits, got " + std::to_string(v.size()) + " characters";
      }
      if (!std::all_of(v.begin(), v.end(), is_hex)) return "DevEUI must contain only hex digits";
      return {};
    case DeviceKind::kDvnUuid:
    case DeviceKind::kUuid:
      if (!is_uuid(v)) return "not a UUID (expected 8-4-4-4-12 hex digits)";
      return {};
  }
  return "unknown device kind";
}

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

}  // namespace

std::string_view kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kUuid: return "uuid";
    case DeviceKind::kImei: return "imei";
    case DeviceKind::kDevEui: return "deveui";
    case DeviceKind::kDvnUuid: return "dvnuuid";
  }
  return "unknown";
}

bool is_uuid(std::string_view s) {
  // For every binding of every list: fixed places and a table, no branch per character.
  if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
    return false;
  }
  static constexpr auto kHex = [] {
    std::array<bool, 256> t{};
    for (const char c : std::string_view("0123456789abcdefABCDEF")) {
      t[static_cast<unsigned char>(c)] = true;
    }
    return t;
  }();
  bool ok = true;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i != 8 && i != 13 && i != 18 && i != 23) ok &= kHex[static_cast<unsigned char>(s[i])];
  }
  return ok;
}

DeviceId::ParseResult DeviceId::parse_with_reason(std::string_view s) {
  if (s.empty()) return {std::nullopt, "device ID is empty"};
  if (is_uuid(s)) return {DeviceId(DeviceKind::kUuid, lowered(s)), {}};

  std::string_view rest = s;
  const bool urn = starts_with_nocase(rest, "urn:dev:");
  if (urn) {
    rest.remove_prefix(8);
  } else if (starts_with_nocase(rest, "urn:")) {
    return {std::nullopt, "URN must start with \"urn:dev:\""};
  }
  for (const auto& k : kPrefixed) {
    if (!starts_with_nocase(rest, k.name) || rest.size() <= k.name.size() ||
        rest[k.name.size()] != ':') {
      continue;
    }
    std::string_view value = rest.substr(k.name.size() + 1);
    if (urn && !value.empty() && value.back() == ':') value.remove_suffix(1);
    if (!urn && !value.empty() && value.back() == ':') {
      return {std::nullopt, "a trailing ':' is only allowed on the urn:dev: form"};
    }
    if (auto why = check_value(k.kind, value); !why.empty()) return {std::nullopt, why};
    std::string canonical;
    canonical.reserve(k.name.size() + 1 + value.size());
    canonical.append(k.name).push_back(':');
    canonical.append(lowered(value));
    return {DeviceId(k.kind, std::move(canonical)), {}};
  }
  if (s.size() == 36 || (s.size() > 8 && s[8] == '-')) {
    return {std::nullopt, "not a UUID (expected 8-4-4-4-12 hex digits)"};
  }
  return {std::nullopt,
          "unknown device ID format (expected a UUID, imei:, deveui:, dvnuuid: or "
          "urn:dev:<kind>:)"};
}

std::optional<DeviceId> DeviceId::parse(std::string_view spelling) {
  return parse_with_reason(spelling).id;
}

std::string_view DeviceId::value() const {
  if (kind_ == DeviceKind::kUuid) return canonical_;
  return std::string_view(canonical_).substr(kind_name(kind_).size() + 1);
}

std::string DeviceId::urn() const {
  if (kind_ == DeviceKind::kUuid) return "urn:uuid:" + canonical_;
  std::string out = "urn:dev:";
  for (const auto& k : kPrefixed) {
    if (k.kind == kind_) out.append(k.urn_name);
  }
  out.push_back(':');
  out.append(value());
  out.push_back(':');
  return out;
}

}  // namespace thingsync::core
