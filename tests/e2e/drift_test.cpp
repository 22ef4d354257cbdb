// The world after go-live, with the real binaries: portal edits, replaced bindings, gateways
// that answer 502 after the write landed, clock glitches, swapped checkouts. Each case ends
// with exactly the desired bindings, one per device, with the desired passwords.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>

#include "daemon.hpp"
#include "fleet.hpp"
#include "thingsync/core/time.hpp"

using namespace thingsync::e2e;
using thingsync::testsupport::write_file;
using namespace std::chrono_literals;

namespace {

// Every device of `devices` has exactly one binding, with its derived password, and the sim
// holds nothing else.
void check_exactly(const Sim& sim, const Fleet& fleet, const std::vector<std::string>& devices) {
  const auto remote = remote_passwords(sim);
  std::size_t wrong = 0, doubled = 0, missing = 0;
  for (const auto& d : devices) {
    const auto canonical = thingsync::core::DeviceId::parse(d)->canonical();
    const auto it = remote.find(canonical);
    if (it == remote.end()) {
      ++missing;
    } else if (it->second.size() != 1) {
      ++doubled;
    } else if (it->second[0] != fleet.derived(d)) {
      ++wrong;
    }
  }
  INFO(missing << " missing, " << doubled << " with more than one binding, " << wrong
               << " with another password; " << remote.size() << " devices bound in all");
  CHECK(missing == 0);
  CHECK(doubled == 0);
  CHECK(wrong == 0);
  CHECK(remote.size() == devices.size());
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("a portal password change made while thingsync is stopped is put back", "[e2e][drift]") {
  Sim sim;
  Fleet fleet(sim);
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  const auto id = binding_of(sim, devices[2]);
  portal_edit(sim, id, devices[2]);

  const auto plan = fleet.run({"plan"});
  CHECK(plan.code == 2);
  CHECK(plan.out.find("changed outside thingsync at ") != std::string::npos);
  CHECK(plan.out.find("by alice@example.com") != std::string::npos);
  CHECK(plan.out.find(id) != std::string::npos);
  REQUIRE(fleet.apply().code == 0);
  check_exactly(sim, fleet, devices);
  CHECK(fleet.plan_json().code == 0);
}

TEST_CASE("a portal password change seen only by a full resync is put back", "[e2e][drift]") {
  Sim sim;
  // No poll comes before the full resync.
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 1h\n  fullResyncInterval: 1s\n"});
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  portal_edit(sim, binding_of(sim, devices[1]), devices[1]);
  REQUIRE(eventually([&] { return passwords(sim).at(thingsync::core::DeviceId::parse(devices[1])->canonical()) ==
                                  fleet.derived(devices[1]); },
                     10s));
  check_exactly(sim, fleet, devices);
}

TEST_CASE("prune: a binding deleted and re-created in the portal keeps the new one",
          "[e2e][drift]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true,
                    .extra_sync = "  pollInterval: 200ms\n  fullResyncInterval: 1h\n"
                                  "  modifiedSinceOverlap: 1s\n"});
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  const auto old_id = binding_of(sim, devices[0]);
  REQUIRE(sim.admin("DELETE", "/_sim/bindings/" + old_id).status == 204);
  const auto created = sim.admin("POST", "/_sim/bindings",
                                 {{"deviceId", devices[0]}, {"password", "Portal-Password-12345678"}});
  REQUIRE(created.status == 201);
  const std::string new_id = created.json()["id"];
  // Polls see the new binding, never the delete: the old one must be looked at before the
  // new one may go as its duplicate. It stays, and gets the desired password.
  REQUIRE(eventually([&] { return d.proc().err().find("updated device=" + thingsync::core::DeviceId::parse(devices[0])->canonical()) != std::string::npos; }, 10s));
  std::this_thread::sleep_for(1s);  // a few more polls and passes: nothing else may happen
  CHECK(binding_of(sim, devices[0]) == new_id);
  CHECK(requests(sim, "DELETE") == 0);
  CHECK(d.ready());
  check_exactly(sim, fleet, devices);
}

