// thingsync run: the real daemon against the real simulator.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <sstream>
#include <thread>

#include "daemon.hpp"
#include "fleet.hpp"
#include "thingsync/core/device_id.hpp"

using namespace thingsync::e2e;
using thingsync::testsupport::http;
using thingsync::testsupport::read_file;
using thingsync::testsupport::write_file;

namespace {

constexpr auto kFast = "  pollInterval: 300ms\n  fullResyncInterval: 2s\n  modifiedSinceOverlap: 1s\n";

}  // namespace

TEST_CASE("the daemon converges, then /readyz answers 200 and metrics show it", "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kFast});
  const auto devices = imeis(1, 25);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  CHECK(d.get("/healthz").status == 200);
  CHECK(passwords(sim).size() == 25);
  CHECK(d.metric("thingsync_desired_bindings") == 25);
  CHECK(d.metric("thingsync_observed_bindings") == 25);
  CHECK(d.metric("thingsync_operations_total{action=\"create\",result=\"success\"}") == 25);
  CHECK(d.metric("thingsync_last_successful_reconcile_timestamp_seconds") > 0);
  CHECK(d.metric("thingsync_rate_limit_current") == 2000);  // sync.rateLimit, fixed
}

TEST_CASE("an out-of-band delete is re-created within the full resync interval",
          "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kFast});
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  const auto all = sim.admin("GET", "/_sim/bindings").json();
  const std::string victim = all["items"][0]["id"];
  const std::string device = all["items"][0]["deviceId"];
  REQUIRE(sim.admin("DELETE", "/_sim/bindings/" + victim).status == 204);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return passwords(sim).count(device) == 1; }, std::chrono::seconds(10)));
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO("re-created after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < std::chrono::milliseconds(2000 + 1500));  // fullResyncInterval + a pass
  CHECK(passwords(sim).at(device) == fleet.derived(device));
}

TEST_CASE("an out-of-band password change is noticed and the desired password put back",
          "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1h\n"});
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  const auto all = sim.admin("GET", "/_sim/bindings").json();
  const std::string id = all["items"][2]["id"];
  const std::string device = all["items"][2]["deviceId"];
  // A portal user sets another password: the API will never show it, only that it changed.
  REQUIRE(sim.admin("PUT", "/_sim/bindings/" + id,
                    {{"deviceId", device}, {"password", "Someone-Elses-Password-123"}})
              .status == 200);
  REQUIRE(eventually([&] { return passwords(sim).at(device) == fleet.derived(device); },
                     std::chrono::seconds(10)));
  CHECK(d.proc().wait_for_output("changed outside thingsync", std::chrono::seconds(1)));
}

TEST_CASE("a desired-state edit is applied within 2 s without SIGHUP", "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1h\n"});
  auto devices = imeis(1, 10);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  const auto added = imeis(777, 1)[0];
  devices.push_back(added);
  const auto t0 = std::chrono::steady_clock::now();
  fleet.set_desired(devices);
  REQUIRE(eventually([&] { return passwords(sim).count(added) == 1; }, std::chrono::seconds(5)));
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO("applied after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < std::chrono::seconds(2));
}

TEST_CASE("a password edit in one file is put by a pass over that file's devices only",
          "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1h\n"});
  const auto devices = imeis(1, 30);
  fleet.set_desired(std::vector<std::string>(devices.begin(), devices.begin() + 10));
  // A second file, edited below in place (a rename of the whole tree would reload it all).
  auto second = [&](const std::string& literal_for_21) {
    std::string y = "defaults:\n  password:\n    derive:\n      keyFile: ../fleet-key\nbindings:\n";
    for (std::size_t i = 10; i < devices.size(); ++i) {
      y += "  - deviceId: \"" + devices[i] + "\"\n";
      if (i == 20 && !literal_for_21.empty()) {
        y += "    password:\n      value: \"" + literal_for_21 + "\"\n";
      }
    }
    write_file(fleet.desired_dir() / "second.yaml", y);
  };
  second("");
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  REQUIRE(passwords(sim).size() == 30);
  reset_counters(sim);

  const std::string changed = "Second-File-Password-0123456789.";
  second(changed);
  REQUIRE(eventually([&] { return passwords(sim).at(devices[20]) == changed; },
                     std::chrono::seconds(5)));
  CHECK(d.proc().wait_for_output("reconciling changed devices: ", std::chrono::seconds(1)));
  CHECK(d.proc().wait_for_output("(1 files parsed, 20 devices affected)", std::chrono::seconds(1)));
  // The full pass after it finds nothing left to do; every other device keeps its password.
  REQUIRE(eventually([&] { return d.metric("thingsync_drift_bindings{action=\"update\"}") == 0; },
                     std::chrono::seconds(5)));
  CHECK(writes(sim) == 1);
  const auto now = passwords(sim);
  for (const auto& dev : devices) {
    if (dev != devices[20]) CHECK(now.at(dev) == fleet.derived(dev));
  }

  // And back: the derived password is put again, by the same path.
  second("");
  REQUIRE(eventually([&] { return passwords(sim).at(devices[20]) == fleet.derived(devices[20]); },
                     std::chrono::seconds(5)));
}

