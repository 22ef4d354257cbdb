// Hostile answers to list walks: a 10 MB body, truncated JSON, wrong types, a next link that
// loops, a next link to another origin, headers and then silence. The daemon must not crash,
// must say what went wrong, must write and delete nothing while it cannot see the whole list,
// and must pick up again when the server behaves.
#include <catch2/catch.hpp>

#include <sstream>

#include "chaos.hpp"
#include "hostile_server.hpp"

using namespace thingsync::chaos;
using namespace std::chrono_literals;
using Mode = HostileServer::Mode;

namespace {

constexpr const char* kToken = "chaos-hostile-token-0123456789";

void hostile_scenario(Mode mode, const std::string& name, const std::string& expected_error) {
  HostileServer server(kToken, 4);
  const auto all = devices(1, 12);
  for (std::size_t i = 0; i < 10; ++i) server.add(all[i]);  // made by someone else
  Rig rig;
  rig.configure(server.url(), AuthSpec::token_file(kToken),
                {.timeout = "1s", .poll = "300ms", .full_resync = "1s", .concurrency = 4});
  rig.set_desired(Desired(all));

  Daemon d(rig);
  // Converged: the two missing devices created, the ten adopted ones given their password.
  REQUIRE(eventually([&] { return server.has(all[10]) && server.has(all[11]) && d.settled(); },
                     30s));
  const auto before = server.counts();

  // From now on the second page of every walk is hostile; the first is fine and shows 4 of the
  // 12 bindings. A portal user deletes one: only a complete list may lead to re-creating it.
  server.set_mode(mode);
  REQUIRE(server.remove(all[2]));
  const auto t_hostile = Clock::now();
  REQUIRE(eventually([&] { return d.log_count(expected_error) > 0; }, 30s));
  const double first_error = seconds_since(t_hostile);
  const double last_ok = d.metric("thingsync_last_successful_reconcile_timestamp_seconds");
  // A few more failed walks (polls every 300 ms, full lists every 1 s).
  const auto walks_at_first_error = server.counts().first_pages;
  REQUIRE(eventually([&] { return server.counts().first_pages >= walks_at_first_error + 3; }, 60s));
  const auto health_start = Clock::now();
  const int health = d.status("/healthz");
  const double health_ms = seconds_since(health_start) * 1000;
  const auto during = server.counts();
  const auto errors = d.log_count(expected_error);

  CHECK(d.proc().running());
  CHECK(health == 200);
  CHECK(health_ms < 500);  // the event loop is not stuck behind a bad answer
  CHECK(during.writes == before.writes);  // nothing written, nothing deleted
  CHECK(during.unauthorized == 0);
  CHECK(during.foreign_connections == 0);  // the token went nowhere else
  // Each walk stops at the bad page (asked again only by the retries of a timeout, 5 attempts
  // in all): a loop is never followed round.
  const int per_walk = mode == Mode::kStall ? 1 + 5 : 1 + 1;
  CHECK(during.pages - before.pages <= per_walk * (during.first_pages - before.first_pages + 1));
  CHECK(d.metric("thingsync_last_successful_reconcile_timestamp_seconds") == last_ok);
  CHECK_FALSE(server.has(all[2]));

  // The server behaves again: the next complete list shows the deleted binding missing.
  const auto unknown_before = d.log_count("outcome unknown");
  server.set_mode(Mode::kGood);
  const auto t_good = Clock::now();
  REQUIRE(eventually([&] { return server.has(all[2]) && d.settled(); }, 30s));
  const double recovery = seconds_since(t_good);
  // Exactly one create and no delete, and no password PUT unless the create's answer came
  // after the 1-s timeout (a slow sanitizer build): its outcome was unknown, the binding was
  // found by a lookup or the next list, and the daemon cannot know that the password there is
  // the one it sent.
  const auto after = server.counts();
  CHECK(after.posts == before.posts + 1);
  CHECK(after.deletes == before.deletes);
  const int puts = (after.writes - after.posts - after.deletes) -
                   (before.writes - before.posts - before.deletes);
  const bool create_unanswered = d.log_count("outcome unknown") > unknown_before;
  CHECK(puts == (create_unanswered ? 1 : 0));
  CHECK(server.bindings_of(all[2]) == 1);
  CHECK(d.metric("thingsync_last_successful_reconcile_timestamp_seconds") > last_ok);
  CHECK(d.stop() == 0);
  CHECK(d.proc().err().find(kToken) == std::string::npos);

  auto line = summary();
  line << "hostile " << name << ": reported after " << first_error << " s (\"" << expected_error
       << "\" x" << errors << " over " << during.first_pages - before.first_pages
       << " walks), 0 writes, 0 foreign connections, /healthz " << health_ms
       << " ms, recovered " << recovery << " s after the server behaved";
  report(line);
}

}  // namespace

TEST_CASE("hostile list page: a 10 MB body", "[chaos][hostile]") {
  hostile_scenario(Mode::kHugeBody, "10 MB body", "response too large");
}

TEST_CASE("hostile list page: truncated JSON", "[chaos][hostile]") {
  hostile_scenario(Mode::kTruncatedJson, "truncated JSON", "page is not valid JSON");
}

TEST_CASE("hostile list page: wrong types", "[chaos][hostile]") {
  hostile_scenario(Mode::kWrongTypes, "wrong types", "protocol error");
}

TEST_CASE("hostile list page: a next link that loops back to the same page", "[chaos][hostile]") {
  hostile_scenario(Mode::kNextLoop, "next link loop", "next link repeats a page");
}

TEST_CASE("hostile list page: a next link to a foreign origin", "[chaos][hostile]") {
  hostile_scenario(Mode::kForeignNext, "foreign next link", "next link points to another origin");
}

TEST_CASE("hostile list page: headers, then the server stalls", "[chaos][hostile]") {
  hostile_scenario(Mode::kStall, "headers then stall", "no complete answer within");
}