TEST_CASE("creates answered 502/504 after the API committed them make no duplicate",
          "[e2e][drift]") {
  // The API here accepts a second binding for a device: only thingsync can prevent one.
  Sim sim({"--duplicates", "allow", "--fail-after-commit", "0.2", "--random-seed", "13"});
  Fleet fleet(sim);
  const auto devices = imeis(1, 200);
  fleet.set_desired(devices);
  // Writes answered 5xx after they landed are failures of this run; the next run settles
  // them (an update put again, a create found by its lookup).
  int code = -1;
  for (int run = 0; run < 6 && code != 0; ++run) code = fleet.apply().code;
  CHECK(code == 0);
  const auto counters = sim.admin("GET", "/_sim/counters").json();
  INFO("failed after commit: " << counters["failedAfterCommit"]);
  CHECK(counters["failedAfterCommit"].get<int>() > 10);
  check_exactly(sim, fleet, devices);
}

TEST_CASE("a device-scoped pass gets no delete allowance of its own", "[e2e][drift]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true,
                    .max_deletes = "2",
                    .extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1h\n"});
  for (const auto& stray : imeis(9000, 3)) sim.create(stray, thingsync::testsupport::kGoodPassword);
  const auto devices = imeis(1, 10);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  CHECK(d.metric("thingsync_deletes_blocked") == 3);  // 3 > maxDeletes 2
  // A commit removes two devices: five deletes now, still more than two.
  fleet.set_desired({devices.begin() + 2, devices.end()});
  REQUIRE(eventually([&] { return d.metric("thingsync_deletes_blocked") == 5; }, 10s));
  std::this_thread::sleep_for(1s);
  CHECK(requests(sim, "DELETE") == 0);
  CHECK(remote_passwords(sim).size() == 13);
}

TEST_CASE("a binding stamped in the future does not hide later portal changes from polls",
          "[e2e][drift]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 200ms\n  fullResyncInterval: 1h\n"
                                  "  modifiedSinceOverlap: 1s\n"});
  const auto devices = imeis(1, 5);
  fleet.set_desired(devices);
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  // One API node's clock runs a day ahead.
  const auto ahead = binding_of(sim, devices[0]);
  REQUIRE(sim.admin("PUT", "/_sim/bindings/" + ahead,
                    {{"deviceId", devices[0]},
                     {"modifiedAt", thingsync::core::format_iso8601_ms(now_ms() + 86'400'000)}})
              .status == 200);
  std::this_thread::sleep_for(2s);  // polls past the overlap
  portal_edit(sim, binding_of(sim, devices[3]), devices[3]);
  const auto device = thingsync::core::DeviceId::parse(devices[3])->canonical();
  REQUIRE(eventually([&] { return passwords(sim).at(device) == fleet.derived(devices[3]); }, 10s));
  check_exactly(sim, fleet, devices);
}

namespace {

// The git-sync layout: desiredState.path is a symbolic link to one checkout, swapped
// atomically to the next (ln -s new tmp && mv -T tmp link).
void write_tree(const Fleet& fleet, const std::filesystem::path& dir,
                const std::vector<std::string>& devices) {
  std::string y = "defaults:\n  password:\n    derive:\n      keyFile: " +
                  (fleet.dir() / "fleet-key").string() + "\nbindings:\n";
  for (const auto& d : devices) y += "  - deviceId: \"" + d + "\"\n";
  std::filesystem::create_directories(dir);
  write_file(dir / "fleet.yaml", y);
}

void swap_link(const std::filesystem::path& link, const std::filesystem::path& target) {
  const auto tmp = link.parent_path() / (link.filename().string() + ".tmp");
  std::filesystem::create_directory_symlink(target, tmp);
  std::filesystem::rename(tmp, link);
}

bool bound(const Sim& sim, const std::string& device) {
  return remote_passwords(sim).contains(thingsync::core::DeviceId::parse(device)->canonical());
}

}  // namespace

