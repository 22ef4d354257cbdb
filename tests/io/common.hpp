#pragma once

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "thingsync/api/bindings.hpp"
#include "thingsync/api/client.hpp"

namespace thingsync::test {

using namespace std::chrono_literals;

/// A client against `base_url` with test-friendly defaults: unthrottled, short backoff.
inline api::ClientOptions test_options(const std::string& base_url) {
  api::ClientOptions o;
  o.base_url = base_url;
  o.rate_limit = 0;
  o.concurrency = 8;
  o.backoff = core::BackoffPolicy{5ms, 100ms, 8};
  o.http.timeout = 5s;
  return o;
}

inline std::unique_ptr<api::ApiClient> make_client(net::io_context& ioc, api::ClientOptions o,
                                                   std::shared_ptr<api::TokenProvider> auth) {
  auto c = api::ApiClient::create(ioc.get_executor(), std::move(o), std::move(auth));
  REQUIRE(c);
  return std::move(c.value());
}

inline core::DeviceId imei(int i) {
  return *core::DeviceId::parse("imei:" + std::to_string(350266800000000LL + i));
}
inline core::Secret password(int i) {
  return core::Secret("Pw-" + std::to_string(i) + "-Xy9!Correct-Horse-Battery");
}

/// Fails the test if any of `secrets` (or a sim-issued token "sim_…") is in the captured logs.
inline void check_no_secrets(const LogCapture& logs, const std::vector<std::string>& secrets) {
  const std::string text = logs.text();
  for (const auto& s : secrets) {
    INFO("secret: " << s.substr(0, 3) << "…");
    CHECK(text.find(s) == std::string::npos);
  }
  CHECK(text.find("sim_") == std::string::npos);
}

}  // namespace thingsync::test
