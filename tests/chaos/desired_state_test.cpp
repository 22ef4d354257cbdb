// Bad commits to the desired-state repository, pulled by the real thingsync-git-sync script into
// the work tree the daemon watches: one that empties the fleet (prune on: the delete guard must
// hold), one with a YAML error (the last good state stays), then a good one.
#include <catch2/catch.hpp>

#include <sstream>

#include "chaos.hpp"

using namespace thingsync::chaos;
using namespace std::chrono_literals;

namespace {

// An upstream repository with commits, and the daemon's clone of it, both driven through git
// and the production sync script.
class FleetRepo {
 public:
  explicit FleetRepo(const Rig& rig)
      : home_(rig.dir() / "git-home"), upstream_(rig.dir() / "upstream"), clone_(rig.desired_dir()) {
    std::filesystem::create_directories(home_);
    std::filesystem::create_directories(upstream_);
    git({"init", "-q", "-b", "main", upstream_.string()});
  }

  // Replaces the upstream tree by `files` (name -> content) and commits; returns the commit.
  std::string commit(const std::map<std::string, std::string>& files, const std::string& message) {
    for (const auto& e : std::filesystem::directory_iterator(upstream_)) {
      if (e.path().filename() != ".git") std::filesystem::remove_all(e.path());
    }
    for (const auto& [name, text] : files) thingsync::testsupport::write_file(upstream_ / name, text);
    git({"-C", upstream_.string(), "add", "-A"});
    git({"-C", upstream_.string(), "commit", "-q", "--allow-empty", "-m", message});
    auto sha = git({"-C", upstream_.string(), "rev-parse", "HEAD"});
    return sha.substr(0, sha.find('\n'));
  }
  void clone() { git({"clone", "-q", upstream_.string(), clone_.string()}); }
  // What thingsync-git-sync.timer does every minute.
  void pull() { run({"/bin/sh", THINGSYNC_GIT_SYNC_SCRIPT, clone_.string()}); }

 private:
  std::string git(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/git");
    return run(std::move(args));
  }
  std::string run(std::vector<std::string> argv) {
    Process p(std::move(argv), {"HOME=" + home_.string(), "GIT_CONFIG_NOSYSTEM=1",
                                "GIT_AUTHOR_NAME=chaos", "GIT_AUTHOR_EMAIL=chaos@example.invalid",
                                "GIT_COMMITTER_NAME=chaos",
                                "GIT_COMMITTER_EMAIL=chaos@example.invalid"});
    const auto code = p.wait(std::chrono::seconds(60));
    INFO(p.err());
    REQUIRE(code == 0);
    return p.out();
  }

  std::filesystem::path home_, upstream_, clone_;
};

std::vector<std::string> slice(const std::vector<std::string>& v, std::size_t from, std::size_t to) {
  return {v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(to)};
}

}  // namespace

