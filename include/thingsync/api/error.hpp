#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace thingsync::api {

/// What went wrong with an API call, in the terms the engine decides on.
enum class ErrorKind : std::uint8_t {
  kTransport,       ///< connect/reset/EOF before the request could have been processed
  kTimeout,         ///< api.timeout elapsed (connect, TLS, write or read)
  kUnknownOutcome,  ///< a non-idempotent request was sent, then the connection failed
  kRateLimited,     ///< 429, or 503 with Retry-After
  kUnauthorized,    ///< 401: token missing, expired or refused
  kClient,          ///< other 4xx: the request is wrong; retrying will not help
  kServer,          ///< 5xx (and 408): the server failed; retry later
  kProtocol,        ///< the answer is unusable: bad JSON, oversized, foreign `next` link
  kTls,             ///< TLS handshake or certificate verification failed
  kConfig,          ///< bad base URL, unreadable token file, proxy refused
  kCancelled,       ///< the client is stopping
};

std::string_view to_string(ErrorKind kind);

/// One failed call. Never holds a request body (it may contain a password) or a token.
struct ApiError {
  ErrorKind kind = ErrorKind::kTransport;
  int status = 0;                                   ///< 0 when no HTTP response arrived
  std::optional<std::chrono::seconds> retry_after;  ///< from Retry-After (seconds or HTTP-date)
  std::string title;                                ///< problem+json title, or a short summary
  std::string detail;                               ///< problem+json detail, or the cause

  /// Worth retrying soon with backoff: network errors, timeouts, 5xx, 408, 429, 401 (once,
  /// after a token refresh). Permanent: other 4xx, protocol, TLS, config. kUnknownOutcome is
  /// neither: the caller must look before it retries.
  bool transient() const;
  /// "429 rate limited: Too Many Requests (retry after 2s)" — safe to log.
  std::string to_string() const;
};

/// An error of `kind` with a title and detail (no status).
ApiError make_error(ErrorKind kind, std::string title, std::string detail = {});

/// Classifies a non-2xx HTTP response (pure). `content_type`/`body` feed the problem+json
/// title and detail; `retry_after` is the raw header value, if any; `now` resolves HTTP-dates.
ApiError classify(int status, std::string_view content_type, std::string_view body,
                  std::optional<std::string_view> retry_after,
                  std::chrono::system_clock::time_point now);

/// Parses a Retry-After value: delta-seconds ("120") or an HTTP-date
/// ("Wed, 21 Oct 2015 07:28:00 GMT", RFC 850 and asctime forms too). A date in the past gives
/// zero. nullopt when malformed.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

/// Parses an HTTP-date to seconds since the Unix epoch (pure). nullopt when malformed.
std::optional<std::int64_t> parse_http_date(std::string_view value);

}  // namespace thingsync::api
