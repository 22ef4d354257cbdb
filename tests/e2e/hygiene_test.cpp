// One writer, an honest state file, a clean stop: the daemon's and apply's hygiene with the
// real binaries.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "daemon.hpp"
#include "fleet.hpp"

using namespace thingsync::e2e;
using thingsync::testsupport::read_file;
using namespace std::chrono_literals;

namespace {
constexpr auto kQuiet = "  pollInterval: 300ms\n  fullResyncInterval: 1h\n";

// A command prefix that runs thingsync in a user namespace of its own with the per-user limit
// /proc/sys/user/NAME set to `value`: real inotify failures with no effect on the rest of the
// machine. nullopt (the test skipped, with a warning) without user namespaces.
std::optional<std::vector<std::string>> with_user_limit(const std::string& name, int value) {
  Process probe({"/usr/bin/unshare", "--user", "--map-root-user", "true"});
  if (probe.wait(10s) != 0) {
    WARN("skipped: user namespaces are not available here");
    return std::nullopt;
  }
  return std::vector<std::string>{"/usr/bin/unshare", "--user", "--map-root-user", "/bin/sh", "-c",
                                  "echo " + std::to_string(value) + " > /proc/sys/user/" + name +
                                      " && exec \"$@\"",
                                  "sh"};
}
// A daemon with no file events (an inotify limit): it converges, logs `said`, counts the
// watch error, and a desired-state edit is found by the next poll's rescan.
void check_rescans(const Sim& sim, Fleet& fleet, Daemon& d, const std::string& said) {
  REQUIRE(eventually([&] { return d.ready() && remote_passwords(sim).size() == 3; }, 30s));
  CHECK(d.proc().err().find(said) != std::string::npos);
  CHECK(d.metric("thingsync_desired_state_watch_errors_total") >= 1);
  fleet.set_desired(imeis(1, 5));
  CHECK(eventually([&] { return remote_passwords(sim).size() == 5; }, 15s));
}
}  // namespace

TEST_CASE("one writer: apply beside a running daemon, and a second daemon, refuse at once",
          "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet});
  fleet.set_desired(imeis(1, 5));
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  reset_counters(sim);
  const std::string holder = "pid=" + std::to_string(d.proc().pid());

  const auto t0 = std::chrono::steady_clock::now();
  const auto apply = fleet.apply();
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(apply.code == 1);
  CHECK(apply.err.find("in use by another thingsync") != std::string::npos);
  CHECK(apply.err.find(holder) != std::string::npos);

  Process second({THINGSYNC_PATH, "run", "--config", fleet.config().string()});
  const auto code = second.wait(5s);
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(second.err().find(holder) != std::string::npos);
  CHECK(writes(sim) == 0);
  CHECK(d.proc().running());
  // plan reads beside the daemon.
  CHECK(fleet.plan_json().code == 0);
}

TEST_CASE("a state file that cannot be saved: apply sends nothing, the daemon is not ready",
          "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet, .state_path = "missing/state.json"});
  fleet.set_desired(imeis(1, 5));
  const auto apply = fleet.apply();
  CHECK(apply.code == 1);
  CHECK(writes(sim) == 0);

  NotifySocket notify;
  Daemon d(fleet, {notify.env()});
  REQUIRE(eventually([&] { return d.get("/readyz").body.find("cannot be saved") != std::string::npos; }, 30s));
  // Several polls, each followed by a look at the state: still nothing written, not READY.
  const int lists = requests(sim, "GET");
  REQUIRE(eventually([&] { return requests(sim, "GET") >= lists + 3; }, 10s));
  CHECK(writes(sim) == 0);
  CHECK_FALSE(d.ready());
  CHECK(notify.received().find("READY=1") == std::string::npos);
  CHECK(notify.received().find("the state cannot be saved") != std::string::npos);  // STATUS=
  // The directory appears: the daemon takes the lock, saves, converges, and only then READY=1.
  std::filesystem::create_directories(fleet.dir() / "missing");
  CHECK(eventually([&] { return d.ready() && remote_passwords(sim).size() == 5; }, 10s));
  CHECK(notify.receive_until("READY=1"));
  d.proc().signal(SIGTERM);
  CHECK(d.proc().wait(5s) == 0);
  CHECK(d.proc().err().find("stopped; state saved to") != std::string::npos);
}

