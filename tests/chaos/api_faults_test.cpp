// The API misbehaving while the daemon runs: 30% 5xx for a minute, a 429 storm with
// Retry-After, and creates whose answers are dropped.
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "chaos.hpp"

using namespace thingsync::chaos;
using namespace std::chrono_literals;

namespace {

int writes(const Sim& sim) { return sim.count("POST") + sim.count("PUT") + sim.count("DELETE"); }

int all_methods(const Sim& sim, const std::string& status) {
  return sim.count("GET", status) + sim.count("POST", status) + sim.count("PUT", status) +
         sim.count("DELETE", status);
}

// A password that meets the API's policy, different per n.
std::string literal_password(int n) { return "Chaos-Literal-Password-" + std::to_string(1000 + n); }

}  // namespace

TEST_CASE("30% 5xx for a minute: converges, applies an edit and repairs deletes, no idle writes",
          "[chaos][faults]") {
  const auto seed = chaos_seed();
  Sim sim({"--random-seed", std::to_string(seed)});
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()));
  const Desired first(devices(1, 1000));
  rig.set_desired(first);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 10));

  sim.set_faults({{"failRate", 0.3}});
  const auto t0 = Clock::now();
  Daemon d(rig);
  REQUIRE(wait_converged(sim, rig, first, unmanaged, d, 240s));
  const double initial = seconds_since(t0);

  // An edit under faults: 100 more devices, 10 with a new (literal) password.
  Desired second(devices(1, 1100));
  for (int i = 0; i < 10; ++i) second.literal[second.devices[static_cast<std::size_t>(i)]] = literal_password(i);
  const auto t_edit = Clock::now();
  rig.set_desired(second);
  REQUIRE(wait_converged(sim, rig, second, unmanaged, d, 120s));
  const double edit = seconds_since(t_edit);

  // 20 bindings deleted in the portal: put back at a full resync, under faults.
  const auto items = sim.admin("GET", "/_sim/bindings").json().at("items");
  int deleted = 0;
  for (const auto& b : items) {
    if (unmanaged.by_id.contains(b.at("id").get<std::string>())) continue;
    REQUIRE(sim.admin("DELETE", "/_sim/bindings/" + b.at("id").get<std::string>()).status == 204);
    if (++deleted == 20) break;
  }
  const auto t_deletes = Clock::now();
  REQUIRE(wait_converged(sim, rig, second, unmanaged, d, 120s));
  const double repair = seconds_since(t_deletes);

  // The rest of the minute (the fault's duration): converged, so nothing may be written.
  const int writes_idle = writes(sim);
  const auto idle_from = Clock::now();
  while (Clock::now() - t0 < 60s) {
    CHECK(d.proc().running());
    std::this_thread::sleep_for(250ms);
  }
  const double idle = seconds_since(idle_from);
  CHECK(writes(sim) == writes_idle);
  CHECK(inspect(sim, rig, second, unmanaged).converged());
  sim.clear_faults();
  const int fives = all_methods(sim, "500") + all_methods(sim, "503");
  const auto retries = d.log_count("retrying method=");
  const double failed_ops = d.metric("thingsync_operations_total", {{"result", "failure"}});
  CHECK(fives > 0);
  CHECK(d.metric("thingsync_api_requests_total", {{"code", "500"}}) +
            d.metric("thingsync_api_requests_total", {{"code", "503"}}) ==
        fives);
  check_daemon_side(d, sim, rig, second, 1110, {sim.token()});

  auto line = summary();
  line << "30% 5xx for " << seconds_since(t0) << " s: 1000 bindings converged in " << initial
       << " s, edit (+100, 10 new passwords) in " << edit << " s, 20 portal deletes repaired in "
       << repair << " s, " << idle << " s idle with 0 writes; " << fives << " 5xx, " << retries
       << " retries, " << failed_ops << " operations failed (retried later), seed " << seed;
  report(line);
}

