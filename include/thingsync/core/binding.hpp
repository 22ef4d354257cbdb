#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "thingsync/core/device_id.hpp"
#include "thingsync/core/packed.hpp"

namespace thingsync::core {

/// Salted digest of a password (see password.hpp). Never the password; safe to store and log.
/// 8 bytes: it only has to tell that a password changed (two different passwords of one
/// device share a fingerprint with odds of 1 in 2^64), and the daemon holds two per binding.
using Fingerprint = std::array<std::uint8_t, 8>;

/// What the plan needs of one desired binding: the device and the fingerprint of the
/// password its source yields now. `index` points back into the caller's desired state.
/// The device is packed: a fleet of a million of these is 32 MB.
struct DesiredBinding {
  PackedDevice device;
  Fingerprint password_fp{};
  std::uint32_t index = 0;

  DesiredBinding() = default;
  DesiredBinding(const PackedDevice& d, const Fingerprint& fp, std::uint32_t i)
      : device(d), password_fp(fp), index(i) {}
  DesiredBinding(const DeviceId& d, const Fingerprint& fp, std::uint32_t i)
      : device(d), password_fp(fp), index(i) {}
};

/// One binding as the API reports it. Times are milliseconds since the Unix epoch (UTC).
struct RemoteBinding {
  std::string id;  ///< binding UUID, lower case
  DeviceId device;
  std::int64_t created_at_ms = 0;
  std::int64_t modified_at_ms = 0;
  std::string modified_by;  ///< who last wrote it, as the API says; empty when not known
};

/// What the state file remembers of one binding: the password last applied to it, and the
/// receipt of that write: the `modifiedAt` the API answered to it. A listed binding whose
/// modifiedAt differs from its receipt was changed outside thingsync.
struct AppliedBinding {
  std::string binding_id;
  DeviceId device;
  Fingerprint password_fp{};
  std::int64_t receipt_ms = 0;  ///< 0: no receipt known (a state file of version 2 or older)
};

}  // namespace thingsync::core
