#include "thingsync/obs/metrics.hpp"

#include <catch2/catch.hpp>

using thingsync::obs::Action;
using thingsync::obs::Metrics;
using Catch::Contains;

TEST_CASE("every metric of the spec is exported from the start", "[obs][metrics]") {
  Metrics m("1.2.3");
  const auto text = m.scrape();
  for (const char* name :
       {"thingsync_build_info{version=\"1.2.3\"} 1", "thingsync_desired_bindings 0",
        "thingsync_observed_bindings 0", "thingsync_drift_bindings{action=\"create\"} 0",
        "thingsync_drift_bindings{action=\"delete\"} 0",
        "thingsync_operations_total{action=\"update\",result=\"failure\"} 0",
        "thingsync_api_requests_total{code=\"429\",method=\"POST\"} 0",
        "thingsync_api_request_duration_seconds_bucket{method=\"GET\",le=\"300\"} 0",
        "thingsync_reconcile_duration_seconds_bucket{le=\"1800\"} 0",
        "thingsync_last_successful_reconcile_timestamp_seconds 0",
        "thingsync_desired_state_load_errors_total 0", "thingsync_deletes_blocked 0",
        "thingsync_rate_limited_total 0", "thingsync_rate_limit_current 0",
        "thingsync_desired_state_info{commit=\"\"} 1"}) {
    CHECK_THAT(text, Contains(name));
  }
}

TEST_CASE("metrics record operations, requests and reconciles", "[obs][metrics]") {
  Metrics m("1");
  m.operation(Action::kCreate, true);
  m.operation(Action::kCreate, true);
  m.operation(Action::kDelete, false);
  m.api_request("POST", 201, 0.02);
  m.api_request("GET", 0, 10.0);
  m.api_request("GET", 418, 0.001);
  m.rate_limited();
  m.set_rate_limit(37.5);
  m.set_drift(3, 2, 1);
  m.reconcile_finished(2.0, true, 1700000000.0);
  m.set_desired_commit("0123abc");
  const auto text = m.scrape();
  CHECK_THAT(text, Contains("thingsync_operations_total{action=\"create\",result=\"success\"} 2"));
  CHECK_THAT(text, Contains("thingsync_operations_total{action=\"delete\",result=\"failure\"} 1"));
  CHECK_THAT(text, Contains("thingsync_api_requests_total{code=\"201\",method=\"POST\"} 1"));
  CHECK_THAT(text, Contains("thingsync_api_requests_total{code=\"none\",method=\"GET\"} 1"));
  CHECK_THAT(text, Contains("thingsync_api_requests_total{code=\"418\",method=\"GET\"} 1"));
  CHECK_THAT(text, Contains("thingsync_rate_limited_total 1"));
  CHECK_THAT(text, Contains("thingsync_rate_limit_current 37.5"));
  CHECK_THAT(text, Contains("thingsync_drift_bindings{action=\"update\"} 2"));
  CHECK_THAT(text, Contains("thingsync_last_successful_reconcile_timestamp_seconds 1700000000"));
  CHECK_THAT(text, Contains("thingsync_desired_state_info{commit=\"0123abc\"} 1"));
  CHECK(text.find("commit=\"\"") == std::string::npos);  // the old commit is gone
}

TEST_CASE("an unknown HTTP method is folded into one label value", "[obs][metrics]") {
  Metrics m("1");
  m.api_request("PATCH", 200, 0.1);
  m.api_request("BREW", 200, 0.1);
  CHECK_THAT(m.scrape(), Contains("thingsync_api_requests_total{code=\"200\",method=\"other\"} 2"));
}
