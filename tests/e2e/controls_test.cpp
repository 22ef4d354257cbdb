// The operator's controls with the real binaries: targets, saved plans, diff, one-run
// overrides, plan output, progress and structured logs.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "daemon.hpp"
#include "fleet.hpp"
#include "thingsync/core/device_id.hpp"

using namespace thingsync::e2e;
using thingsync::testsupport::read_file;
using thingsync::testsupport::write_file;
using namespace std::chrono_literals;

namespace {

std::string canonical(const std::string& device) {
  return thingsync::core::DeviceId::parse(device)->canonical();
}

// A binding made in the portal for a device the desired state does not hold.
void portal_create(const Sim& sim, const std::string& device) {
  REQUIRE(sim.admin("POST", "/_sim/bindings",
                    {{"deviceId", device}, {"password", "Portal-Password-12345678"}})
              .status == 201);
}

// "imei:350000000001234" -> "urn:dev:IMEI:350000000001234:": another spelling of it.
std::string urn(const std::string& imei) { return "urn:dev:IMEI:" + imei.substr(5) + ":"; }

}  // namespace

TEST_CASE("targets: --target and --target-file limit plan and apply to their devices, deletes included",
          "[e2e][controls]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%"});
  auto devices = imeis(1, 4);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  const auto x = imeis(9001, 1)[0], y = imeis(9002, 1)[0];
  portal_create(sim, x);
  portal_create(sim, y);
  devices.push_back(imeis(5, 1)[0]);
  fleet.set_desired(devices);

  // One target, spelled as a URN: the plan holds its delete only.
  const auto plan = fleet.run({"plan", "--output", "json", "--target", urn(x)});
  INFO(plan.out << plan.err);
  CHECK(plan.code == 2);
  const auto j = nlohmann::json::parse(plan.out);
  CHECK(j["create"].empty());
  REQUIRE(j["delete"].size() == 1);
  CHECK(j["delete"][0]["deviceId"] == canonical(x));

  reset_counters(sim);
  CHECK(fleet.run({"apply", "--yes", "--target", urn(x)}).code == 0);
  CHECK(writes(sim) == 1);
  auto remote = remote_passwords(sim);
  CHECK_FALSE(remote.contains(canonical(x)));
  CHECK(remote.contains(canonical(y)));                // not a target
  CHECK_FALSE(remote.contains(canonical(devices[4])));  // not a target

  // The devices of one file: the new device is created, the portal's other binding stays.
  const auto file = fleet.desired_dir() / "fleet.yaml";
  CHECK(fleet.run({"apply", "--yes", "--target-file", file.string()}).code == 0);
  remote = remote_passwords(sim);
  CHECK(remote.contains(canonical(devices[4])));
  CHECK(remote.contains(canonical(y)));

  // Bad targets are usage errors that change nothing.
  reset_counters(sim);
  CHECK(fleet.run({"apply", "--yes", "--target", "imei:12"}).code == 64);
  CHECK(fleet.run({"plan", "--target-file", (fleet.dir() / "nope.yaml").string()}).code == 64);
  CHECK(writes(sim) == 0);
}

TEST_CASE("a saved plan is applied exactly, and refused after a portal edit or a desired edit",
          "[e2e][controls]") {
  Sim sim;
  Fleet fleet(sim);
  auto devices = imeis(1, 3);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  // The next change: device 1 gets a password of its own, device 4 joins.
  const std::map<std::string, std::string> own{{devices[0], "Own-Password-Of-Device-1-xyz!"}};
  devices.push_back(imeis(4, 1)[0]);
  fleet.set_desired(devices, own);
  const auto saved = (fleet.dir() / "plan.json").string();

  SECTION("a portal edit of a binding the plan touches") {
    REQUIRE(fleet.run({"plan", "--out", saved}).code == 2);
    const auto text = read_file(saved);
    CHECK(text.find("\"format_version\": 1") != std::string::npos);
    CHECK(text.find(own.begin()->second) == std::string::npos);
    CHECK(text.find(fleet.derived(devices[3])) == std::string::npos);
    portal_edit(sim, binding_of(sim, devices[0]), devices[0], "mallory@example.com");
    reset_counters(sim);
    const auto apply = fleet.run({"apply", saved});
    INFO(apply.out << apply.err);
    CHECK(apply.code == 1);
    CHECK_THAT(apply.err, Catch::Contains("out of date, so nothing was changed") &&
                              Catch::Contains("binding " + binding_of(sim, devices[0])) &&
                              Catch::Contains("by mallory@example.com"));
    CHECK(writes(sim) == 0);
  }
  SECTION("an edit of the desired state") {
    REQUIRE(fleet.run({"plan", "--out", saved}).code == 2);
    devices.push_back(imeis(5, 1)[0]);
    fleet.set_desired(devices, own);
    reset_counters(sim);
    const auto apply = fleet.run({"apply", saved});
    INFO(apply.out << apply.err);
    CHECK(apply.code == 1);
    CHECK_THAT(apply.err, Catch::Contains("the desired state changed since the plan"));
    CHECK(writes(sim) == 0);
  }
  SECTION("nothing moved: applied as planned, without a question") {
    REQUIRE(fleet.run({"plan", "--out", saved}).code == 2);
    reset_counters(sim);
    const auto apply = fleet.run({"apply", saved});
    INFO(apply.out << apply.err);
    CHECK(apply.code == 0);
    CHECK(writes(sim) == 2);  // the update of device 1, the create of device 4
    CHECK(remote_passwords(sim).at(canonical(devices[0])) ==
          std::vector<std::string>{own.begin()->second});
    // Applied once: now the world has moved past it.
    CHECK(fleet.run({"apply", saved}).code == 1);
  }
  SECTION("a saved plan takes no targets of its own") {
    REQUIRE(fleet.run({"plan", "--out", saved}).code == 2);
    CHECK(fleet.run({"apply", saved, "--target", devices[0]}).code == 64);
  }
}

