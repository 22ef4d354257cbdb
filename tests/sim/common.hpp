#pragma once

// What the simulator's tests share: the test support (tests/support: the real thingsync-sim
// as a child process, the loopback HTTP client, temporary directories) and a few helpers of
// their own.

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "support.hpp"

namespace simtest {

using thingsync::testsupport::http;
using thingsync::testsupport::HttpConnection;
using thingsync::testsupport::HttpHeader;
using thingsync::testsupport::HttpResult;
using thingsync::testsupport::kGoodPassword;
using thingsync::testsupport::Sim;
using thingsync::testsupport::TempDir;

/// A device ID spelling unique per call: "imei:35…".
inline std::string unique_imei() {
  static std::atomic<unsigned> counter{0};
  const auto n =
      (static_cast<unsigned long long>(::getpid()) * 100000ULL + ++counter) % 10000000000000ULL;
  char buf[32];
  std::snprintf(buf, sizeof buf, "imei:35%013llu", n);
  return buf;
}

/// Writes `raw` (several requests, pipelined) on one connection and reads `count` responses.
inline std::vector<HttpResult> pipelined(std::uint16_t port, const std::string& raw, int count) {
  HttpConnection c(port);
  c.send(raw);
  std::vector<HttpResult> out;
  for (int i = 0; i < count; ++i) out.push_back(c.response());
  return out;
}

/// Sends each request on a connection of its own before reading any answer.
inline std::vector<HttpResult> concurrent(std::uint16_t port, const std::vector<std::string>& raw) {
  std::vector<HttpConnection> connections;
  for (const auto& r : raw) {
    connections.emplace_back(port);
    connections.back().send(r);
  }
  std::vector<HttpResult> out;
  for (auto& c : connections) out.push_back(c.response());
  return out;
}

}  // namespace simtest
