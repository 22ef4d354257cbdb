#include "thingsync/obs/metrics.hpp"

#include <array>
#include <map>
#include <mutex>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace thingsync::obs {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

constexpr std::array<std::string_view, 3> kActions{"create", "update", "delete"};
constexpr std::array<std::string_view, 4> kMethods{"GET", "POST", "PUT", "DELETE"};
// Status codes the Things API and the network give us; others are added when first seen
// (still bounded: HTTP status codes are three digits).
constexpr std::array<int, 14> kCodes{0,   200, 201, 204, 400, 401, 403,
                                     404, 409, 429, 500, 502, 503, 504};

std::string code_label(int status) { return status == 0 ? "none" : std::to_string(status); }
std::string method_label(std::string_view m) {
  for (const auto k : kMethods) {
    if (k == m) return std::string(k);
  }
  return "other";
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  prometheus::Family<prometheus::Gauge>& build_info =
      BuildGauge().Name("thingsync_build_info").Help("Build information; always 1.").Register(*registry);
  prometheus::Gauge& desired = BuildGauge()
                                   .Name("thingsync_desired_bindings")
                                   .Help("Bindings in the last good desired state.")
                                   .Register(*registry)
                                   .Add({});
  prometheus::Gauge& observed = BuildGauge()
                                    .Name("thingsync_observed_bindings")
                                    .Help("Bindings seen on the API in scope.")
                                    .Register(*registry)
                                    .Add({});
  prometheus::Family<prometheus::Gauge>& drift =
      BuildGauge()
          .Name("thingsync_drift_bindings")
          .Help("Changes the last plan found, by action (deletes include blocked ones).")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& operations =
      BuildCounter()
          .Name("thingsync_operations_total")
          .Help("Create/update/delete operations finished, by action and result.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& requests =
      BuildCounter()
          .Name("thingsync_api_requests_total")
          .Help("HTTP requests to the Things API, by method and status code (none: no answer).")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& request_duration =
      BuildHistogram()
          .Name("thingsync_api_request_duration_seconds")
          .Help("Duration of Things API requests, by method.")
          .Register(*registry);
  prometheus::Histogram& reconcile_duration =
      BuildHistogram()
          .Name("thingsync_reconcile_duration_seconds")
          .Help("Duration of reconcile passes (observe, plan, execute).")
          .Register(*registry)
          .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                                                           60, 120, 300, 600, 1800, 3600});
  prometheus::Gauge& last_success =
      BuildGauge()
          .Name("thingsync_last_successful_reconcile_timestamp_seconds")
          .Help("Unix time of the end of the last reconcile pass that succeeded.")
          .Register(*registry)
          .Add({});
  prometheus::Counter& load_errors =
      BuildCounter()
          .Name("thingsync_desired_state_load_errors_total")
          .Help("Desired-state loads that failed (the last good state stayed in force).")
          .Register(*registry)
          .Add({});
  prometheus::Counter& watch_errors =
      BuildCounter()
          .Name("thingsync_desired_state_watch_errors_total")
          .Help("Desired-state paths the file watcher could not watch (then every poll rescans).")
          .Register(*registry)
          .Add({});
  prometheus::Gauge& deletes_blocked =
      BuildGauge()
          .Name("thingsync_deletes_blocked")
          .Help("Deletes the last plan held back (delete guard, or duplicates with prune off).")
          .Register(*registry)
          .Add({});
  prometheus::Gauge& pending_deletes =
      BuildGauge()
          .Name("thingsync_pending_deletes")
          .Help("Deletes waiting for their grace (sync.deleteAfter) or a delete window.")
          .Register(*registry)
          .Add({});
  prometheus::Gauge& pass_remaining =
      BuildGauge()
          .Name("thingsync_pass_remaining_operations")
          .Help("Operations the pass in progress has yet to do (0 between passes).")
          .Register(*registry)
          .Add({});
  prometheus::Gauge& oldest_drift_age =
      BuildGauge()
          .Name("thingsync_oldest_drift_age_seconds")
          .Help("How long passes have ended with differences left, without a pass in between "
                "that ended in sync (0 when in sync).")
          .Register(*registry)
          .Add({});
  prometheus::Counter& rate_limited =
      BuildCounter()
          .Name("thingsync_rate_limited_total")
          .Help("429 and 503-with-Retry-After answers received from the API.")
          .Register(*registry)
          .Add({});
  prometheus::Gauge& rate_limit_current =
      BuildGauge()
          .Name("thingsync_rate_limit_current")
          .Help("Requests per second now allowed to the API: sync.rateLimit, or where "
                "rateLimit: auto has brought it.")
          .Register(*registry)
          .Add({});
  prometheus::Family<prometheus::Gauge>& desired_info =
      BuildGauge()
          .Name("thingsync_desired_state_info")
          .Help("The Git commit of the desired state in force; always 1.")
          .Register(*registry);

  std::mutex mu;  // guards lazily added label sets and desired_info_current
  prometheus::Gauge* desired_info_current = nullptr;

  prometheus::Histogram& duration_for(const std::string& method) {
    static const prometheus::Histogram::BucketBoundaries kBuckets{
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    return request_duration.Add({{"method", method}}, kBuckets);
  }
};