TEST_CASE("apply with sync.mode: observe refuses with 64 and writes nothing", "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  mode: observe\n"});
  fleet.set_desired(imeis(1, 5));
  const auto apply = fleet.apply();
  CHECK(apply.code == 64);
  CHECK(apply.err.find("sync.mode: reconcile") != std::string::npos);
  CHECK(writes(sim) == 0);
  CHECK(requests(sim, "GET") == 0);
}

TEST_CASE("a state file of another API is refused, and nothing is sent to either",
          "[e2e][hygiene]") {
  Sim first;
  Fleet fleet(first);
  fleet.set_desired(imeis(1, 5));
  REQUIRE(fleet.apply().code == 0);
  Sim second;
  // The same directory (state file, desired state) pointed at another API.
  thingsync::testsupport::write_file(
      fleet.config(), [&] {
        auto cfg = read_file(fleet.config());
        const auto at = cfg.find(first.url());
        REQUIRE(at != std::string::npos);
        return cfg.replace(at, first.url().size(), second.url());
      }());
  thingsync::testsupport::write_file(fleet.dir() / "api-token", second.token() + "\n");
  for (const auto& args : {std::vector<std::string>{"apply", "--yes"}, {"plan"}}) {
    const auto run = fleet.run(args);
    CHECK(run.code == 1);
    CHECK(run.err.find("belongs to " + first.url()) != std::string::npos);
    CHECK(run.err.find("mv ") != std::string::npos);
  }
  CHECK(writes(second) == 0);
  CHECK(requests(second, "GET") == 0);
}

TEST_CASE("an exception that escapes the main loop ends the daemon with a non-zero exit",
          "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet});
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet, {"THINGSYNC_INJECT_CRASH=main_loop"});
  const auto code = d.proc().wait(30s);
  REQUIRE(code);
  CHECK(*code != 0);
  CHECK(d.proc().err().find("main loop crashed") != std::string::npos);
}

TEST_CASE("SIGTERM on an idle daemon exits within 1 s, whatever WatchdogSec is",
          "[e2e][hygiene]") {
  NotifySocket notify;
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1h\n"});
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet, {notify.env(), "WATCHDOG_USEC=40000000"});
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  std::this_thread::sleep_for(300ms);  // idle
  const auto t0 = std::chrono::steady_clock::now();
  d.proc().signal(SIGTERM);
  const auto code = d.proc().wait(5s);
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(code);
  CHECK(*code == 0);
  INFO("exited after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 1s);
}

TEST_CASE("a lock file deleted under a running daemon does not make two writers",
          "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet});
  auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  Daemon first(fleet);
  REQUIRE(eventually([&] { return first.ready(); }, 30s));
  // Taken for a stale pidfile: someone deletes it, and a second daemon locks a new one.
  std::filesystem::remove(fleet.dir() / "state.json.lock");
  Daemon second(fleet);
  REQUIRE(eventually([&] { return second.ready(); }, 30s));
  // The first sees at its next turn that the lock is no longer its own, and stops writing.
  REQUIRE(eventually([&] { return first.get("/readyz").body.find("in use by another") != std::string::npos; }, 5s));
  devices.push_back(imeis(700, 1)[0]);
  fleet.set_desired(devices);
  REQUIRE(eventually([&] { return remote_passwords(sim).size() == devices.size(); }, 10s));
  std::this_thread::sleep_for(1s);  // both have seen the edit
  for (const auto& [device, passwords] : remote_passwords(sim)) {
    INFO(device);
    CHECK(passwords.size() == 1);
  }
  CHECK(requests(sim, "POST") == 6);
}

TEST_CASE("SIGTERM while the API fails and calls back off exits within 1 s", "[e2e][hygiene]") {
  Sim sim({"--fail-rate", "1"});
  Fleet fleet(sim, {.extra_sync = kQuiet});
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet);
  // The first list fails and is retried: calls wait out their backoff.
  REQUIRE(d.proc().wait_for_output("retrying", 30s));
  const auto t0 = std::chrono::steady_clock::now();
  d.proc().signal(SIGTERM);
  const auto code = d.proc().wait(10s);
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(code);
  CHECK(*code == 0);
  INFO("exited after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms");
  CHECK(took < 1s);
}

