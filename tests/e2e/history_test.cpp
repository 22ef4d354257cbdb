// The change journal with the real binaries: one line per write to the API, and `history`
// telling one device's story.
#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon.hpp"
#include "fleet.hpp"
#include "thingsync/core/device_id.hpp"

using namespace thingsync::e2e;
using thingsync::testsupport::read_file;
using thingsync::testsupport::write_file;
using namespace std::chrono_literals;

namespace {

constexpr const char* kCommit = "3f786850e387550fdab836ed7e6dc881de23001b";

std::string canonical(const std::string& device) {
  return thingsync::core::DeviceId::parse(device)->canonical();
}

// "imei:350000000001234" -> "urn:dev:IMEI:350000000001234:": another spelling of it.
std::string urn(const std::string& imei) { return "urn:dev:IMEI:" + imei.substr(5) + ":"; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::vector<nlohmann::json> records(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (const auto& line : lines_of(text)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The desired state as a Git checkout at kCommit (a detached HEAD is all thingsync reads).
void at_commit(const Fleet& fleet) {
  write_file(fleet.desired_dir() / ".git" / "HEAD", std::string(kCommit) + "\n");
}

}  // namespace

TEST_CASE("the journal holds one line per write, and history --device shows the device's story",
          "[e2e][history]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%", .journal_path = "changes.jsonl"});
  const auto journal = fleet.dir() / "changes.jsonl";
  auto devices = imeis(1, 3);
  const auto d = devices[0];
  fleet.set_desired(devices);
  at_commit(fleet);
  REQUIRE(fleet.apply().code == 0);

  // A portal edit, put back; then the device leaves the desired state and is pruned.
  portal_edit(sim, binding_of(sim, d), d, "alice@example.com");
  REQUIRE(fleet.apply().code == 0);
  devices.erase(devices.begin());
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);

  // 3 creates, 1 update, 1 delete: one line each, and nothing else.
  const auto all = records(read_file(journal));
  REQUIRE(all.size() == 5);
  for (const auto& r : all) {
    CHECK(r["result"] == "ok");
    CHECK(r["planHash"].get<std::string>().size() == 16);
  }
  CHECK(all[0]["desiredCommit"] == kCommit);
  CHECK(all[3]["desiredCommit"] == kCommit);
  CHECK(all[4]["desiredCommit"].is_null());  // set_desired() made a fresh directory
  CHECK(all[0]["planHash"] == all[2]["planHash"]);  // one pass
  CHECK(all[3]["planHash"] != all[0]["planHash"]);
  // No password of any kind: the derived ones, and the portal's.
  const auto written = read_file(journal);
  for (const auto& device : imeis(1, 3)) {
    CHECK(written.find(fleet.derived(device)) == std::string::npos);
  }
  CHECK(written.find("Someone-Elses-Password") == std::string::npos);

