// Crashes and outages: the daemon killed with SIGKILL again and again, the simulator killed and
// restarted from its data file, the simulator stopped (every connection hangs) for 30 s.
#include <catch2/catch.hpp>

#include <csignal>
#include <random>
#include <sstream>
#include <thread>

#include "chaos.hpp"

using namespace thingsync::chaos;
using namespace std::chrono_literals;

namespace {

// The metric a daemon keeps about requests that got no answer at all.
double unanswered(const Daemon& d) {
  return d.metric("thingsync_api_requests_total", {{"code", "none"}});
}

}  // namespace

TEST_CASE("kill -9 of the daemon at random moments, 5 times, during a 2,000-binding convergence",
          "[chaos][restart]") {
  const auto seed = chaos_seed();
  std::mt19937_64 rng(seed);
  Sim sim({"--latency", "3ms"});
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()));
  const Desired desired(devices(1, 2000));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 20));

  const auto t0 = Clock::now();
  std::ostringstream kills;
  std::size_t retries = 0;
  for (int k = 1; k <= 5; ++k) {
    Daemon d(rig);
    // A random moment: right at the start (load, first list) or after up to 300 more creates.
    const int before = sim.count("POST", "201");
    const int more = std::uniform_int_distribution<int>(0, 300)(rng);
    INFO("seed " << seed << ", kill " << k << " after " << more << " more creates");
    REQUIRE(eventually([&] { return sim.count("POST", "201") >= before + more; }, 120s, 10ms));
    REQUIRE(d.proc().running());
    d.kill9();
    kills << (k > 1 ? "/" : "") << sim.count("POST", "201");
    retries += d.log_count("retrying method=");
  }
  const int created_before_last = sim.count("POST", "201");
  REQUIRE(created_before_last < 2000);  // the kills all landed before the end

  const auto t_last = Clock::now();
  Daemon d(rig);
  const bool converged = wait_converged(sim, rig, desired, unmanaged, d, 180s);
  INFO(inspect(sim, rig, desired, unmanaged).describe());
  REQUIRE(converged);
  const double last_run = seconds_since(t_last), total = seconds_since(t0);
  retries += d.log_count("retrying method=");
  const auto view = inspect(sim, rig, desired, unmanaged);
  // Creates are never sent twice: the sim accepts a second binding for a device (as the API
  // may), so exactly one 201 per device is the proof.
  CHECK(sim.count("POST", "409") == 0);
  CHECK(sim.count("POST", "201") == 2000);
  // Fingerprints of the last second before a kill may be lost: each such binding gets its
  // password put once more, never more than the creates of those seconds.
  const int reputs = sim.count("PUT");
  CHECK(reputs < 5 * 300);
  check_daemon_side(d, sim, rig, desired, 2020, {sim.token()});

  auto line = summary();
  line << "kill9 x5: converged in " << last_run << " s after the last restart (" << total
       << " s in all), " << view.bindings - 20 << " bindings, " << view.duplicated
       << " duplicates, creates done at each kill " << kills.str() << ", passwords re-put "
       << reputs << ", requests retried " << retries << ", seed " << seed;
  report(line);
}