TEST_CASE("desired-state commits: emptied (guard holds), broken YAML (last good stays), good",
          "[chaos][desired]") {
  Sim sim;
  Rig rig;
  // The simulator gives devices created through the API this client; the unmanaged bindings
  // below belong to another one, outside the scope: untouchable even with prune on.
  const std::string scope = "00000000-0000-4000-8000-000000000001";
  rig.configure(sim.url(), AuthSpec::token_file(sim.token()),
                {.poll = "300ms", .full_resync = "1s", .prune = true, .max_deletes = "5%",
                 .scope_client_id = scope});
  const auto unmanaged =
      seed_unmanaged(sim, devices(900001, 10), "11111111-2222-4333-8444-555555555555");
  const auto all = devices(1, 230);

  FleetRepo repo(rig);
  const Desired first(slice(all, 0, 200));
  const auto c1 = repo.commit({{"a.yaml", Rig::desired_yaml(slice(all, 0, 100))},
                               {"b.yaml", Rig::desired_yaml(slice(all, 100, 200))}},
                              "200 devices");
  repo.clone();
  Daemon d(rig);
  REQUIRE(wait_converged(sim, rig, first, unmanaged, d, 60s));
  const auto info = [&](const std::string& commit) {
    return d.metric("thingsync_desired_state_info", {{"commit", commit}});
  };
  CHECK(eventually([&] { return info(c1) == 1; }, 5s));
  const auto deletes = [&] { return sim.count("DELETE"); };
  const auto writes = [&] { return sim.count("POST") + sim.count("PUT") + deletes(); };
  const int writes_c1 = writes();

  // Commit 2 empties the fleet: b.yaml removed, a.yaml emptied. With prune on that is 200
  // deletes against maxDeletes 5% (10): the guard blocks them all, nothing is deleted.
  const auto c2 = repo.commit({{"a.yaml", ""}}, "oops: empty fleet");
  repo.pull();
  REQUIRE(eventually([&] { return d.metric("thingsync_deletes_blocked") == 200; }, 10s));
  const auto t_guard = Clock::now();
  CHECK(d.metric("thingsync_desired_bindings") == 0);
  CHECK(d.metric("thingsync_drift_bindings", {{"action", "delete"}}) == 200);
  CHECK(eventually([&] { return info(c2) == 1; }, 5s));
  CHECK(d.proc().wait_for_output("delete guard: 200 deletes blocked", 5s));
  // Several passes (full resyncs every 1 s) go by; none may delete.
  CHECK(eventually([&] { return d.log_count("delete guard: 200 deletes blocked") >= 3; }, 15s));
  CHECK(deletes() == 0);
  CHECK(writes() == writes_c1);
  CHECK(inspect(sim, rig, first, unmanaged).converged());  // everything still there
  const double guard_held = seconds_since(t_guard);

  // Commit 3 has a YAML error: the load fails, the emptied state of commit 2 stays in force.
  const auto c3 = repo.commit({{"a.yaml", "bindings:\n  - deviceId: [unclosed\n"}}, "broken");
  repo.pull();
  REQUIRE(eventually([&] { return d.metric("thingsync_desired_state_load_errors_total") == 1; },
                     10s));
  CHECK(d.proc().wait_for_output("a.yaml:3:1: error:", 5s));
  CHECK(d.status("/readyz") == 503);
  CHECK(info(c2) == 1);  // the commit in force is still the last good one
  CHECK(info(c3) == 0);
  CHECK(d.metric("thingsync_desired_bindings") == 0);
  CHECK(d.metric("thingsync_deletes_blocked") == 200);
  CHECK(deletes() == 0);
  CHECK(writes() == writes_c1);

  // Commit 4 is good: 5 devices retired (2.5% of 200, within the guard), 30 new ones.
  const Desired fourth([&] {
    auto v = slice(all, 0, 195);
    const auto more = slice(all, 200, 230);
    v.insert(v.end(), more.begin(), more.end());
    return v;
  }());
  const auto c4 = repo.commit({{"a.yaml", Rig::desired_yaml(slice(all, 0, 100))},
                               {"b.yaml", Rig::desired_yaml(slice(fourth.devices, 100, 225))}},
                              "retire 5, add 30");
  const auto t_good = Clock::now();
  repo.pull();
  const bool converged = wait_converged(sim, rig, fourth, unmanaged, d, 60s);
  INFO(inspect(sim, rig, fourth, unmanaged).describe());
  REQUIRE(converged);
  const double good = seconds_since(t_good);
  CHECK(eventually([&] { return info(c4) == 1; }, 5s));
  CHECK(deletes() == 5);
  CHECK(sim.count("POST", "201") - 200 == 30);
  CHECK(d.metric("thingsync_desired_state_load_errors_total") == 1);
  check_daemon_side(d, sim, rig, fourth, 225, {sim.token()});

  auto line = summary();
  line << "desired-state commits (prune on, maxDeletes 5%): emptied fleet -> 200 deletes blocked, "
          "0 DELETEs over "
       << guard_held << " s; broken YAML -> 1 load error, commit " << c2.substr(0, 7)
       << " stays in force; good commit converged in " << good
       << " s (30 created, 5 deleted), 10 out-of-scope bindings untouched";
  report(line);
}
