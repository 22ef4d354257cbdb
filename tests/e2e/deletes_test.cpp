// Deletes an operator can trust, with the real binaries: the grace, approvals bound to one
// exact set, and delete windows.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <ctime>
#include <string>

#include "daemon.hpp"
#include "fleet.hpp"

using namespace thingsync::e2e;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> without(std::vector<std::string> v, std::size_t from, std::size_t n) {
  v.erase(v.begin() + static_cast<std::ptrdiff_t>(from),
          v.begin() + static_cast<std::ptrdiff_t>(from + n));
  return v;
}

// A fleet of `n` devices, applied; then the first `removed` of them leave the desired state.
struct Removal {
  Removal(FleetOptions options, int n, std::size_t removed)
      : fleet(sim, std::move(options)), devices(imeis(1, n)) {
    fleet.set_desired(devices);
    REQUIRE(fleet.apply().code == 0);
    fleet.set_desired(without(devices, 0, removed));
  }
  Sim sim;
  Fleet fleet;
  std::vector<std::string> devices;
};

// "Mon-Sun HH:MM-HH:MM UTC" opening at the next whole minute at least 5 s ahead, for one minute.
std::string window_from_next_minute(std::int64_t& opens_ms) {
  const auto now = std::chrono::system_clock::now();
  auto t = std::chrono::floor<std::chrono::minutes>(now + 5s) + 1min;
  opens_ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const auto hh_mm = [](std::chrono::system_clock::time_point at) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(at);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", tm.tm_hour, tm.tm_min);
    return std::string(buf);
  };
  return "Mon-Sun " + hh_mm(t) + "-" + hh_mm(t + 1min) + " UTC";  // past midnight is fine too
}

}  // namespace

TEST_CASE("a device removed and restored within deleteAfter gets no DELETE", "[e2e][deletes]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%", .extra_sync = "  deleteAfter: 1h\n"});
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  reset_counters(sim);
  fleet.set_desired(without(devices, 2, 1));
  const auto plan = fleet.run({"plan"});
  INFO(plan.out);
  CHECK(plan.code == 0);  // nothing to apply now
  CHECK_THAT(plan.out, Catch::Contains("Waiting deletes (1):") && Catch::Contains(" in 1h"));
  CHECK(fleet.apply().code == 0);  // its grace starts (a tombstone in the state file)
  fleet.set_desired(devices);      // restored
  CHECK(fleet.apply().code == 0);
  CHECK(requests(sim, "DELETE") == 0);
  CHECK(remote_passwords(sim).size() == 5);
}

TEST_CASE("after deleteAfter the daemon deletes exactly once, at the end of the grace",
          "[e2e][deletes]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%",
                    .extra_sync = "  deleteAfter: 2s\n  pollInterval: 300ms\n"
                                  "  fullResyncInterval: 1h\n"});
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready() && remote_passwords(sim).size() == 5; }, 30s));
  reset_counters(sim);
  fleet.set_desired(without(devices, 0, 1));
  REQUIRE(eventually([&] { return d.metric("thingsync_pending_deletes") == 1; }, 15s));
  CHECK(requests(sim, "DELETE") == 0);
  // No full resync is due for an hour: the daemon lists again when the grace ends.
  REQUIRE(eventually([&] { return requests(sim, "DELETE") == 1; }, 15s));
  CHECK(remote_passwords(sim).size() == 4);
  CHECK(eventually([&] { return d.metric("thingsync_pending_deletes") == 0; }, 5s));
  CHECK(requests(sim, "DELETE") == 1);
}

TEST_CASE("a blocked set of 50 is approved by its hash, and one binding more blocks again",
          "[e2e][deletes]") {
  Removal r({.prune = true, .max_deletes = "10"}, 60, 50);
  auto& [sim, fleet, devices] = r;
  auto json = fleet.run({"plan", "--output", "json"});
  REQUIRE(json.code == 3);
  const std::string hash = nlohmann::json::parse(json.out)["blockedDeletesHash"];
  REQUIRE(hash.size() == 16);
  CHECK_THAT(fleet.run({"plan"}).out, Catch::Contains("--approve-deletes " + hash));

  // One more removal before the approval: the set differs, the approval does not fit it.
  fleet.set_desired(without(devices, 0, 51));
  reset_counters(sim);
  auto refused = fleet.run({"apply", "--yes", "--approve-deletes", hash});
  INFO(refused.out << refused.err);
  CHECK(refused.code == 3);
  CHECK_THAT(refused.err, Catch::Contains("no approval given matches the blocked set"));
  CHECK(requests(sim, "DELETE") == 0);

  // Back to the 50 it was made for: exactly those go.
  fleet.set_desired(without(devices, 0, 50));
  auto approved = fleet.run({"apply", "--yes", "--approve-deletes", hash});
  INFO(approved.out << approved.err);
  CHECK(approved.code == 0);
  CHECK(requests(sim, "DELETE") == 50);
  CHECK(remote_passwords(sim).size() == 10);

  // One more removal now: 1 delete, within the guard, goes on its own.
  fleet.set_desired(without(devices, 0, 51));
  CHECK(fleet.apply().code == 0);
  CHECK(remote_passwords(sim).size() == 9);
}

