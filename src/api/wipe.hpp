#pragma once

// Buffers that held a bearer token, a password or a client secret on its way out are zeroed
// once the request is sent, so that the heap they go back to (and a core file, a swap page or
// a later read of freed memory) no longer holds them. Cheap: only the request head and body.
// See docs/operations.md, "Hardening notes".

#include <string>

#include <openssl/crypto.h>

namespace thingsync::api::detail {

/// Zeroes the characters of `s` (OPENSSL_cleanse: the compiler may not drop it as a dead
/// store), then empties it; the capacity stays for the next request.
inline void wipe(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

/// wipe() at the end of a scope, however it ends: a return, an exception, or a coroutine
/// frame destroyed while suspended (an io_context torn down at shutdown).
class WipeOnExit {
 public:
  explicit WipeOnExit(std::string& s) : s_(s) {}
  ~WipeOnExit() { wipe(s_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::string& s_;
};

}  // namespace thingsync::api::detail
