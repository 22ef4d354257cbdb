#pragma once

// Test support: the real thingsync-sim binary as a child process, and a tiny blocking HTTP
// client. Beast stays in sim_process.cpp so that the test files compile quickly.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "temp_dir.hpp"

namespace simtest {

struct HttpResult {
  int status = 0;                             ///< 0 when the connection closed without an answer
  std::map<std::string, std::string> headers;  ///< names in lower case
  std::string body;

  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct Header {
  std::string name, value;
};

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
HttpResult http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body = {}, const std::vector<Header>& headers = {});

/// Writes `raw` (several requests, pipelined) on one connection and reads `count` responses.
std::vector<HttpResult> pipelined(unsigned short port, const std::string& raw, int count);

/// Sends a request on connection A and one on B before reading either answer.
std::vector<HttpResult> concurrent(unsigned short port, const std::vector<std::string>& raw);

/// A GET over HTTPS, verifying the server against `ca_file` and host name "localhost".
HttpResult https_get(unsigned short port, const std::string& ca_file, const std::string& target,
                     const std::string& token);

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
                  const std::string& body = {}, std::vector<Header> headers = {}) const;
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