TEST_CASE("once the overlap has passed, a poll of a quiet fleet is one request and still sees a change",
          "[e2e][daemon]") {
  TempDir logdir("thingsync-e2e-requests");
  const auto log_path = logdir / "requests.log";
  Sim sim({"--request-log", log_path.string()});
  // More bindings than fit a page (1,000): re-reading all of them would take two requests.
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 100ms\n  fullResyncInterval: 1h\n"
                                  "  modifiedSinceOverlap: 5s\n"});
  const auto devices = imeis(1, 1200);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(60)));

  // The sim's request log: the list requests since the daemon was ready.
  auto list_queries = [&] {
    std::vector<std::string> out;
    std::istringstream in(read_file(log_path));
    for (std::string line; std::getline(in, line);) {
      // The sim may be writing the last line right now: a line cut short is skipped.
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;
      if (j["method"] == "GET" && j["path"] == "/mqtt/bindings") out.push_back(j["query"]);
    }
    return out;
  };
  // Within the overlap each poll re-reads the 1,200 bindings just created (two pages); once
  // it has passed, polls start at the newest change: eight polls in a row of one request.
  const bool quiet = eventually(
      [&] {
        const auto q = list_queries();
        if (q.size() < 8) return false;
        return std::all_of(q.end() - 8, q.end(), [](const std::string& s) {
          return s.find("modifiedSince=") != std::string::npos &&
                 s.find("cursor=") == std::string::npos;
        });
      },
      std::chrono::seconds(20));
  REQUIRE(quiet);
  const auto before = list_queries();
  // Polls re-read two pages before that (within the overlap window).
  CHECK(std::any_of(before.begin(), before.end(),
                    [](const std::string& s) { return s.find("cursor=") != std::string::npos; }));

  // A change made now is newer than everything seen: the next poll brings it.
  const auto all = sim.admin("GET", "/_sim/bindings").json();
  const std::string id = all["items"][7]["id"];
  const std::string device = all["items"][7]["deviceId"];
  REQUIRE(sim.admin("PUT", "/_sim/bindings/" + id,
                    {{"deviceId", device}, {"password", "Someone-Elses-Password-123"}})
              .status == 200);
  REQUIRE(eventually([&] { return passwords(sim).at(device) == fleet.derived(device); },
                     std::chrono::seconds(5)));
  CHECK(d.proc().wait_for_output("changed outside thingsync", std::chrono::seconds(1)));
  CHECK(list_queries().size() > before.size());
}

TEST_CASE("a broken desired-state file changes nothing, counts an error, and a fix recovers",
          "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%",
                    .extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1h\n"});
  const auto devices = imeis(1, 6);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  reset_counters(sim);
  // A YAML error in the only file: with prune on, "no bindings" must not mean "delete all".
  write_file(fleet.desired_dir() / "fleet.yaml", "bindings:\n  - deviceId: [unclosed\n");
  REQUIRE(eventually([&] { return d.metric("thingsync_desired_state_load_errors_total") >= 1; },
                     std::chrono::seconds(5)));
  CHECK_FALSE(d.ready());
  CHECK(writes(sim) == 0);
  CHECK(passwords(sim).size() == 6);
  CHECK(d.proc().wait_for_output("fleet.yaml:3:1: error: YAML syntax error", std::chrono::seconds(1)));
  // Fixed, with one device fewer: now the delete is real.
  fleet.set_desired(std::vector<std::string>(devices.begin() + 1, devices.end()));
  REQUIRE(eventually([&] { return d.ready() && passwords(sim).size() == 5; },
                     std::chrono::seconds(5)));
}