std::string_view to_string(Action a) { return kActions[static_cast<std::size_t>(a)]; }

Metrics::Metrics(std::string_view version) : impl_(std::make_unique<Impl>()) {
  impl_->build_info.Add({{"version", std::string(version)}}).Set(1);
  for (const auto a : kActions) {
    impl_->drift.Add({{"action", std::string(a)}});
    for (const char* r : {"success", "failure"}) {
      impl_->operations.Add({{"action", std::string(a)}, {"result", r}});
    }
  }
  for (const auto m : kMethods) {
    impl_->duration_for(std::string(m));
    for (const int c : kCodes) impl_->requests.Add({{"method", std::string(m)}, {"code", code_label(c)}});
  }
  set_desired_commit("");
}

Metrics::~Metrics() = default;

void Metrics::set_desired(std::size_t n) { impl_->desired.Set(static_cast<double>(n)); }
void Metrics::set_observed(std::size_t n) { impl_->observed.Set(static_cast<double>(n)); }

void Metrics::set_drift(std::size_t creates, std::size_t updates, std::size_t deletes) {
  impl_->drift.Add({{"action", "create"}}).Set(static_cast<double>(creates));
  impl_->drift.Add({{"action", "update"}}).Set(static_cast<double>(updates));
  impl_->drift.Add({{"action", "delete"}}).Set(static_cast<double>(deletes));
}

void Metrics::set_deletes_blocked(std::size_t n) {
  impl_->deletes_blocked.Set(static_cast<double>(n));
}

void Metrics::set_pending_deletes(std::size_t n) {
  impl_->pending_deletes.Set(static_cast<double>(n));
}

void Metrics::set_pass_remaining(std::size_t n) { impl_->pass_remaining.Set(static_cast<double>(n)); }

void Metrics::set_oldest_drift_age(double seconds) { impl_->oldest_drift_age.Set(seconds); }

void Metrics::operation(Action action, bool success) {
  impl_->operations
      .Add({{"action", std::string(kActions[static_cast<std::size_t>(action)])},
            {"result", success ? "success" : "failure"}})
      .Increment();
}

void Metrics::api_request(std::string_view method, int status, double seconds) {
  const auto m = method_label(method);
  std::lock_guard lock(impl_->mu);
  impl_->requests.Add({{"method", m}, {"code", code_label(status)}}).Increment();
  impl_->duration_for(m).Observe(seconds);
}

void Metrics::rate_limited() { impl_->rate_limited.Increment(); }

void Metrics::set_rate_limit(double requests_per_second) {
  impl_->rate_limit_current.Set(requests_per_second);
}

void Metrics::reconcile_finished(double seconds, bool success, double unix_now_seconds) {
  impl_->reconcile_duration.Observe(seconds);
  if (success) impl_->last_success.Set(unix_now_seconds);
}

void Metrics::mark_converged(double unix_now_seconds) { impl_->last_success.Set(unix_now_seconds); }

void Metrics::desired_state_load_error() { impl_->load_errors.Increment(); }
void Metrics::desired_state_watch_error() { impl_->watch_errors.Increment(); }

void Metrics::set_desired_commit(const std::string& commit) {
  std::lock_guard lock(impl_->mu);
  if (impl_->desired_info_current) impl_->desired_info.Remove(impl_->desired_info_current);
  impl_->desired_info_current = &impl_->desired_info.Add({{"commit", commit}});
  impl_->desired_info_current->Set(1);
}

std::string Metrics::scrape() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace thingsync::obs
