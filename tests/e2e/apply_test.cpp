// plan / apply / export end to end: the real thingsync binary against the real simulator.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <map>
#include <set>

#include "fleet.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/core/device_id.hpp"

using namespace thingsync::e2e;
using thingsync::testsupport::read_file;
using thingsync::testsupport::write_file;
using nlohmann::json;

namespace {

// The end state the whole product promises: exactly the desired devices, one binding each,
// each with the desired password.
void check_converged(const Sim& sim, const Fleet& fleet, const std::vector<std::string>& desired) {
  const auto r = remote_passwords(sim);
  std::set<std::string> want;
  for (const auto& d : desired) want.insert(thingsync::core::DeviceId::parse(d)->canonical());
  std::set<std::string> have;
  for (const auto& [dev, pws] : r) have.insert(dev);
  CHECK(have == want);
  for (const auto& [dev, pws] : r) {
    INFO(dev);
    REQUIRE(pws.size() == 1);
    CHECK(pws[0] == fleet.derived(dev));
  }
}

}  // namespace

TEST_CASE("apply creates, updates, deletes and leaves the rest unchanged", "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%"});
  const auto devices = imeis(1, 6);
  fleet.set_desired(devices);

  auto first = fleet.apply();
  INFO(first.out << first.err);
  REQUIRE(first.code == 0);
  CHECK_THAT(first.out, Catch::Contains("6 created"));
  check_converged(sim, fleet, devices);

  // One removed (delete), one added (create), one given a literal password (update).
  auto next = std::vector<std::string>(devices.begin() + 1, devices.end());
  next.push_back(imeis(100, 1)[0]);
  fleet.set_desired(next, {{devices[2], "Another-Password-For-Device-3"}});
  reset_counters(sim);
  auto plan = fleet.plan_json();
  INFO(plan.out << plan.err);
  REQUIRE(plan.code == 2);
  const auto j = json::parse(plan.out);
  CHECK(j["create"].size() == 1);
  CHECK(j["update"].size() == 1);
  CHECK(j["update"][0]["reason"] == "password changed");
  CHECK(j["delete"].size() == 1);
  CHECK(j["unchanged"] == 4);
  CHECK(writes(sim) == 0);  // plan never writes

  auto second = fleet.apply();
  INFO(second.out << second.err);
  REQUIRE(second.code == 0);
  CHECK_THAT(second.out, Catch::Contains("1 created, 1 updated, 1 deleted, 0 failed"));
  CHECK(requests(sim, "POST") == 1);
  CHECK(requests(sim, "PUT") == 1);
  CHECK(requests(sim, "DELETE") == 1);
  auto r = remote_passwords(sim);
  CHECK(r.at(devices[2])[0] == "Another-Password-For-Device-3");
  CHECK_FALSE(r.count(devices[0]));
}

TEST_CASE("after a successful apply, plan exits 0 and a second apply writes nothing",
          "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim);
  const auto devices = imeis(1, 20);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  reset_counters(sim);
  auto plan = fleet.run({"plan"});
  INFO(plan.out << plan.err);
  CHECK(plan.code == 0);
  CHECK_THAT(plan.out, Catch::Contains("No changes."));
  auto again = fleet.apply();
  CHECK(again.code == 0);
  CHECK(writes(sim) == 0);
}

TEST_CASE("remote bindings in any spelling match desired ones: no spurious creates",
          "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim);
  sim.create("urn:dev:IMEI:350000000000001:", thingsync::testsupport::kGoodPassword);
  sim.create("URN:DEV:deveui:EA8FA35E2CF3489F", thingsync::testsupport::kGoodPassword);
  sim.create("DVNUUID:ED8B73AC-F48F-4457-8CCC-9926CF28979F", thingsync::testsupport::kGoodPassword);
  sim.create("478A82D4-128F-47A6-AA61-2EAC3F2A23AD", thingsync::testsupport::kGoodPassword);
  const std::vector<std::string> desired{
      "imei:350000000000001", "deveui:ea8fa35e2cf3489f",
      "urn:dev:dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f:",
      "478a82d4-128f-47a6-aa61-2eac3f2a23ad"};
  fleet.set_desired(desired);
  reset_counters(sim);
  auto r = fleet.apply();
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(requests(sim, "POST") == 0);
  // First adoption: no state, so each password is put once.
  CHECK(requests(sim, "PUT") == 4);
  check_converged(sim, fleet, desired);
}

