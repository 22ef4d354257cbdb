#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace thingsync::core {

/// SHA-256 of `data`, as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);

/// SHA-256 of text given in pieces: the same digest as sha256_hex() of their concatenation,
/// without holding it (the identity of a million bindings is ~90 MB of text).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& add(std::string_view piece);
  /// The digest as 64 lower-case hex digits; add() may not be called after it.
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsync::core