TEST_CASE("blocked deletes head the plan, and --max-deletes lets them through for one run",
          "[e2e][controls]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "0"});
  fleet.set_desired(imeis(1, 3));
  REQUIRE(fleet.apply().code == 0);
  portal_create(sim, imeis(9001, 1)[0]);
  portal_create(sim, imeis(9002, 1)[0]);

  const auto plan = fleet.run({"plan"});
  INFO(plan.out << plan.err);
  CHECK(plan.code == 3);
  CHECK(plan.out.rfind("Nothing to apply, but deletes are blocked:", 0) == 0);  // first line
  CHECK(plan.out.find("No changes.") == std::string::npos);
  CHECK_THAT(plan.out, Catch::Contains("\nBlocked deletes (2):\n") &&
                           Catch::Contains("--max-deletes"));

  CHECK(fleet.apply().code == 3);  // the guard holds
  CHECK(remote_passwords(sim).size() == 5);
  CHECK(fleet.run({"apply", "--yes", "--max-deletes", "1"}).code == 3);  // 2 > 1
  CHECK(fleet.run({"apply", "--yes", "--max-deletes", "bogus"}).code == 64);
  const auto through = fleet.run({"apply", "--yes", "--max-deletes", "2"});
  INFO(through.out << through.err);
  CHECK(through.code == 0);
  CHECK(remote_passwords(sim).size() == 3);
  CHECK(fleet.run({"plan"}).out.rfind("No changes.", 0) == 0);
}

TEST_CASE("plan --output markdown of 2,000 changes: a summary table, collapsible lists",
          "[e2e][controls]") {
  Sim sim;
  Fleet fleet(sim);
  fleet.set_desired(imeis(1, 2000));
  const auto plan = fleet.run({"plan", "--output", "markdown"});
  INFO(plan.err);
  CHECK(plan.code == 2);
  CHECK(plan.out.rfind("### thingsync plan\n\n**Plan: 2000 to create, 0 to update", 0) == 0);
  CHECK_THAT(plan.out, Catch::Contains("| create | 2000 |") &&
                           Catch::Contains("<details><summary>2000 to create</summary>") &&
                           Catch::Contains("- `" + canonical(imeis(1, 1)[0]) + "`"));
}

TEST_CASE("diff DEVICE shows desired, remote, state and the verdict", "[e2e][controls]") {
  Sim sim;
  Fleet fleet(sim);
  const auto devices = imeis(1, 3);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  const auto id = binding_of(sim, devices[1]);

  auto in_sync = fleet.run({"diff", urn(devices[1])});
  INFO(in_sync.out << in_sync.err);
  CHECK(in_sync.code == 0);
  CHECK_THAT(in_sync.out, Catch::Contains("device " + canonical(devices[1])) &&
                              Catch::Contains("fleet.yaml:") &&
                              Catch::Contains("password from derive") &&
                              Catch::Contains("id=" + id) &&
                              Catch::Contains("password matches the desired one") &&
                              Catch::Contains("matches modifiedAt") &&
                              Catch::Contains("verdict: in sync"));

  portal_edit(sim, id, devices[1], "bob@example.com");
  auto changed = fleet.run({"diff", devices[1]});
  INFO(changed.out << changed.err);
  CHECK(changed.code == 2);
  CHECK_THAT(changed.out, Catch::Contains("by bob@example.com") &&
                              Catch::Contains("changed outside thingsync") &&
                              Catch::Contains("verdict: update " + id));
  CHECK(fleet.run({"diff", "not-a-device"}).code == 64);
}