TEST_CASE("a hung API does not starve the watchdog: requests are cut at half its timeout",
          "[e2e][hygiene]") {
  NotifySocket notify;
  Sim sim({"--latency", "60s"});  // every answer comes after a minute
  Fleet fleet(sim, {.extra_sync = kQuiet, .api_timeout = "60s"});
  fleet.set_desired(imeis(1, 3));
  // WatchdogSec=4s: a ping at least every 4 s, or systemd kills the daemon.
  Daemon d(fleet, {notify.env(), "WATCHDOG_USEC=4000000"});
  REQUIRE(d.proc().wait_for_output("requests are cut at 2000 ms", 10s));
  auto last = std::chrono::steady_clock::now();
  const auto until = last + 10s;
  std::chrono::milliseconds longest{0};
  int pings = 0;
  while (std::chrono::steady_clock::now() < until) {
    const auto m = notify.next();
    REQUIRE(m);  // within 10 s
    if (m->find("WATCHDOG=1") == std::string::npos) continue;
    const auto now = std::chrono::steady_clock::now();
    longest = std::max(longest, std::chrono::duration_cast<std::chrono::milliseconds>(now - last));
    last = now;
    ++pings;
  }
  INFO("longest time without a ping: " << longest.count() << " ms, " << pings << " pings");
  CHECK(pings >= 3);
  CHECK(longest < 4s);
  CHECK(d.proc().running());
}

TEST_CASE("a state directory made read-only under the daemon stops its writes at once",
          "[e2e][hygiene]") {
  // A read-only bind mount in the daemon's own mount namespace: a real EROFS, seen by no other
  // process on this machine. Needs root (as CI runs).
  if (::geteuid() != 0) {
    WARN("skipped: needs root for a private mount namespace");
    return;
  }
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet, .state_path = "state/state.json"});
  std::filesystem::create_directories(fleet.dir() / "state");
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet, {}, {"/usr/bin/unshare", "--mount", "--propagation", "private", "--"});
  REQUIRE(eventually([&] { return d.ready() && remote_passwords(sim).size() == 3; }, 30s));
  const std::string state_dir = (fleet.dir() / "state").string();
  const std::string pid = std::to_string(d.proc().pid());
  const auto in_its_namespace = [&](std::vector<std::string> cmd) {
    std::vector<std::string> argv{"/usr/bin/nsenter", "-t", pid, "-m", "--"};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    Process p(argv);
    return p.wait(10s) == 0;
  };
  REQUIRE(in_its_namespace({"/usr/bin/mount", "--bind", state_dir, state_dir}));
  REQUIRE(in_its_namespace({"/usr/bin/mount", "-o", "remount,bind,ro", state_dir}));

  REQUIRE(eventually([&] {
    return d.get("/readyz").body.find("cannot write in the state directory") != std::string::npos;
  }, 10s));
  reset_counters(sim);
  fleet.set_desired(imeis(1, 5));  // two more devices: not created while the state is stuck
  const int lists = requests(sim, "GET");
  REQUIRE(eventually([&] { return requests(sim, "GET") >= lists + 3; }, 10s));
  CHECK(writes(sim) == 0);

  REQUIRE(in_its_namespace({"/usr/bin/mount", "-o", "remount,bind,rw", state_dir}));
  CHECK(eventually([&] { return d.ready() && remote_passwords(sim).size() == 5; }, 15s));
  d.proc().signal(SIGTERM);
  CHECK(d.proc().wait(10s) == 0);
}

TEST_CASE("a failed inotify watch is an error, counted, and every poll rescans instead",
          "[e2e][hygiene]") {
  // The inotify watch limit is 1: a real ENOSPC from inotify_add_watch.
  const auto prefix = with_user_limit("max_inotify_watches", 1);
  if (!prefix) return;
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet});
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet, {}, *prefix);
  check_rescans(sim, fleet, d, "rescanning the desired state every pollInterval instead");
  d.proc().signal(SIGTERM);
  CHECK(d.proc().wait(10s) == 0);
}