  SECTION("history --device, in another spelling: the device's writes, in order") {
    const auto text = fleet.run({"history", "--device", urn(d)});
    INFO(text.out << text.err);
    REQUIRE(text.code == 0);
    const auto lines = lines_of(text.out);
    REQUIRE(lines.size() == 3);
    CHECK_THAT(lines[0], Catch::Contains("create  " + canonical(d) + "  ok"));
    CHECK_THAT(lines[1], Catch::Contains("update  " + canonical(d) + "  ok") &&
                             Catch::Contains("(changed outside thingsync)") &&
                             Catch::Contains("by alice@example.com"));
    CHECK_THAT(lines[2], Catch::Contains("delete  " + canonical(d) + "  ok") &&
                             Catch::Contains("(not desired)"));

    const auto json = fleet.run({"history", "--device", "IMEI:" + d.substr(5), "--output", "json"});
    REQUIRE(json.code == 0);
    const auto story = records(json.out);  // one JSON object a line
    REQUIRE(story.size() == 3);
    const auto id = story[0]["bindingId"];
    for (const auto& r : story) {
      CHECK(r["device"] == canonical(d));
      CHECK(r["bindingId"] == id);
    }
    CHECK(story[0]["action"] == "create");
    CHECK(story[1]["action"] == "update");
    CHECK(story[1]["reason"] == "changed outside thingsync");
    CHECK(story[1]["before"]["modifiedBy"] == "alice@example.com");
    CHECK(story[1]["after"]["modifiedAt"] != story[1]["before"]["modifiedAt"]);
    CHECK(story[2]["action"] == "delete");
    CHECK(story[2]["reason"] == "not desired");
    CHECK(story[2]["before"]["modifiedAt"] == story[1]["after"]["modifiedAt"]);
  }
  SECTION("--since filters by time") {
    const auto update_time = all[3]["time"].get<std::string>();
    const auto since = fleet.run({"history", "--since", update_time, "--output", "json"});
    REQUIRE(since.code == 0);
    const auto later = records(since.out);
    REQUIRE(later.size() == 2);
    CHECK(later[0]["action"] == "update");
    CHECK(later[1]["action"] == "delete");
    CHECK(lines_of(fleet.run({"history", "--since", "1h"}).out).size() == 5);
    CHECK(lines_of(fleet.run({"history", "--since", "9999-01-01"}).out).empty());
  }
  SECTION("after logrotate's rename, history reads the rotation, then the new file") {
    std::filesystem::rename(journal, journal.string() + ".1");
    CHECK(lines_of(fleet.run({"history"}).out).size() == 5);
    devices.push_back(imeis(9, 1)[0]);
    fleet.set_desired(devices);
    REQUIRE(fleet.apply().code == 0);
    CHECK(lines_of(read_file(journal)).size() == 1);  // made again by the next write
    const auto both = records(fleet.run({"history", "--output", "json"}).out);
    REQUIRE(both.size() == 6);
    CHECK(both[5]["device"] == canonical(devices.back()));
  }
  SECTION("bad flags are usage errors; no journal file is an error that says what to set") {
    CHECK(fleet.run({"history", "--device", "imei:12"}).code == 64);
    CHECK(fleet.run({"history", "--since", "yesterday"}).code == 64);
    std::filesystem::remove(journal);
    const auto missing = fleet.run({"history"});
    CHECK(missing.code == 1);
    CHECK_THAT(missing.err, Catch::Contains("state.journalPath"));
  }
}

TEST_CASE("without state.journalPath history says the records are in journald only",
          "[e2e][history]") {
  Sim sim;
  Fleet fleet(sim);
  fleet.set_desired(imeis(1, 1));
  REQUIRE(fleet.apply().code == 0);
  const auto r = fleet.run({"history"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("journalctl MESSAGE_ID=") &&
                        Catch::Contains("Set state.journalPath"));
}

TEST_CASE("the daemon journals the writes of its passes", "[e2e][history]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1h\n",
                    .journal_path = "changes.jsonl"});
  const auto devices = imeis(1, 2);
  fleet.set_desired(devices);
  at_commit(fleet);
  Daemon daemon(fleet);
  const auto journal = fleet.dir() / "changes.jsonl";
  REQUIRE(eventually([&] { return lines_of(read_file(journal)).size() == 2; }, 10s));

  // A portal edit, seen by a poll and put back: the third line.
  portal_edit(sim, binding_of(sim, devices[1]), devices[1], "bob@example.com");
  REQUIRE(eventually([&] { return lines_of(read_file(journal)).size() == 3; }, 10s));
  const auto all = records(read_file(journal));
  CHECK(all[0]["action"] == "create");
  CHECK(all[0]["desiredCommit"] == kCommit);
  CHECK(all[2]["action"] == "update");
  CHECK(all[2]["device"] == canonical(devices[1]));
  CHECK(all[2]["reason"] == "changed outside thingsync");
  CHECK(all[2]["before"]["modifiedBy"] == "bob@example.com");
  CHECK(all[2]["desiredCommit"] == kCommit);
}
