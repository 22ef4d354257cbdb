#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace thingsync::core {

/// The namespaces a device ID can live in. A bare UUID (Things device UUID) and a
/// `dvnuuid:` UUID are different devices even when the digits match.
enum class DeviceKind : std::uint8_t { kUuid, kImei, kDevEui, kDvnUuid };

/// Short lowercase name of a kind as used in the canonical form: "uuid", "imei", ...
std::string_view kind_name(DeviceKind kind);

/// A device identifier, normalised. Every spelling the API accepts (`imei:…`,
/// `urn:dev:IMEI:…:`, any letter case, optional trailing colon on URNs) parses to the
/// same value; comparison and ordering are by canonical form.
class DeviceId {
 public:
  /// Parses any spelling of the OpenAPI `DeviceId`; nullopt when it is none of them.
  static std::optional<DeviceId> parse(std::string_view spelling);

  /// Like parse(), but says why a spelling was rejected ("IMEI must have 15 or 16 digits").
  struct ParseResult;
  static ParseResult parse_with_reason(std::string_view spelling);

  /// "imei:350266800610993", "deveui:ea8fa35e2cf3489f", "dvnuuid:<uuid>", or "<uuid>":
  /// lower case, short form, no trailing colon.
  const std::string& canonical() const { return canonical_; }
  DeviceKind kind() const { return kind_; }
  /// The identifier without its kind prefix, lower case.
  std::string_view value() const;
  /// The device URN as the platform spells MQTT usernames: "urn:dev:IMEI:350266800610993:".
  /// A bare Things device UUID has no `urn:dev:` form; its URN is "urn:uuid:<uuid>".
  std::string urn() const;

  friend bool operator==(const DeviceId& a, const DeviceId& b) {
    return a.canonical_ == b.canonical_;
  }
  friend std::strong_ordering operator<=>(const DeviceId& a, const DeviceId& b) {
    return a.canonical_.compare(b.canonical_) <=> 0;
  }

 private:
  friend class PackedDevice;  // unpacks into a DeviceId without parsing or allocating
  DeviceId(DeviceKind kind, std::string canonical)
      : canonical_(std::move(canonical)), kind_(kind) {}
  std::string canonical_;
  DeviceKind kind_;
};

struct DeviceId::ParseResult {
  std::optional<DeviceId> id;
  std::string reason;  ///< empty when id is set
};

/// True when `s` is a UUID in 8-4-4-4-12 hex form (any letter case).
bool is_uuid(std::string_view s);

}  // namespace thingsync::core

template <>
struct std::hash<thingsync::core::DeviceId> {
  std::size_t operator()(const thingsync::core::DeviceId& id) const noexcept {
    return std::hash<std::string>{}(id.canonical());
  }
};