TEST_CASE("desiredState.path: a swapped symlink or a replaced directory is loaded without SIGHUP",
          "[e2e][drift]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1h\n"});
  auto devices = imeis(1, 5);
  const auto link = fleet.desired_dir();
  SECTION("a symlink swapped to a new checkout") {
    write_tree(fleet, fleet.dir() / "rev1", devices);
    std::filesystem::create_directory_symlink(fleet.dir() / "rev1", link);
    Daemon d(fleet);
    REQUIRE(eventually([&] { return d.ready(); }, 30s));
    devices.push_back(imeis(700, 1)[0]);
    write_tree(fleet, fleet.dir() / "rev2", devices);
    swap_link(link, fleet.dir() / "rev2");
    CHECK(eventually([&] { return bound(sim, devices.back()); }, 5s));
    devices.push_back(imeis(701, 1)[0]);
    write_tree(fleet, fleet.dir() / "rev3", devices);
    swap_link(link, fleet.dir() / "rev3");
    CHECK(eventually([&] { return bound(sim, devices.back()); }, 5s));
  }
  SECTION("a directory replaced by another (mv + clone)") {
    write_tree(fleet, link, devices);
    Daemon d(fleet);
    REQUIRE(eventually([&] { return d.ready(); }, 30s));
    devices.push_back(imeis(700, 1)[0]);
    write_tree(fleet, fleet.dir() / "clone", devices);
    std::filesystem::rename(link, fleet.dir() / "fleet.old");
    std::filesystem::rename(fleet.dir() / "clone", link);
    CHECK(eventually([&] { return bound(sim, devices.back()); }, 5s));
    // And an edit in the new directory is seen too: it is watched now.
    devices.push_back(imeis(701, 1)[0]);
    write_tree(fleet, link, devices);
    CHECK(eventually([&] { return bound(sim, devices.back()); }, 5s));
  }
  check_exactly(sim, fleet, devices);
}

TEST_CASE("a Git checkout in progress is not loaded until it is done", "[e2e][drift]") {
  Sim sim;
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1h\n"});
  auto devices = imeis(1, 5);
  const auto tree = fleet.desired_dir();
  write_tree(fleet, tree, devices);
  // A work tree as git leaves it: HEAD on a branch with one commit.
  write_file(tree / ".git" / "HEAD", "ref: refs/heads/main\n");
  write_file(tree / ".git" / "refs" / "heads" / "main", std::string(40, 'a') + "\n");
  Daemon d(fleet);
  REQUIRE(eventually([&] { return d.ready(); }, 30s));
  // git checkout holds the index lock while it writes the files.
  write_file(tree / ".git" / "index.lock", "");
  devices.push_back(imeis(700, 1)[0]);
  write_tree(fleet, tree, devices);
  REQUIRE(d.proc().wait_for_output("a Git checkout is in progress", 5s));
  std::this_thread::sleep_for(1500ms);
  CHECK_FALSE(bound(sim, devices.back()));
  write_file(tree / ".git" / "refs" / "heads" / "main", std::string(40, 'b') + "\n");
  std::filesystem::remove(tree / ".git" / "index.lock");
  CHECK(eventually([&] { return bound(sim, devices.back()); }, 5s));
  check_exactly(sim, fleet, devices);
}

TEST_CASE("plan and apply wait for a Git checkout in progress", "[e2e][drift]") {
  Sim sim;
  Fleet fleet(sim);
  auto devices = imeis(1, 5);
  const auto tree = fleet.desired_dir();
  write_tree(fleet, tree, devices);
  write_file(tree / ".git" / "HEAD", "ref: refs/heads/main\n");
  write_file(tree / ".git" / "refs" / "heads" / "main", std::string(40, 'a') + "\n");
  write_file(tree / ".git" / "index.lock", "");
  // Half a checkout: the file of the next commit is not there yet.
  std::filesystem::remove(tree / "fleet.yaml");
  Process apply({THINGSYNC_PATH, "apply", "--yes", "--config", fleet.config().string()});
  REQUIRE(apply.wait_for_output("a Git checkout is in progress", 10s));
  std::this_thread::sleep_for(1500ms);
  CHECK(apply.running());
  CHECK(writes(sim) == 0);
  write_tree(fleet, tree, devices);  // the checkout ends
  std::filesystem::remove(tree / ".git" / "index.lock");
  const auto code = apply.wait(30s);
  REQUIRE(code);
  CHECK(*code == 0);
  check_exactly(sim, fleet, devices);
}

