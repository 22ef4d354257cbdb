// Credentials under pressure: OAuth2 tokens that live 3 s, a token file rotated while the daemon
// works, the token endpoint down for 20 s.
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "chaos.hpp"

using namespace thingsync::chaos;
using namespace std::chrono_literals;

namespace {

int all_methods(const Sim& sim, const std::string& status) {
  return sim.count("GET", status) + sim.count("POST", status) + sim.count("PUT", status) +
         sim.count("DELETE", status);
}

std::int64_t ms_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Issued tokens look like "sim_<hex>": none may reach the daemon's log.
bool log_has_token(const Daemon& d) { return d.proc().err().find("sim_") != std::string::npos; }

}  // namespace

TEST_CASE("OAuth2 tokens expiring every 3 s: renewed ahead of expiry, no operation fails",
          "[chaos][auth]") {
  TempDir logs("thingsync-chaos-log");
  const auto request_log = logs / "requests.jsonl";
  AuthSpec auth;
  Sim sim({"--oauth-client", auth.sim_client_flag(), "--token-lifetime", "3s", "--request-log",
           request_log.string()},
          "");
  auth.oauth_token_url = sim.url() + "/oauth2/token";
  Rig rig;
  rig.configure(sim.url(), auth, {.rate_limit = 60});
  const Desired desired(devices(1, 600));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 10));

  const auto t0 = Clock::now();
  Daemon d(rig);
  REQUIRE(wait_converged(sim, rig, desired, unmanaged, d, 120s));
  const double took = seconds_since(t0);
  CHECK(took > 6);  // the run outlived at least two token lifetimes
  const int tokens = sim.tokens_issued();
  const int unauthorized = all_methods(sim, "401");
  {
    std::int64_t last_token = 0;
    for (const auto& r : read_request_log(request_log)) {
      if (r.path == "/oauth2/token") last_token = r.time_ms;
      if (r.status == 401) {
        UNSCOPED_INFO("401 " << r.method << " " << r.path << " " << r.time_ms - last_token
                             << " ms after the last token was issued");
      }
    }
  }
  CHECK(tokens >= static_cast<int>(took / 3));
  CHECK(d.metric("thingsync_operations_total", {{"result", "failure"}}) == 0);
  // Renewal ahead of expiry (at 80% of the lifetime) leaves no request with a stale token;
  // each 401 would cost a refresh and a retry.
  CHECK(unauthorized <= 2);
  CHECK_FALSE(log_has_token(d));
  check_daemon_side(d, sim, rig, desired, 610, {auth.client_secret});

  auto line = summary();
  line << "oauth2 tokens living 3 s: 600 bindings converged in " << took << " s with " << tokens
       << " tokens, " << unauthorized << " 401s, 0 failed operations";
  report(line);
}

TEST_CASE("the token file rotated mid-run: each new token used before the old one expires",
          "[chaos][auth]") {
  TempDir logs("thingsync-chaos-log");
  const auto request_log = logs / "requests.jsonl";
  AuthSpec client;
  Sim sim({"--oauth-client", client.sim_client_flag(), "--token-lifetime", "6s", "--request-log",
           request_log.string()},
          "");
  std::vector<std::string> tokens{
      sim.fetch_token(client.client_id, client.client_secret, "chaos-app")};
  REQUIRE_FALSE(tokens.back().empty());
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(tokens.back()), {.rate_limit = 50});
  const Desired desired(devices(1, 750));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 10));

  const auto t0 = Clock::now();
  Daemon d(rig);
  // A new token every 3 s (each lives 6 s) until converged: by rename, then in place, in turn.
  int rotations = 0;
  std::vector<std::chrono::system_clock::time_point> rotated_at;
  bool converged = false;
  while (!converged && Clock::now() - t0 < 120s) {
    converged = eventually(
        [&] { return inspect(sim, rig, desired, unmanaged).converged() && d.settled(); }, 3s,
        250ms);
    if (converged) break;
    tokens.push_back(sim.fetch_token(client.client_id, client.client_secret, "chaos-app"));
    REQUIRE_FALSE(tokens.back().empty());
    rig.write_token(tokens.back(), rotations % 2 == 1);
    rotated_at.push_back(std::chrono::system_clock::now());
    ++rotations;
  }
  INFO(inspect(sim, rig, desired, unmanaged).describe());
  REQUIRE(converged);
  const double took = seconds_since(t0);
  CHECK(rotations >= 3);  // the first token expired long before the end
  const int unauthorized = all_methods(sim, "401");
  const auto noticed = d.log_count("token file changed, using the new token");
  for (const auto& r : read_request_log(request_log)) {
    if (r.status != 401) continue;
    std::ostringstream when;
    for (const auto& t : rotated_at) when << " " << r.time_ms - ms_since_epoch(t);
    UNSCOPED_INFO("401 " << r.method << " " << r.path << " ms after each rotation:" << when.str());
  }
  CHECK(unauthorized == 0);
  CHECK(static_cast<int>(noticed) == rotations);
  CHECK(d.metric("thingsync_operations_total", {{"result", "failure"}}) == 0);
  // A fresh token for the checks that follow (plan reads the same file).
  tokens.push_back(sim.fetch_token(client.client_id, client.client_secret, "chaos-app"));
  rig.write_token(tokens.back());
  check_daemon_side(d, sim, rig, desired, 760, tokens);

  auto line = summary();
  line << "token file rotated every 3 s (tokens live 6 s): 750 bindings converged in " << took
       << " s over " << rotations << " rotations, " << noticed << " noticed, " << unauthorized
       << " 401s, 0 failed operations";
  report(line);
}

