#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "thingsync/api/auth.hpp"
#include "thingsync/api/error.hpp"
#include "thingsync/api/http.hpp"
#include "thingsync/core/adaptive_rate.hpp"
#include "thingsync/core/backoff.hpp"
#include "thingsync/core/result.hpp"

namespace thingsync::api {

/// One finished HTTP exchange, for metrics (thingsync_api_requests_total and friends).
struct RequestEvent {
  std::string_view method;
  int status = 0;  ///< 0: no response (network error, timeout)
  std::chrono::nanoseconds duration{};
  bool rate_limited = false;  ///< 429, or 503 with Retry-After
};

/// Everything the engine maps from the config file (api.*, sync.concurrency, sync.rateLimit,
/// sync.rateLimitMax).
struct ClientOptions {
  std::string base_url = "https://api.kpnthings.com";  ///< may carry a path prefix
  HttpOptions http;             ///< api.timeout, api.caFile, proxy, response cap
  std::uint32_t concurrency = 8;  ///< requests in flight at most (sync.concurrency)
  double rate_limit = 10;       ///< requests per second, all requests; <= 0: unlimited
  /// sync.rateLimit: auto: the rate adapts to the answers (core::AdaptiveRate) and rate_limit
  /// is unused. A congestion signal (429, or 503 with Retry-After) cuts it; a 429 without
  /// Retry-After then pauses no other call, the cut is the answer to it.
  std::optional<core::AdaptiveRatePolicy> adaptive;
  /// 0: with a fixed rate, rate/10, at least 1, at most concurrency; with an adaptive one, 2
  /// (at most concurrency): paced evenly, with room for a timer that wakes a little late.
  std::uint32_t burst = 0;
  core::BackoffPolicy backoff;  ///< full jitter; max_attempts bounds every call
  /// Retry-After values above this are clamped (a broken server must not stall us for a day).
  std::chrono::seconds max_retry_after{300};
  std::function<void(const RequestEvent&)> on_request;  ///< called on the io thread
  /// The rate in force (requests per second; 0: unlimited), once at the start and whenever it
  /// changes (thingsync_rate_limit_current). Called on the io thread.
  std::function<void(double)> on_rate;
  /// A call waiting (a backoff, a Retry-After pause, the rate limit) calls on_waiting at least
  /// this often: it is progress too (the daemon's watchdog is fed by progress). 0: never.
  std::chrono::milliseconds waiting_tick{0};
  std::function<void()> on_waiting;
};

/// One API call. `target` is relative to the base URL's path ("/mqtt/bindings?limit=100");
/// `url`, when set, is used instead (a `next` link) and must have the base URL's origin.
struct ApiCall {
  std::string method = "GET";
  std::string target;
  std::optional<Url> url;
  std::string body;  ///< JSON; may hold a password: never logged, never in errors; wiped
                     ///< by call() once the call ends
};

/// Traffic statistics since construction (tests and /debug output).
struct TrafficStats {
  std::uint64_t sent = 0;          ///< requests handed to the network
  std::uint64_t retries = 0;
  std::uint64_t rate_limited = 0;  ///< 429/503-with-Retry-After answers
  std::uint64_t rate_cuts = 0;     ///< congestion events that cut the adaptive rate
  std::uint64_t unauthorized = 0;  ///< 401 answers
  std::uint32_t max_in_flight = 0;
  std::uint64_t connections_opened = 0;  ///< TCP connections (keep-alive reuse keeps it low)
};

/// The Things API transport: bearer auth, one token bucket, one concurrency limit and one
/// Retry-After pause shared by every call made through it, and bounded retries with full-jitter
/// backoff for transient failures. Not thread-safe: use it from the io_context thread.
class ApiClient {
 public:
  /// Fails (kConfig) only on a bad base URL; see create().
  static core::Result<std::unique_ptr<ApiClient>, ApiError> create(
      net::any_io_executor ex, ClientOptions options, std::shared_ptr<TokenProvider> auth);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  /// Runs one call to a 2xx answer, retrying what is transient. A non-2xx answer that is not
  /// retried becomes an ApiError with its status, problem title and detail. A POST that was
  /// sent but not answered, or answered 408 or 5xx (a gateway may answer so after the API
  /// committed it), is never re-sent: it fails with kUnknownOutcome.
  net::awaitable<core::Result<HttpResponse, ApiError>> call(ApiCall call);

  /// Stops: waiting calls and new calls fail with kCancelled, open connections are closed.
  void stop();
  /// Stops sending anything new: waiting calls (a backoff, a pause, a free slot) and new calls
  /// fail with kCancelled, and a call whose request fails is not retried; requests already
  /// sent run to their answer (or their timeout). stop() later cuts those too.
  void drain();
  bool stopping() const;

  const Url& base_url() const;
  /// The URL of `target` below the base URL's path ("/mqtt/bindings" → base + that).
  Url url_for(std::string_view target) const;
  /// Backoff policy in force (BindingsApi bounds its create-lookup rounds with it).
  const core::BackoffPolicy& backoff() const;
  const TrafficStats& stats() const;
  /// The rate in force, requests per second (0: unlimited).
  double rate() const;

 private:
  struct Impl;
  explicit ApiClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsync::api
