#pragma once

// Plain HTTP/1.1 client types. No Beast here: the Beast parts live in src/api/http_client.cpp.
#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "thingsync/api/error.hpp"
#include "thingsync/api/url.hpp"
#include "thingsync/core/result.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::api {

namespace net = boost::asio;

/// Transport settings shared by every connection of one HttpClient.
struct HttpOptions {
  /// One deadline for the whole exchange: DNS, connect, proxy CONNECT, TLS, write and read.
  std::chrono::milliseconds timeout{10'000};
  /// PEM bundle to verify servers with; empty: the system store. Verification is always on.
  std::string ca_file;
  /// Larger response bodies fail with ErrorKind::kProtocol (a page of 1,000 bindings is ~300 kB).
  std::size_t max_response_bytes = 8 * 1024 * 1024;
  /// Idle keep-alive connections kept per origin (the client's concurrency is a good value).
  std::size_t max_idle_per_origin = 8;
  /// "http://proxy:3128": tunnel through this proxy with CONNECT; empty: connect directly.
  std::string proxy;
  /// Hosts reached directly despite `proxy` ("localhost,.corp.example,10.1.2.3", "*").
  std::string no_proxy;
  std::string user_agent = "thingsync";
};

/// Fills proxy/no_proxy from HTTPS_PROXY/https_proxy and NO_PROXY/no_proxy (curl's rules:
/// lower case wins), unless `opts.proxy` is already set.
void apply_proxy_environment(HttpOptions& opts);

struct Header {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method = "GET";  ///< upper case
  Url url;
  std::string content_type;    ///< empty: no body
  std::string body;            ///< may hold a password: never logged, never in errors
  std::optional<core::Secret> bearer;  ///< sent as "Authorization: Bearer …"
  std::vector<Header> headers;         ///< extra headers (Accept, …)
};

struct HttpResponse {
  int status = 0;
  std::vector<Header> headers;
  std::string body;
  /// Case-insensitive lookup of the first header with this name.
  std::optional<std::string_view> header(std::string_view name) const;
};

/// How far a failed request got: whether the server may have acted on it.
enum class Sent : std::uint8_t {
  kNo,     ///< failed before the request left (DNS, connect, proxy, TLS)
  kMaybe,  ///< failed while writing, or the server closed without answering
  kYes,    ///< written completely; the answer did not arrive
};

struct HttpFailure {
  ApiError error;  ///< kTransport, kTimeout, kTls, kProtocol or kConfig
  Sent sent = Sent::kNo;
};

/// Keep-alive HTTP/1.1 client over TCP or TLS (OpenSSL; peer and host-name verification
/// always on, SNI set). Reuses idle connections per origin and never holds more than
/// max_idle_per_origin idle ones; how many are busy is bounded by the caller (ApiClient's
/// concurrency). Not thread-safe: use it from the io_context thread that runs `ex`.
class HttpClient {
 public:
  HttpClient(net::any_io_executor ex, HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// One exchange, no retries, except that a GET/PUT/DELETE which fails on a reused keep-alive
  /// connection before any answer byte is re-sent once on a fresh connection. The request
  /// head (with the bearer token) is wiped once written, and so is the body of `request`
  /// when the exchange ends: either may hold a secret.
  net::awaitable<core::Result<HttpResponse, HttpFailure>> send(HttpRequest request);
  /// send() without copying the request: `request` must outlive the returned awaitable (the
  /// caller co_awaits it at once) and its body is left to the caller to wipe. ApiClient uses
  /// it to keep one request for all its attempts.
  net::awaitable<core::Result<HttpResponse, HttpFailure>> send_borrowed(const HttpRequest& request);

  /// Closes idle connections and aborts the ones in use (their sends fail with kCancelled).
  void shutdown();

  const HttpOptions& options() const;
  std::size_t connections_opened() const;  ///< total since construction (tests: reuse works)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsync::api