TEST_CASE("deletes outside the delete windows wait, and go when a window opens",
          "[e2e][deletes]") {
  Sim sim;
  std::int64_t opens = 0;
  const auto window = window_from_next_minute(opens);
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%",
                    .extra_sync = "  deleteWindows: [\"" + window +
                                  "\"]\n  pollInterval: 300ms\n  fullResyncInterval: 1h\n"});
  const auto devices = imeis(1, 4);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  fleet.set_desired(without(devices, 0, 2));
  // apply, outside the window: creates and updates would go, the deletes wait.
  reset_counters(sim);
  const auto apply = fleet.apply();
  INFO(apply.out << apply.err);
  CHECK(apply.code == 0);
  CHECK_THAT(apply.out, Catch::Contains("at the next delete window"));
  CHECK(requests(sim, "DELETE") == 0);

  // The daemon deletes them when the window opens (within about a minute), not before.
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  CHECK(d.metric("thingsync_pending_deletes") == 2);
  REQUIRE(eventually([&] { return requests(sim, "DELETE") == 2; }, 90s));
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  CHECK(now_ms >= opens);
  CHECK(remote_passwords(sim).size() == 2);
}

TEST_CASE("a --target pass cannot take deletes the whole fleet's guard blocks",
          "[e2e][deletes]") {
  Removal r({.prune = true, .max_deletes = "3"}, 10, 6);  // 6 deletes, the guard allows 3
  auto& [sim, fleet, devices] = r;
  reset_counters(sim);
  const auto plan = fleet.run({"plan", "--target", devices[0]});
  INFO(plan.out << plan.err);
  CHECK(plan.code == 3);
  CHECK_THAT(plan.err, Catch::Contains("the whole fleet's delete set (6) is over the guard"));
  // Slices of one under a lower limit still take nothing.
  CHECK(fleet.run({"apply", "--yes", "--target", devices[0], "--max-deletes", "1"}).code == 3);
  CHECK(requests(sim, "DELETE") == 0);
  // The whole set's approval lets the target's delete go.
  const std::string hash =
      nlohmann::json::parse(fleet.run({"plan", "--output", "json"}).out)["blockedDeletesHash"];
  const auto approved =
      fleet.run({"apply", "--yes", "--target", devices[0], "--approve-deletes", hash});
  INFO(approved.out << approved.err);
  CHECK(approved.code == 0);
  CHECK(requests(sim, "DELETE") == 1);
}

TEST_CASE("a saved plan cannot lift the guard: a looser limit must be given again on apply",
          "[e2e][deletes]") {
  Removal r({.prune = true, .max_deletes = "3"}, 10, 6);
  auto& [sim, fleet, devices] = r;
  const auto saved = (fleet.dir() / "plan.json").string();
  REQUIRE(fleet.run({"plan", "--out", saved}).code == 3);
  // Someone edits the file: the blocked deletes become deletes, the limit 100%.
  auto text = thingsync::testsupport::read_file(saved);
  for (std::size_t at; (at = text.find("blocked delete ")) != std::string::npos;) {
    text.replace(at, 15, "delete ");
  }
  for (std::size_t at; (at = text.find("(exceeds maxDeletes)")) != std::string::npos;) {
    text.replace(at, 20, "(not desired)");
  }
  const auto limit = text.find("\"maxDeletes\": \"3\"");
  REQUIRE(limit != std::string::npos);
  text.replace(limit, 17, "\"maxDeletes\": \"100%\"");
  thingsync::testsupport::write_file(saved, text);
  reset_counters(sim);
  const auto apply = fleet.run({"apply", saved});
  INFO(apply.out << apply.err);
  CHECK(apply.code == 64);
  CHECK_THAT(apply.err, Catch::Contains("give that limit again: apply --max-deletes 100%"));
  CHECK(requests(sim, "DELETE") == 0);
}

TEST_CASE("tombstones are durable without a write, and a FIFO approvals file blocks nothing",
          "[e2e][deletes]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%",
                    .extra_sync = "  deleteAfter: 1h\n  pollInterval: 300ms\n"
                                  "  fullResyncInterval: 1s\n  approvedDeletesFile: approved\n"});
  const auto devices = imeis(1, 4);
  fleet.set_desired(devices);
  REQUIRE(::mkfifo((fleet.dir() / "approved").c_str(), 0600) == 0);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready() && remote_passwords(sim).size() == 4; }, 30s));
  fleet.set_desired(without(devices, 0, 1));
  REQUIRE(eventually([&] { return d.metric("thingsync_pending_deletes") == 1; }, 15s));
  // Passes go on (full lists every second) with a FIFO where the approvals should be.
  const int lists = requests(sim, "GET");
  REQUIRE(eventually([&] { return requests(sim, "GET") >= lists + 3; }, 15s));
  CHECK(d.get("/healthz").status == 200);
  CHECK(d.proc().err().find("is a FIFO") != std::string::npos);
  // A kill -9 now: the tombstone is in the state's journal already.
  d.proc().signal(SIGKILL);
  REQUIRE(d.proc().wait(10s).has_value());
  const auto journal = thingsync::testsupport::read_file(fleet.state().string() + ".journal") +
                       thingsync::testsupport::read_file(fleet.state());
  CHECK(journal.find("tombstone") != std::string::npos);
  const auto plan = fleet.run({"plan"});
  CHECK_THAT(plan.out, Catch::Contains("Waiting deletes (1):"));
}
