#pragma once

// Test support: the real thingsync-sim binary as a child process. Its HTTP goes through the
// loopback client of tests/support.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support.hpp"

namespace simtest {

using thingsync::testsupport::http;
using thingsync::testsupport::HttpConnection;
using thingsync::testsupport::HttpHeader;
using thingsync::testsupport::HttpResult;

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

/// A running thingsync-sim, started with `--listen 127.0.0.1:0` plus `args`. Killed on
/// destruction.
class Sim {
 public:
  explicit Sim(std::vector<std::string> args, std::string token = "test-token");
  ~Sim();
  Sim(const Sim&) = delete;
  Sim& operator=(const Sim&) = delete;

  unsigned short port() const { return port_; }
  const std::string& first_line() const { return first_line_; }
  /// Sends SIGTERM and waits (bounded); returns the exit code, or -1 when it had to be killed.
  int terminate();

  /// API calls carry `Authorization: Bearer <token>` unless token is empty.
  HttpResult get(const std::string& target) const { return call("GET", target); }
  HttpResult del(const std::string& target) const { return call("DELETE", target); }
  HttpResult post(const std::string& target, const nlohmann::json& body) const {
    return call("POST", target, body.dump());
  }
  HttpResult put(const std::string& target, const nlohmann::json& body) const {
    return call("PUT", target, body.dump());
  }
  HttpResult call(const std::string& method, const std::string& target,
                  const std::string& body = {}, std::vector<HttpHeader> headers = {}) const;
  /// Admin calls (no token).
  HttpResult admin(const std::string& method, const std::string& target,
                   const nlohmann::json& body = nullptr) const;

  std::string token;

 private:
  pid_t pid_ = -1;
  unsigned short port_ = 0;
  std::string first_line_;
};

/// A device ID spelling unique per call: "imei:35…".
std::string unique_imei();
/// A password that meets the policy.
inline const std::string kGoodPassword = "Correct-Horse-Battery-9-Staple";

/// Follows `next` links from `first` (a path) and returns every item.
std::vector<nlohmann::json> walk(const Sim& sim, const std::string& first, int* pages = nullptr);

/// Temporary directories are tests/support's.
using thingsync::testsupport::TempDir;

}  // namespace simtest