TEST_CASE("json logs: every stderr line is a JSON object, fields as keys",
          "[e2e][controls]") {
  Sim sim;
  Fleet fleet(sim);
  fleet.set_desired(imeis(1, 3));
  const auto apply = fleet.run({"apply", "--yes", "--log-format", "json"});
  REQUIRE(apply.code == 0);
  // A desired-state file with an error: its diagnostic is a JSON line too.
  write_file(fleet.desired_dir() / "bad.yaml", "bindings:\n  - deviceId: imei:12\n");
  const auto plan = fleet.run({"plan", "--log-format", "json"});
  CHECK(plan.code == 1);
  bool created = false, diagnostic = false;
  for (const auto* err : {&apply.err, &plan.err}) {
    std::size_t start = 0;
    while (start < err->size()) {
      const auto end = err->find('\n', start);
      const auto line = err->substr(start, end - start);
      start = end == std::string::npos ? err->size() : end + 1;
      INFO(line);
      const auto j = nlohmann::json::parse(line, nullptr, false);
      REQUIRE_FALSE(j.is_discarded());
      REQUIRE(j.is_object());
      CHECK(j.contains("ts"));
      CHECK(j["msg"].get<std::string>().find('=') == std::string::npos);
      if (j["msg"] == "created") {
        created = true;
        CHECK(j.contains("device"));
        CHECK(j.contains("id"));
      }
      if (j.contains("file")) {
        diagnostic = true;
        CHECK(j["line"] == 2);
        CHECK(j["level"] == "error");
      }
    }
  }
  CHECK(created);
  CHECK(diagnostic);
}

TEST_CASE("under systemd (JOURNAL_STREAM) text log lines carry their priority", "[e2e][controls]") {
  Sim sim;
  Fleet fleet(sim);
  fleet.set_desired(imeis(1, 2));
  write_file(fleet.desired_dir() / "bad.yaml", "bindings:\n  - deviceId: imei:12\n");
  // JOURNAL_STREAM names stderr's device and inode, as systemd sets it for a journal stream.
  Process p({"/bin/sh", "-c",
             "JOURNAL_STREAM=$(stat -L -c %d:%i /dev/stderr) exec \"$@\"", "sh", THINGSYNC_PATH,
             "plan", "--config", fleet.config().string()});
  REQUIRE(p.wait(60s) == 1);
  INFO(p.err());
  CHECK(p.err().rfind("<3>", 0) == 0);  // the diagnostic, an error
  CHECK_THAT(p.err(), Catch::Contains("\n<3>") && Catch::Contains("bad.yaml:2:"));
  for (std::size_t at = 0; (at = p.err().find('\n', at)) != std::string::npos && at + 1 < p.err().size(); ++at) {
    CHECK(p.err()[at + 1] == '<');
  }
}

TEST_CASE("on a terminal the progress line stays below the log lines and never cuts one",
          "[e2e][controls]") {
  Sim sim({"--latency", "40ms"});
  Fleet fleet(sim, {.concurrency = 2});
  fleet.set_desired(imeis(1, 40));
  // A pseudo-terminal on stdin, stdout and stderr: `script` runs apply in one.
  Process p({"/usr/bin/script", "-qfec",
             std::string(THINGSYNC_PATH) + " apply --yes --config " + fleet.config().string(),
             "/dev/null"});
  REQUIRE(p.wait(120s) == 0);
  const std::string out = p.out();
  CHECK(out.find(" devices ") != std::string::npos);  // the bar was drawn
  // Every log line starts a line or follows the bar's erase ("\r\x1b[K"): never glued to it.
  const std::regex stamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})");
  std::size_t lines = 0;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), stamp); it != std::sregex_iterator(); ++it) {
    const auto at = static_cast<std::size_t>(it->position());
    const bool starts = at == 0 || out[at - 1] == '\n' || (at >= 3 && out.compare(at - 3, 3, "\x1b[K") == 0);
    INFO(out.substr(at >= 80 ? at - 80 : 0, 160));
    CHECK(starts);
    ++lines;
  }
  CHECK(lines >= 40);  // a "created" line per device
}

TEST_CASE("off a terminal a long apply logs its progress every 10 s", "[e2e][controls]") {
  Sim sim({"--latency", "1s"});
  Fleet fleet(sim, {.concurrency = 1});
  fleet.set_desired(imeis(1, 13));
  const auto apply = fleet.apply();
  INFO(apply.err);
  REQUIRE(apply.code == 0);
  CHECK_THAT(apply.err, Catch::Contains("progress done=") && Catch::Contains("total=13"));
}

TEST_CASE("the daemon's STATUS shows a pass's progress, and the drift age goes back to 0",
          "[e2e][controls]") {
  NotifySocket notify;
  Sim sim({"--latency", "150ms"});
  Fleet fleet(sim, {.concurrency = 1,
                    .extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1h\n"});
  fleet.set_desired(imeis(1, 20));
  Daemon d(fleet, {notify.env()});
  CHECK(notify.receive_until("STATUS=applying "));
  CHECK(notify.receive_until("READY=1"));
  CHECK(d.metric("thingsync_pass_remaining_operations") == 0);
  CHECK(d.metric("thingsync_oldest_drift_age_seconds") == 0);
  CHECK(notify.received().find(", ETA ") != std::string::npos);
}