TEST_CASE("prune off leaves unmanaged bindings alone, prune on deletes them", "[e2e][apply]") {
  Sim sim;
  sim.create("imei:359999999999991", thingsync::testsupport::kGoodPassword);
  const auto devices = imeis(1, 3);
  {
    Fleet fleet(sim, {.prune = false});
    fleet.set_desired(devices);
    auto r = fleet.apply();
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("1 unmanaged left alone"));
    CHECK(remote_passwords(sim).count("imei:359999999999991") == 1);
  }
  {
    Fleet fleet(sim, {.prune = true, .max_deletes = "100%"});
    fleet.set_desired(devices);
    auto r = fleet.apply();
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(remote_passwords(sim).count("imei:359999999999991") == 0);
  }
}

TEST_CASE("a delete set over maxDeletes is blocked whole: exit 3, creates still done",
          "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "5%"});
  const auto devices = imeis(1, 40);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  // Drop 10 of 40 (25% > 5%) and add 2.
  auto next = std::vector<std::string>(devices.begin() + 10, devices.end());
  const auto added = imeis(500, 2);
  next.insert(next.end(), added.begin(), added.end());
  fleet.set_desired(next);
  reset_counters(sim);
  auto plan = fleet.plan_json();
  CHECK(plan.code == 3);
  CHECK(json::parse(plan.out)["blocked"].size() == 10);
  auto r = fleet.apply();
  INFO(r.out << r.err);
  CHECK(r.code == 3);
  CHECK_THAT(r.out, Catch::Contains("exceeds maxDeletes"));
  CHECK(requests(sim, "DELETE") == 0);
  CHECK(requests(sim, "POST") == 2);
  CHECK(remote_passwords(sim).size() == 42);
}

TEST_CASE("rotating the passwords of 10 devices sends exactly 10 PUTs", "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim);
  const auto devices = imeis(1, 30);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  std::map<std::string, std::string> rotated;
  for (int i = 0; i < 10; ++i) rotated[devices[static_cast<std::size_t>(i) * 3]] = "Rotated-Password-Number-" + std::to_string(i);
  fleet.set_desired(devices, rotated);
  reset_counters(sim);
  auto r = fleet.apply();
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(requests(sim, "PUT") == 10);
  CHECK(writes(sim) == 10);
  const auto rem = remote_passwords(sim);
  for (const auto& [dev, pw] : rotated) CHECK(rem.at(dev)[0] == pw);
}

TEST_CASE("duplicate remote bindings for one device: the newer ones are deleted", "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%"});
  const auto dev = imeis(7, 1)[0];
  // Created a second apart each (stamped: changes of one millisecond share a createdAt, and
  // then "oldest" would be the smaller id).
  const auto stamp = [](int seconds_ago) {
    return thingsync::core::format_iso8601_ms(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count() -
        seconds_ago * 1000);
  };
  auto oldest = sim.admin("POST", "/_sim/bindings",
                          {{"deviceId", dev},
                           {"password", thingsync::testsupport::kGoodPassword},
                           {"modifiedAt", stamp(3)}});
  REQUIRE(oldest.status == 201);
  for (int i = 0; i < 2; ++i) {
    auto dup = sim.admin("POST", "/_sim/bindings",
                         {{"deviceId", "urn:dev:IMEI:" + dev.substr(5) + ":"},
                          {"password", thingsync::testsupport::kGoodPassword},
                          {"allowDuplicate", true},
                          {"modifiedAt", stamp(2 - i)}});
    REQUIRE(dup.status == 201);
  }
  fleet.set_desired({dev});
  auto r = fleet.apply();
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto items = sim.admin("GET", "/_sim/bindings").json()["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["id"] == oldest.json()["id"]);
  CHECK(items[0]["password"] == fleet.derived(dev));
}

TEST_CASE("a lost state file costs one PUT per binding, then it is converged", "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim);
  const auto devices = imeis(1, 12);
  fleet.set_desired(devices);
  REQUIRE(fleet.apply().code == 0);
  std::filesystem::remove(fleet.state());
  std::filesystem::remove(fleet.state().string() + ".journal");
  reset_counters(sim);
  auto r = fleet.apply();
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(requests(sim, "PUT") == 12);
  CHECK(writes(sim) == 12);
  reset_counters(sim);
  CHECK(fleet.apply().code == 0);
  CHECK(writes(sim) == 0);
}

TEST_CASE("a corrupt state file is a clear error and nothing is written to the API",
          "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim);
  fleet.set_desired(imeis(1, 3));
  write_file(fleet.state(), "{\"format\":\"thingsync-state\",\"bindings\":{\"x\":");
  const auto before = read_file(fleet.state());
  auto r = fleet.apply();
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("corrupt") && Catch::Contains("move it aside"));
  CHECK(writes(sim) == 0);
  CHECK(read_file(fleet.state()) == before);
}

