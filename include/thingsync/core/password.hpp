#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "thingsync/core/binding.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::core {

/// The API's password policy: >= 24 characters, at least one lower case letter, one upper
/// case letter, one digit and one special character. Returns an empty string when `pw`
/// meets it, else the first rule it breaks (the password itself is never in the message).
/// Length counts UTF-8 code points; "special" is any character but an ASCII letter or digit;
/// a control character (newline, NUL, …) is refused outright.
std::string password_policy_violation(std::string_view pw);

/// Derives the `derive` password of a device: HMAC-SHA256(fleet_key, canonical device ID),
/// mapped to 32 characters that always meet the policy. The algorithm is specified, with test
/// vectors, in README.md ("Password derivation") so that a device factory can reproduce it. Pure;
/// reuses one MAC context, so keep one deriver per thread. Not thread-safe.
class PasswordDeriver {
 public:
  /// Uses the key bytes as they are (the loader strips one trailing newline of a key file).
  /// Throws std::invalid_argument on an empty key, std::runtime_error if OpenSSL has no HMAC.
  explicit PasswordDeriver(const Secret& fleet_key);
  ~PasswordDeriver();
  PasswordDeriver(const PasswordDeriver&) = delete;
  PasswordDeriver& operator=(const PasswordDeriver&) = delete;

  Secret derive(const DeviceId& device);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Salted fingerprint of the password applied to a device: the first 8 bytes of
/// HMAC-SHA256(salt, canonical device ID || 0x00 || password). The salt is per state file,
/// and the device ID in the message keeps equal passwords of two devices apart.
/// Not thread-safe per instance; keep one per thread.
class Fingerprinter {
 public:
  explicit Fingerprinter(std::string_view salt);
  ~Fingerprinter();
  Fingerprinter(const Fingerprinter&) = delete;
  Fingerprinter& operator=(const Fingerprinter&) = delete;

  Fingerprint operator()(const DeviceId& device, const Secret& password);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Lower-case hex of a fingerprint ("3f9a…", 16 characters) and back. from_hex accepts either
/// case and 16 hex digits, or 32: a fingerprint as thingsync wrote it before (state file
/// version 1), the first 16 bytes of the same HMAC, of which the first 8 are today's. It
/// leaves `out` alone and returns false for anything else.
std::string to_hex(const Fingerprint& fp);
bool from_hex(std::string_view hex, Fingerprint& out);

}  // namespace thingsync::core
