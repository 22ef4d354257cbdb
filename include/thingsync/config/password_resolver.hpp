#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/env.hpp"
#include "thingsync/core/diagnostic.hpp"
#include "thingsync/core/result.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::config {

/// The largest password file (`password: file:`) read, in bytes, its trailing newline included.
/// A password is a few dozen characters: a larger file is a wrong path, never a password.
inline constexpr std::size_t kMaxPasswordFileBytes = std::size_t{4} << 10;  // 4 KiB
/// The largest fleet key file (`derive: keyFile:`) read, in bytes. Keys are 32 to a few hundred
/// bytes (HMAC-SHA256 hashes a longer one first); the limit leaves room for a key kept in a
/// larger container such as a PEM file.
inline constexpr std::size_t kMaxFleetKeyFileBytes = std::size_t{64} << 10;  // 64 KiB
/// Minimum fleet key length in bytes.
inline constexpr std::size_t kMinFleetKeyBytes = 32;

/// Turns password sources into passwords. Reads each fleet key file once per resolver (sources
/// are shared, so one per distinct path), each password file once per source, and never puts a
/// password or key into a diagnostic. A secret file must be a regular file within its limit
/// (kMaxPasswordFileBytes, kMaxFleetKeyFileBytes): a FIFO, a device or a directory is refused
/// without reading from it (a FIFO cannot block), a larger file without reading it.
/// Not thread-safe: use one resolver per thread. Create a new one to re-read files (SIGHUP).
class PasswordResolver {
 public:
  /// `state` must outlive the resolver.
  explicit PasswordResolver(const DesiredState& state, EnvLookup env = process_env());
  ~PasswordResolver();
  PasswordResolver(const PasswordResolver&) = delete;
  PasswordResolver& operator=(const PasswordResolver&) = delete;

  /// The password of one binding, or a diagnostic at the binding's place (a broken source, or a
  /// password that breaks the API's policy).
  core::Result<core::Secret, core::Diagnostic> resolve(const DesiredEntry& entry);

  /// The password of one binding, or why its source yields none: the same text for every
  /// binding of that source (valid while the resolver lives), for callers that report each
  /// broken source once (source_errors()) instead of once per binding.
  core::Result<core::Secret, std::string_view> password(const DesiredEntry& entry);
  /// The same, with the entry's device already unpacked (`device` is entry.device's): for
  /// callers that need the DeviceId anyway, so it is unpacked once.
  core::Result<core::Secret, std::string_view> password(const DesiredEntry& entry,
                                                        const core::DeviceId& device);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A source that yields no password, and how many bindings use it.
struct SourceFailure {
  std::string why;
  std::size_t bindings = 0;
};
/// Broken sources by their index into DesiredState::sources.
using SourceFailures = std::map<std::uint32_t, SourceFailure>;

/// One error per broken source, however many bindings use it (a key file missing for a fleet of
/// 10,000 is one line, not 10,000): at the place the source is first written, naming how many
/// bindings use it. Sorted by place.
core::Diagnostics source_errors(const DesiredState& state, const SourceFailures& failures);

/// Checks every distinct source once, offline (`thingsync validate`): key files readable and at
/// least 32 bytes, password files readable, env variables set, literal/file/env passwords meet
/// the policy. Derived passwords meet the policy by construction, so they are not derived.
/// One diagnostic per broken source, as source_errors() gives it.
core::Diagnostics validate_sources(const DesiredState& state, const EnvLookup& env = process_env());

}  // namespace thingsync::config