TEST_CASE("a list that fails on its third page writes nothing and exits 1", "[e2e][apply]") {
  Sim sim({"--page-size", "5", "--max-page-size", "5"});
  Fleet fleet(sim, {.prune = true, .max_deletes = "100%"});
  const auto devices = imeis(1, 20);
  for (const auto& d : devices) sim.create(d, thingsync::testsupport::kGoodPassword);
  // The desired state drops half and adds some: a partial list would look like both.
  auto desired = std::vector<std::string>(devices.begin(), devices.begin() + 10);
  auto added = imeis(300, 5);
  desired.insert(desired.end(), added.begin(), added.end());
  fleet.set_desired(desired);
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"failListOnPage", 3}}).status == 200);
  reset_counters(sim);
  auto r = fleet.apply();
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("nothing was planned or changed"));
  CHECK(writes(sim) == 0);
}

TEST_CASE("plan against a hung API still reports a broken desired state or --target at once",
          "[e2e][apply]") {
  // The list runs while the desired state loads; a load that fails must cut it, and a --target
  // that is no device ID must not wait for it (each answer here takes 30 s).
  Sim sim({"--latency", "30s"});
  Fleet fleet(sim, {.api_timeout = "10s"});
  fleet.set_desired(imeis(1, 3));
  const auto timed = [&](std::vector<std::string> args) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fleet.run(std::move(args));
    return std::pair(r, std::chrono::steady_clock::now() - t0);
  };
  const auto [bad_target, t1] = timed({"plan", "--target", "imei:123"});
  CHECK(bad_target.code == 64);
  CHECK_THAT(bad_target.err, Catch::Contains("--target 'imei:123' is not a device ID"));
  CHECK(t1 < std::chrono::seconds(5));
  write_file(fleet.desired_dir() / "broken.yaml", "bindings:\n  - deviceId: [\n");
  const auto [broken, t2] = timed({"plan"});
  CHECK(broken.code == 1);
  CHECK_THAT(broken.err, Catch::Contains("broken.yaml") &&
                             Catch::Contains("does not load: nothing was planned"));
  CHECK(t2 < std::chrono::seconds(5));  // not a list's worth of 30 s answers
}

TEST_CASE("apply without a terminal and without --yes refuses with a usage error",
          "[e2e][apply]") {
  Sim sim;
  Fleet fleet(sim);
  fleet.set_desired(imeis(1, 1));
  auto r = fleet.run({"apply"});
  CHECK(r.code == 64);
  CHECK_THAT(r.err, Catch::Contains("--yes"));
  CHECK(writes(sim) == 0);
}

TEST_CASE("export then validate round-trips, and plan then shows no creates or deletes",
          "[e2e][export]") {
  Sim sim;
  Fleet fleet(sim);
  const std::vector<std::string> devices{"imei:350000000000001", "deveui:ea8fa35e2cf3489f",
                                         "dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f",
                                         "478a82d4-128f-47a6-aa61-2eac3f2a23ad"};
  for (const auto& d : devices) sim.create(d, thingsync::testsupport::kGoodPassword);
  const auto out = fleet.dir() / "exported";
  auto r = fleet.run({"export", "--output-dir", out.string()});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // Unfilled, the placeholder key file makes validate fail.
  {
    thingsync::testsupport::Process v({THINGSYNC_PATH, "validate", out.string()});
    CHECK(v.wait() == 1);
  }
  // Fill in the password source: point every file at the fleet key.
  for (const auto& f : std::filesystem::directory_iterator(out)) {
    auto text = read_file(f.path());
    const auto pos = text.find("FILL-IN-the-fleet-key-file");
    REQUIRE(pos != std::string::npos);
    text.replace(pos, std::string("FILL-IN-the-fleet-key-file").size(), (fleet.dir() / "fleet-key").string());
    write_file(f.path(), text);
  }
  thingsync::testsupport::Process v({THINGSYNC_PATH, "validate", out.string()});
  REQUIRE(v.wait() == 0);
  CHECK_THAT(v.out(), Catch::Contains("4 bindings"));
  // Use the export as the desired state.
  std::filesystem::remove_all(fleet.desired_dir());
  std::filesystem::rename(out, fleet.desired_dir());
  auto plan = fleet.plan_json();
  INFO(plan.out << plan.err);
  const auto j = json::parse(plan.out);
  CHECK(j["create"].empty());
  CHECK(j["delete"].empty());
  CHECK(j["update"].size() == 4);  // first adoption: each password is put once
}