TEST_CASE("the simulator killed mid-run and restarted from --data on the same port",
          "[chaos][restart]") {
  TempDir data("thingsync-chaos-simdata");
  Sim sim({"--latency", "3ms", "--data", (data / "store.json").string()});
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()), {.timeout = "2s"});
  const Desired desired(devices(1, 2000));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 20));

  Daemon d(rig);
  REQUIRE(eventually([&] { return sim.count("POST", "201") >= 700; }, 120s, 10ms));
  const int posts_first_run = sim.count("POST");
  sim.kill();
  const auto t_kill = Clock::now();
  // Down until the daemon has run into the closed port (connection refused).
  const auto refused_before = d.log_count("Connection refused");
  REQUIRE(eventually([&] { return d.log_count("Connection refused") > refused_before; }, 30s));
  CHECK(d.proc().running());
  CHECK(d.status("/healthz") == 200);
  sim.start();
  const double down = seconds_since(t_kill);
  const auto t_up = Clock::now();
  // What the kill lost: creates answered 201 that the data file had not caught yet.
  const auto after_restart = inspect(sim, rig, desired, unmanaged);
  REQUIRE(after_restart.reachable);

  const bool converged = wait_converged(sim, rig, desired, unmanaged, d, 180s);
  INFO(inspect(sim, rig, desired, unmanaged).describe());
  REQUIRE(converged);
  const double recovery = seconds_since(t_up);
  const auto view = inspect(sim, rig, desired, unmanaged);
  // Creates whose answer the kill swallowed were looked up, not posted again.
  const int conflicts = sim.count("POST", "409");
  CHECK(conflicts == 0);
  check_daemon_side(d, sim, rig, desired, 2020, {sim.token()});

  auto line = summary();
  line << "sim kill -9 + restart (--data, same port): down " << down << " s after "
       << posts_first_run << " POSTs, " << after_restart.missing
       << " bindings still to make after the restart, converged " << recovery
       << " s after it, " << view.bindings - 20 << " bindings, " << view.duplicated
       << " duplicates, re-posts refused (409) " << conflicts;
  report(line);
}

TEST_CASE("the simulator unreachable for 30 s mid-run (stopped: connections hang)",
          "[chaos][restart]") {
  Sim sim({"--latency", "3ms"});
  Rig rig;
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()), {.timeout = "2s"});
  const Desired desired(devices(1, 2000));
  rig.set_desired(desired);
  const auto unmanaged = seed_unmanaged(sim, devices(900001, 20));

  Daemon d(rig);
  REQUIRE(eventually([&] { return sim.count("POST", "201") >= 600; }, 120s, 10ms));
  const double none_before = unanswered(d);
  sim.process().signal(SIGSTOP);
  const auto t_stop = Clock::now();
  // The outage is a scenario parameter: 30 s. Meanwhile the daemon must stay alive, answer its
  // health check promptly and report the failures.
  int health_checks = 0, health_failures = 0;
  double worst_health_ms = 0;
  while (Clock::now() - t_stop < 30s) {
    const auto t = Clock::now();
    health_failures += d.status("/healthz") != 200;
    worst_health_ms = std::max(worst_health_ms, seconds_since(t) * 1000);
    ++health_checks;
    std::this_thread::sleep_for(500ms);
  }
  const double none_during = unanswered(d) - none_before;
  const auto timeouts = d.log_count("no complete answer within");
  CHECK(d.proc().running());
  CHECK(health_failures == 0);
  CHECK(worst_health_ms < 1000);
  CHECK(none_during > 0);  // the outage shows in the metrics ...
  CHECK(timeouts > 0);     // ... and in the log
  sim.process().signal(SIGCONT);
  const auto t_up = Clock::now();

  const bool converged = wait_converged(sim, rig, desired, unmanaged, d, 180s);
  INFO(inspect(sim, rig, desired, unmanaged).describe());
  REQUIRE(converged);
  const double recovery = seconds_since(t_up);
  const auto view = inspect(sim, rig, desired, unmanaged);
  // Creates that timed out were sent; the stopped simulator carried them out when it woke up.
  // None of them may have been posted a second time.
  const int conflicts = sim.count("POST", "409");
  CHECK(conflicts == 0);
  check_daemon_side(d, sim, rig, desired, 2020, {sim.token()});

  auto line = summary();
  line << "sim unreachable 30 s (SIGSTOP): " << none_during << " requests without answer, "
       << timeouts << " timeouts logged, /healthz " << health_checks - health_failures << "/"
       << health_checks
       << " ok (worst " << worst_health_ms << " ms), converged " << recovery
       << " s after SIGCONT, " << view.bindings - 20 << " bindings, " << view.duplicated
       << " duplicates, re-posts refused (409) " << conflicts;
  report(line);
}