TEST_CASE("an edit made while another file is broken is applied once that file is fixed",
          "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1h\n"});
  const auto devices = imeis(1, 10);
  auto file = [&](std::size_t first, const std::string& literal_for_first) {
    std::string y = "defaults:\n  password:\n    derive:\n      keyFile: ../fleet-key\nbindings:\n";
    for (std::size_t i = first; i < first + 5; ++i) {
      y += "  - deviceId: \"" + devices[i] + "\"\n";
      if (i == first && !literal_for_first.empty()) {
        y += "    password:\n      value: \"" + literal_for_first + "\"\n";
      }
    }
    return y;
  };
  write_file(fleet.desired_dir() / "a.yaml", file(0, ""));
  write_file(fleet.desired_dir() / "b.yaml", file(5, ""));
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  auto errors = [&] { return d.metric("thingsync_desired_state_load_errors_total"); };

  write_file(fleet.desired_dir() / "b.yaml", "bindings:\n  - deviceId: [unclosed\n");
  REQUIRE(eventually([&] { return errors() >= 1; }, std::chrono::seconds(5)));
  // Edited while b.yaml is broken: parsed now, in force only with the fix of b.yaml.
  const std::string changed = "Edited-While-Broken-0123456789.";
  write_file(fleet.desired_dir() / "a.yaml", file(0, changed));
  REQUIRE(eventually([&] { return errors() >= 2; }, std::chrono::seconds(5)));
  CHECK(passwords(sim).at(devices[0]) == fleet.derived(devices[0]));

  write_file(fleet.desired_dir() / "b.yaml", file(5, ""));
  REQUIRE(eventually([&] { return passwords(sim).at(devices[0]) == changed; },
                     std::chrono::seconds(5)));
  CHECK(d.ready());
}

TEST_CASE("SIGHUP reloads the desired state", "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1h\n"});
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  d.proc().signal(SIGHUP);
  CHECK(d.proc().wait_for_output("SIGHUP: reloading", std::chrono::seconds(5)));
  CHECK(eventually([&] { return d.proc().err().find("desired state loaded", d.proc().err().find("SIGHUP")) != std::string::npos; },
                   std::chrono::seconds(5)));
}

TEST_CASE("SIGTERM exits 0 within 5 s and leaves the state file intact", "[e2e][daemon]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = kFast});
  fleet.set_desired(imeis(1, 8));
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, std::chrono::seconds(30)));
  const auto t0 = std::chrono::steady_clock::now();
  d.proc().signal(SIGTERM);
  const auto code = d.proc().wait(std::chrono::seconds(5));
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  const auto state = read_file(fleet.state());
  CHECK(nlohmann::json::parse(state)["bindings"].size() == 8);
  reset_counters(sim);
  CHECK(fleet.apply().code == 0);
  CHECK(writes(sim) == 0);
}

TEST_CASE("NOTIFY_SOCKET receives READY, RELOADING, STOPPING and WATCHDOG", "[e2e][daemon]") {
  NotifySocket notify;
  auto receive_until = [&](const std::string& what) { return notify.receive_until(what); };

  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1h\n"});
  fleet.set_desired(imeis(1, 3));
  Daemon d(fleet, {notify.env(), "WATCHDOG_USEC=400000"});
  CHECK(receive_until("WATCHDOG=1"));
  CHECK(receive_until("READY=1"));
  CHECK(receive_until("STATUS=desired=3 observed=3"));
  d.proc().signal(SIGHUP);
  CHECK(receive_until("RELOADING=1\nMONOTONIC_USEC="));
  d.proc().signal(SIGTERM);
  CHECK(receive_until("STOPPING=1"));
  CHECK(d.proc().wait(std::chrono::seconds(5)) == 0);
}