TEST_CASE("the token endpoint down for 20 s: nothing sent without a token, recovers after",
          "[chaos][auth]") {
  TempDir logs("thingsync-chaos-log");
  const auto request_log = logs / "requests.jsonl";
  AuthSpec auth;
  Sim sim({"--oauth-client", auth.sim_client_flag(), "--token-lifetime", "3s", "--request-log",
           request_log.string()},
          "");
  auth.oauth_token_url = sim.url() + "/oauth2/token";
  Rig rig;
  rig.configure(sim.url(), auth);
  const Desired first(devices(1, 200));
  rig.set_desired(first);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 10));
  Daemon d(rig);
  REQUIRE(wait_converged(sim, rig, first, unmanaged, d, 60s));

  sim.set_faults({{"tokenEndpointDown", true}});
  const auto t_down = Clock::now();
  // The cached token runs out within its lifetime; then every renewal fails.
  REQUIRE(eventually([&] { return d.log_count("token request failed") > 0; }, 10s));
  const auto no_token_since = std::chrono::system_clock::now();
  const double last_ok = d.metric("thingsync_last_successful_reconcile_timestamp_seconds");
  // Work waits meanwhile: 100 more devices.
  const Desired second(devices(1, 300));
  rig.set_desired(second);
  int health_failures = 0;
  while (Clock::now() - t_down < 20s) {  // the outage is a scenario parameter
    health_failures += d.status("/healthz") != 200;
    std::this_thread::sleep_for(250ms);
  }
  const auto up_at = std::chrono::system_clock::now();
  CHECK(d.proc().running());
  CHECK(health_failures == 0);
  CHECK(d.metric("thingsync_last_successful_reconcile_timestamp_seconds") == last_ok);
  sim.set_faults({{"tokenEndpointDown", false}});
  const auto t_up = Clock::now();
  REQUIRE(wait_converged(sim, rig, second, unmanaged, d, 60s));
  const double recovery = seconds_since(t_up);
  CHECK(d.metric("thingsync_last_successful_reconcile_timestamp_seconds") > last_ok);

  // Without a token nothing goes to the API (requests already on their way aside), and the
  // token endpoint is not hammered.
  int api_without_token = 0, token_attempts = 0;
  for (const auto& r : read_request_log(request_log)) {
    if (r.time_ms <= ms_since_epoch(no_token_since) + 500 || r.time_ms >= ms_since_epoch(up_at)) continue;
    api_without_token += r.api();
    token_attempts += r.path == "/oauth2/token";
  }
  const double window = std::chrono::duration<double>(up_at - no_token_since).count();
  CHECK(api_without_token == 0);
  CHECK(token_attempts / window < 20);
  CHECK(all_methods(sim, "401") == 0);
  CHECK_FALSE(log_has_token(d));
  check_daemon_side(d, sim, rig, second, 310, {auth.client_secret});

  auto line = summary();
  line << "token endpoint down 20 s (tokens live 3 s): " << api_without_token
       << " API requests without a token, " << token_attempts << " token requests in " << window
       << " s (" << token_attempts / window << "/s), 100 new bindings made " << recovery
       << " s after it came back, 0 duplicates";
  report(line);
}
