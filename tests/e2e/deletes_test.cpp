// Deletes an operator can trust, with the real binaries: the grace, approvals bound to one
// exact set, and delete windows.
#include <catch2/catch.hpp>

#include <chrono>
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
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "10"});
  const auto devices = imeis(1, 60);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  fleet.set_desired(without(devices, 0, 50));
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
