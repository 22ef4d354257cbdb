#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace thingsync::obs {

enum class Action { kCreate, kUpdate, kDelete };
/// "create", "update", "delete": the `action` label, and the word logs and records use.
std::string_view to_string(Action a);

/// Every metric of docs/operations.md "Monitoring", on one prometheus-cpp registry. Labels never hold a
/// device, binding or client ID: their values come from small fixed sets (action, result,
/// HTTP method, status code), so cardinality does not grow with the fleet. Every combination
/// that can occur is exported as 0 from the start. Thread-safe (prometheus-cpp metrics are).
class Metrics {
 public:
  explicit Metrics(std::string_view version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void set_desired(std::size_t n);
  void set_observed(std::size_t n);
  void set_drift(std::size_t creates, std::size_t updates, std::size_t deletes);
  void set_deletes_blocked(std::size_t n);
  /// thingsync_pending_deletes: deletes waiting for their grace or a delete window.
  void set_pending_deletes(std::size_t n);
  /// thingsync_pass_remaining_operations: what the pass in progress has yet to do.
  void set_pass_remaining(std::size_t n);
  /// thingsync_oldest_drift_age_seconds: how long differences have been left unresolved.
  void set_oldest_drift_age(double seconds);
  void operation(Action action, bool success);
  /// One API exchange; status 0 means no response arrived (network error, timeout).
  void api_request(std::string_view method, int status, double seconds);
  void rate_limited();
  /// thingsync_rate_limit_current: requests per second now allowed (fixed, or adaptive).
  void set_rate_limit(double requests_per_second);
  void reconcile_finished(double seconds, bool success, double unix_now_seconds);
  /// The fleet was seen converged at this time (a poll found nothing new after a good pass).
  void mark_converged(double unix_now_seconds);
  void desired_state_load_error();
  void desired_state_watch_error();
  /// thingsync_desired_state_info{commit="…"} 1 (commit "" when the tree is not in Git).
  void set_desired_commit(const std::string& commit);

  /// The registry in the Prometheus text exposition format (version 0.0.4).
  std::string scrape() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsync::obs