TEST_CASE("creates cut off by a stop stay pending, and the next start makes no duplicate",
          "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.concurrency = 4, .extra_sync = kQuiet, .api_timeout = "20s"});
  const auto devices = imeis(1, 4);
  fleet.set_desired(devices);
  // Every answer takes 6 s: the creates are sent, and still unanswered when the 4 s grace of
  // a stop runs out.
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"latencyMs", 6000}}).status == 200);
  {
    Daemon d(fleet);
    REQUIRE(eventually([&] { return requests(sim, "POST") >= 4; }, 30s));
    d.proc().signal(SIGTERM);
    REQUIRE(d.proc().wait(15s).has_value());
  }
  const auto state = read_file(fleet.state());
  for (const auto& device : devices) CHECK(state.find(device) != std::string::npos);
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"latencyMs", 0}}).status == 200);
  REQUIRE(fleet.apply().code == 0);
  for (const auto& [device, passwords] : remote_passwords(sim)) {
    INFO(device);
    CHECK(passwords.size() == 1);
  }
}

TEST_CASE("SIGTERM during the start's wait for a Git checkout exits 0 at once",
          "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet});
  fleet.set_desired(imeis(1, 3));
  // A checkout in progress: the start waits for it (a minute at most).
  std::filesystem::create_directories(fleet.desired_dir() / ".git");
  thingsync::testsupport::write_file(fleet.desired_dir() / ".git" / "index.lock", "");
  Process p({THINGSYNC_PATH, "run", "--config", fleet.config().string()});
  REQUIRE(p.wait_for_output("checkout", 30s));
  const auto t0 = std::chrono::steady_clock::now();
  p.signal(SIGTERM);
  const auto code = p.wait(10s);
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}

TEST_CASE("a daemon that waited for the lock while another wrote the state ends, not writes",
          "[e2e][hygiene]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet, .state_path = "state/state.json"});
  fleet.set_desired(imeis(1, 3));
  // No state directory yet: both start without the lock.
  Daemon first(fleet);
  Daemon second(fleet);
  REQUIRE(eventually([&] { return first.get("/readyz").body.find("cannot be saved") != std::string::npos; }, 30s));
  std::filesystem::create_directories(fleet.dir() / "state");
  REQUIRE(eventually([&] { return first.ready() || second.ready(); }, 15s));
  Daemon& winner = first.ready() ? first : second;
  Daemon& loser = first.ready() ? second : first;
  REQUIRE(eventually([&] { return remote_passwords(sim).size() == 3; }, 15s));
  winner.proc().signal(SIGTERM);
  REQUIRE(winner.proc().wait(10s) == 0);
  reset_counters(sim);
  // The loser takes the lock, sees the state file written meanwhile, and ends: its restart
  // loads what the winner saved.
  const auto code = loser.proc().wait(15s);
  REQUIRE(code);
  CHECK(*code != 0);
  CHECK(loser.proc().err().find("was written by another thingsync while this one waited") !=
        std::string::npos);
  CHECK(writes(sim) == 0);
}

TEST_CASE("no inotify instance at all: the daemon starts and rescans every poll",
          "[e2e][hygiene]") {
  const auto prefix = with_user_limit("max_inotify_instances", 0);
  if (!prefix) return;
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kQuiet});
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet, {}, *prefix);
  check_rescans(sim, fleet, d, "max_user_instances");
}

TEST_CASE("SIGTERM during a hung OAuth2 token request ends within the grace", "[e2e][hygiene]") {
  Sim sim({"--oauth-client", "stop-client:stop-secret-5d2a9c"}, "");
  Fleet fleet(sim, {.extra_sync = kQuiet, .api_timeout = "60s"});
  fleet.set_desired(imeis(1, 2));
  thingsync::testsupport::write_file(fleet.dir() / "client-secret", "stop-secret-5d2a9c\n");
  auto cfg = read_file(fleet.config());
  const std::string token_file = "auth:\n  tokenFile: api-token\n";
  const auto at = cfg.find(token_file);
  REQUIRE(at != std::string::npos);
  cfg.replace(at, token_file.size(),
              "auth:\n  oauth2:\n    tokenUrl: " + sim.url() + "/oauth2/token\n"
              "    clientId: stop-client\n    clientSecretFile: client-secret\n"
              "    audience: things\n");
  thingsync::testsupport::write_file(fleet.config(), cfg);
  // Every answer, the token endpoint's too, takes 55 s.
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"latencyMs", 55000}}).status == 200);
  Daemon d(fleet);
  const auto t0 = std::chrono::steady_clock::now();
  d.proc().signal(SIGTERM);
  const auto code = d.proc().wait(30s);
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(code);
  INFO("exited after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 7s);  // the 4 s grace, then the token request is cut off
}