TEST_CASE("a 429 storm with Retry-After: every request waits out the pause, converges",
          "[chaos][faults]") {
  TempDir logs("thingsync-chaos-log");
  const auto request_log = logs / "requests.jsonl";
  Sim sim({"--request-log", request_log.string()});
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()), {.concurrency = 16});
  const Desired desired(devices(1, 300));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 10));

  sim.set_faults({{"rateLimit", 25}});  // the daemon's own limit is 2000/s
  const auto t0 = Clock::now();
  Daemon d(rig);
  REQUIRE(wait_converged(sim, rig, desired, unmanaged, d, 120s));
  const double took = seconds_since(t0);
  sim.clear_faults();

  const int storm = all_methods(sim, "429");
  const int ok = all_methods(sim, "200") + all_methods(sim, "201");
  CHECK(storm > 0);
  // Both sides count the same 429s.
  CHECK(d.metric("thingsync_rate_limited_total") == storm);
  CHECK(d.metric("thingsync_api_requests_total", {{"code", "429"}}) == storm);
  // Retry-After (1 s here) pauses all traffic: after a 429, requests already on their way may
  // still arrive, but nothing new may be sent until the pause is over.
  const auto log = read_request_log(request_log);
  int in_pause = 0;
  for (const auto& r : log) {
    if (r.status != 429) continue;
    for (const auto& other : log) {
      in_pause += other.api() && other.time_ms > r.time_ms + 250 && other.time_ms < r.time_ms + 900;
    }
  }
  CHECK(in_pause == 0);
  // No hot loop: at most one burst of 429s (the requests in flight) per pause.
  CHECK(storm <= 16 * (static_cast<int>(took) + 2));
  check_daemon_side(d, sim, rig, desired, 310, {sim.token()});

  auto line = summary();
  line << "429 storm (sim limit 25/s, daemon 2000/s): 300 bindings converged in " << took << " s ("
       << ok / took << " ok answers/s), " << storm << " 429s, " << in_pause
       << " requests sent inside a Retry-After pause, 0 duplicates";
  report(line);
}

TEST_CASE("the simulator drops 20% of create answers (--drop-after-create 0.2): every unanswered create resolved by a lookup, none re-posted",
          "[chaos][faults]") {
  const auto seed = chaos_seed();
  TempDir logs("thingsync-chaos-log");
  const auto request_log = logs / "requests.jsonl";
  Sim sim({"--drop-after-create", "0.2", "--request-log", request_log.string(), "--random-seed",
           std::to_string(seed)});
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()));
  const Desired desired(devices(1, 1000));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 10));

  const auto t0 = Clock::now();
  Daemon d(rig);
  const bool converged = wait_converged(sim, rig, desired, unmanaged, d, 120s);
  INFO(inspect(sim, rig, desired, unmanaged).describe());
  REQUIRE(converged);
  const double took = seconds_since(t0);
  sim.clear_faults();

  int dropped = 0;
  for (const auto& r : read_request_log(request_log)) dropped += r.dropped;
  const auto adopted = d.log_count("create adopted existing binding");
  CHECK(dropped > 100);  // about 20% of 1000
  CHECK(static_cast<int>(adopted) == dropped);
  CHECK(sim.count("POST", "409") == 0);
  CHECK(sim.count("POST") == 1000);
  // An adopted binding may hold someone else's password: it is put once.
  CHECK(sim.count("PUT") == dropped);
  check_daemon_side(d, sim, rig, desired, 1010, {sim.token()});

  auto line = summary();
  line << "drop-after-create 0.2: 1000 bindings converged in " << took << " s, " << dropped
       << " answers dropped, " << adopted << " resolved by lookup, 0 re-posted (409: "
       << sim.count("POST", "409") << "), 0 duplicates, seed " << seed;
  report(line);
}

TEST_CASE("a gateway answers 20% of writes 502/504 after the API did them (--fail-after-commit 0.2): no duplicate binding, converges",
          "[chaos][faults]") {
  const auto seed = chaos_seed();
  // The sim accepts a second binding for a device (its default, as the API may): a create
  // sent again after its 502 would leave one behind.
  Sim sim({"--fail-after-commit", "0.2", "--duplicates", "allow", "--random-seed",
           std::to_string(seed)});
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()));
  const Desired desired(devices(1, 1000));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 10));

  const auto t0 = Clock::now();
  Daemon d(rig);
  const bool converged = wait_converged(sim, rig, desired, unmanaged, d, 120s);
  INFO(inspect(sim, rig, desired, unmanaged).describe());
  REQUIRE(converged);
  const double took = seconds_since(t0);
  const auto counters = sim.admin("GET", "/_sim/counters").json();
  sim.clear_faults();

  const int struck = counters.at("failedAfterCommit").get<int>();
  const auto adopted = d.log_count("create adopted existing binding");
  CHECK(struck > 150);  // about 20% of the writes
  // Every POST answered 502/504 was looked up and adopted, never posted again.
  CHECK(sim.count("POST") == 1000);
  CHECK(adopted > 100);
  check_daemon_side(d, sim, rig, desired, 1010, {sim.token()});

  auto line = summary();
  line << "fail-after-commit 0.2: 1000 bindings converged in " << took << " s, " << struck
       << " writes answered 502/504 after they were done, " << adopted
       << " creates resolved by lookup, 0 re-posted, 0 duplicates, seed " << seed;
  report(line);
}