TEST_CASE("a scope.clientId that is not the API key's client costs one create, taken back",
          "[e2e][drift]") {
  // The sim gives what the API key creates to its --client-id; the config scopes another.
  Sim sim({"--client-id", "00000000-0000-4000-8000-00000000000a"});
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1s\n",
                    .scope_client_id = "00000000-0000-4000-8000-00000000000b"});
  fleet.set_desired(imeis(1, 20));
  for (int run = 0; run < 2; ++run) {
    const auto apply = fleet.apply();
    INFO(apply.out << apply.err);
    CHECK(apply.code == 1);
    CHECK(apply.err.find("is not listed under scope.clientId "
                         "00000000-0000-4000-8000-00000000000b") != std::string::npos);
    CHECK(apply.err.find("deleted again") != std::string::npos);
    CHECK(remote_passwords(sim).empty());  // nothing left behind, run after run
  }
  CHECK(requests(sim, "POST") == 2);  // one create per run, never the fleet

  Daemon d(fleet);
  REQUIRE(d.proc().wait_for_output("is not listed under scope.clientId", 30s));
  // Passes go on (polls, a full list): creates stay refused until a restart.
  const int lists = requests(sim, "GET");
  REQUIRE(eventually([&] { return requests(sim, "GET") >= lists + 3; }, 10s));
  CHECK(requests(sim, "POST") == 3);
  CHECK(remote_passwords(sim).empty());
}

TEST_CASE("a wrong scope.clientId is caught even when the first creates fail or go unanswered",
          "[e2e][drift]") {
  Sim sim({"--client-id", "00000000-0000-4000-8000-00000000000a"});
  Fleet fleet(sim, {.extra_sync = "  pollInterval: 300ms\n  fullResyncInterval: 1s\n",
                    .scope_client_id = "00000000-0000-4000-8000-00000000000b"});
  const auto devices = imeis(1, 10);
  fleet.set_desired(devices);
  // The first device is refused by the API: its create gives nothing to look for in scope.
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"rejectDevices", {devices[0]}}}).status == 200);
  for (int run = 0; run < 2; ++run) {
    const auto apply = fleet.apply();
    INFO(apply.out << apply.err);
    CHECK(apply.code == 1);
    CHECK(apply.err.find("is not listed under scope.clientId") != std::string::npos);
    CHECK(remote_passwords(sim).empty());
  }
  // A create answered 502 after it committed: adopted by a lookup, then found out of scope.
  REQUIRE(sim.admin("PUT", "/_sim/faults",
                    {{"rejectDevices", nlohmann::json::array()}, {"failAfterCommit", 1.0}})
              .status == 200);
  const auto apply = fleet.run({"apply", "--yes", "--retry-failed"});
  INFO(apply.out << apply.err);
  CHECK(apply.code == 1);
  CHECK(apply.err.find("is not listed under scope.clientId") != std::string::npos);
  CHECK(remote_passwords(sim).size() <= 1);  // the adopted one is not thingsync's to delete
  const int posts = requests(sim, "POST");

  // The daemon: full passes every second refuse every create, and it is not ready.
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failAfterCommit", 0.0}}).status == 200);
  Daemon d(fleet);
  REQUIRE(eventually([&] {
    return d.get("/readyz").body.find("creates are refused until a restart") != std::string::npos;
  }, 30s));
  const int lists = requests(sim, "GET");
  REQUIRE(eventually([&] { return requests(sim, "GET") >= lists + 6; }, 15s));
  CHECK(requests(sim, "POST") <= posts + 1);
  CHECK(remote_passwords(sim).size() <= 1);
}
