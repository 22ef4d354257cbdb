#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "json_body.hpp"
#include "options.hpp"
#include "store.hpp"

namespace thingsync::sim {

/// A request as the service sees it: the transport (Beast) stays in server.cpp.
struct Request {
  std::string_view method;
  std::string_view target;  ///< path and query, as received
  std::string_view host;    ///< Host header; empty when absent
  std::string_view authorization;
  std::string_view content_type;
  std::string_view body;
  bool has_content_type = false;
  bool body_too_large = false;  ///< the body was cut at Options::max_body; answer 413 and close
};

struct Response {
  int status = 200;
  std::string_view content_type;  ///< a string literal; empty when there is no body
  std::string body;
  /// When set, the body instead: bytes the service keeps, valid until its next call.
  std::optional<std::string_view> body_ref;
  std::vector<std::pair<std::string, std::string>> headers;
  /// Location of a created binding: location_base + location_id (views like body_ref).
  std::string_view location_base, location_id;
  std::chrono::milliseconds delay{0};  ///< injected latency, before the response is written
  bool drop = false;   ///< close the connection without writing anything
  bool failed_after_commit = false;  ///< a gateway's 5xx replaced the answer of a done write
  bool close = false;  ///< close after writing
  /// Canonical device the request was about (concurrency accounting); set by an operation,
  /// valid inside Service::handle only.
  std::string_view device;
  std::int32_t device_slot = -1;  ///< its entry in the per-device in-flight table
  bool accounted = false;  ///< counted as in flight (API and token requests, not admin)

  std::string_view payload() const { return body_ref ? *body_ref : std::string_view(body); }
};

/// The simulated API: routing, validation, auth, faults, admin, counters and request log.
/// Single-threaded: call from the one io_context thread only.
class Service {
 public:
  explicit Service(Options opts);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  Response handle(const Request& req, bool tls);
  /// Called once the response of `handle` is written (or dropped): ends its accounting.
  void finish(const Response& res);

  Store& store() { return store_; }
  const Options& options() const { return opts_; }
  /// Loads --data; false with `error` when the file exists but is unreadable or malformed.
  bool load_data(std::string& error);
  /// Writes --data atomically when the store changed since the last write.
  void persist_if_changed();

 private:
  struct Principal {
    bool valid = false;
    std::string_view name;  ///< "principal/<client id>" or "principal/static"; valid for the request
    std::string_view why;   ///< for the 401 detail
  };
  /// Requests in flight about one device.
  struct DeviceInFlight {
    std::string device;
    std::uint32_t n = 0;
  };
  struct Routed;

  Response dispatch(const Request& req, bool tls, bool& authorized);
  Response api(const Request& req, std::string_view path, std::string_view query, bool tls,
               bool& authorized);
  Response token_endpoint(const Request& req, bool& authorized);
  Response admin(const Request& req, std::string_view path);
  Response list(const Request& req, std::string_view query, bool tls);
  Response write_binding(const Request& req, std::string_view id, std::string_view principal,
                         bool admin);
  void enter_device(Response& res);
  /// The faults that strike once a write is committed (`res` is its answer): the answer of a
  /// create dropped, or any answer replaced by a gateway's 502 or 504.
  void after_commit(Response& res, bool create);
  Principal authenticate(std::string_view authorization);
  std::string faults_json() const;
  std::string counters_json() const;
  void reset_counters();
  void log_request(const Request& req, const Response& res, bool authorized);
  void count(std::string_view method, int status);
  bool take_rate_token(std::chrono::steady_clock::time_point now, double& retry_after_s);

  Options opts_;
  Faults faults_;
  Store store_;
  std::mt19937_64 fault_rng_;
  std::unordered_map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>>
      tokens_;  ///< access token -> (principal, expiry)
  double bucket_tokens_ = 0;
  std::chrono::steady_clock::time_point bucket_at_{};
  // counters
  std::map<std::string, std::map<int, std::uint64_t>, std::less<>> by_method_status_;
  std::uint64_t in_flight_ = 0, peak_in_flight_ = 0, max_per_device_ = 0, tokens_issued_ = 0;
  std::uint64_t failed_after_commit_ = 0;
  /// Entries with n == 0 are free and keep their capacity for reuse; indexes stay stable.
  std::vector<DeviceInFlight> device_in_flight_;
  BindingBody body_;          ///< the last write body read (reused buffers)
  std::string device_copy_;   ///< a deleted binding's device, for the accounting
  std::string list_body_;     ///< the last list page (reused buffer)
  std::FILE* request_log_ = nullptr;
  std::uint64_t persisted_version_ = 0;
};

}  // namespace thingsync::sim
