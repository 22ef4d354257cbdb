#pragma once

// The tests' HTTP client for 127.0.0.1: blocking, on plain POSIX sockets (no Beast: fast to
// build), plain or TLS (OpenSSL). One-shot requests with http(), and HttpConnection for what
// a test says byte for byte: pipelined, split or malformed requests, keep-alive, framing.
// Everything it sends and receives feeds the secrets audit (artifacts.hpp): the bearer tokens
// and binding passwords a request carries are registered, and the answers of /metrics,
// /healthz and /readyz taken with http() are recorded.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace thingsync::testsupport {

struct HttpHeader {
  std::string name, value;
};
using HttpHeaders = std::vector<HttpHeader>;

/// One response. A default one (status 0, empty head) when no whole response arrived.
struct HttpResult {
  int status = 0;
  std::string head;                            ///< status line and fields, up to the blank line
  std::map<std::string, std::string> headers;  ///< names in lower case
  std::string body;                            ///< de-chunked

  nlohmann::json json() const { return nlohmann::json::parse(body); }
  /// The value of a field ("" when absent), by its lower-case name.
  std::string header(const std::string& lower_name) const;
};

struct HttpOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(30);  ///< per read, per write
  int receive_buffer = 0;              ///< SO_RCVBUF before connecting; 0: the system's
  std::string tls_ca_file;             ///< non-empty: TLS, the server verified against this CA file
  std::string tls_host = "localhost";  ///< with TLS: the SNI and the name verified
};

/// A client connection to 127.0.0.1:port. Throws std::runtime_error when it cannot connect
/// (or complete the TLS handshake) and when a send fails.
class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port, HttpOptions options = {});
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  HttpConnection(HttpConnection&&) noexcept;
  HttpConnection& operator=(HttpConnection&&) noexcept;

  /// Writes `raw` as it is: any number of requests, or part of one.
  void send(std::string_view raw);
  /// The next response: framed by Content-Length or chunked encoding, else read to the
  /// close (none for 1xx, 204 and 304).
  HttpResult response();
  /// True when the peer closed the connection and nothing is left to read.
  bool closed();

 private:
  struct Impl;
  bool fill();
  std::unique_ptr<Impl> impl_;
};

/// One request on a fresh connection to 127.0.0.1:port, with "Connection: close" unless
/// `headers` name another. Host is always sent; Content-Length when there is a body, and for
/// POST, PUT and PATCH. Status 0 when nothing (or no whole response) came back.
HttpResult http(std::uint16_t port, const std::string& method, const std::string& target,
                const std::string& body = {}, const HttpHeaders& headers = {},
                const HttpOptions& options = {});

}  // namespace thingsync::testsupport
