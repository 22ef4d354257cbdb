#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace thingsync::sim {

/// Whether a second binding for a device is accepted (docs/simulator.md, "What the real API
/// may do"): the OpenAPI file documents no 409, so `kAllow` is the default.
enum class Duplicates : std::uint8_t { kAllow, kReject };

/// "allow" or "reject": the spelling of the command line and the admin interface.
inline std::string_view duplicates_name(Duplicates d) {
  switch (d) {
    case Duplicates::kAllow: return "allow";
    case Duplicates::kReject: return "reject";
  }
  return "reject";
}
inline std::optional<Duplicates> parse_duplicates(std::string_view name) {
  for (const auto d : {Duplicates::kAllow, Duplicates::kReject}) {
    if (name == duplicates_name(d)) return d;
  }
  return std::nullopt;
}

/// Fault settings; the command line sets them, the admin interface changes them at run time.
struct Faults {
  double rate_limit = 0;     ///< requests per second on /mqtt/*, 0 = unlimited
  /// Whether a 429 of the rate limit says Retry-After (an API may not: then the client must
  /// find its own pace).
  bool rate_limit_retry_after = true;
  double fail_rate = 0;      ///< probability of a random 500/503 on /mqtt/*
  std::int64_t latency_ms = 0;  ///< added to every /mqtt/* and /oauth2/token response
  double drop_after_create = 0;  ///< probability that a create closes without an answer
  /// Probability that a committed write (POST, PUT, DELETE) answers 502 or 504 instead.
  double fail_after_commit = 0;
  Duplicates duplicates = Duplicates::kAllow;
  std::uint32_t fail_list_on_page = 0;  ///< list pages with this number answer 500; 0 = off
  bool token_endpoint_down = false;     ///< /oauth2/token answers 503
  /// Canonical device IDs whose API writes (POST/PUT) answer 400: a permanent failure.
  std::set<std::string> reject_devices;
};

/// Everything the command line configures.
struct Options {
  std::string listen = "127.0.0.1:8080";
  std::optional<std::string> token;                 ///< static bearer token
  std::map<std::string, std::string> oauth_clients;  ///< client id -> secret
  std::chrono::milliseconds token_lifetime{std::chrono::hours(1)};
  Faults faults;
  std::size_t page_size = 50;
  std::size_t max_page_size = 1000;
  std::size_t max_body = 64 * 1024;
  bool relative_next_links = false;
  std::optional<std::string> data_file;
  std::size_t seed = 0;
  std::optional<std::uint64_t> random_seed;
  std::string client_id = "00000000-0000-4000-8000-000000000001";  ///< owner of new devices
  bool admin = false;
  std::optional<std::string> request_log;
  std::optional<std::string> tls_cert, tls_key;
  std::chrono::milliseconds persist_interval{100};
};

}  // namespace thingsync::sim
