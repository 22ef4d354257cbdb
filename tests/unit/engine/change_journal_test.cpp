// The change journal: its record format, the records the executor makes of each write, and
// the file it appends to.
#include "thingsync/engine/change_journal.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "temp_dir.hpp"
#include "thingsync/core/time.hpp"
#include "world.hpp"

using namespace thingsync;
using engine::WriteRecord;
using engine::WriteResult;
using thingsync::testing::password;
using thingsync::testing::World;

namespace {
constexpr const char* kD1 = "imei:350266800610993";
constexpr const char* kD2 = "imei:350266800610994";

WriteRecord an_update() {
  WriteRecord r;
  r.time_ms = 1'800'000'000'123;
  r.action = obs::Action::kUpdate;
  r.device = kD1;
  r.binding_id = "6c1e0f3e-0000-4000-8000-000000000001";
  r.reason = "changed outside thingsync";
  r.plan_hash = "0123456789abcdef";
  r.desired_commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
  r.before = engine::WriteStamp{1'800'000'000'000, "alice@example.com"};
  r.after = engine::WriteStamp{1'800'000'000'100, "principal/thingsync"};
  return r;
}

// Everything the records of a pass say, as one string to search for secrets.
std::string all_lines(const std::vector<WriteRecord>& records) {
  std::string out;
  for (const auto& r : records) out += engine::to_json_line(r) + "\n";
  return out;
}
}  // namespace

TEST_CASE("a change record is one JSON line with every field, and reads back the same",
          "[engine][change_journal]") {
  const auto r = an_update();
  const auto line = engine::to_json_line(r);
  CHECK(line.find('\n') == std::string::npos);
  const auto j = nlohmann::json::parse(line);
  CHECK(j["time"] == "2027-01-15T08:00:00.123Z");
  CHECK(j["action"] == "update");
  CHECK(j["device"] == kD1);
  CHECK(j["bindingId"] == r.binding_id);
  CHECK(j["result"] == "ok");
  CHECK(j["status"].is_null());  // a success's 2xx is not known
  CHECK(j["reason"] == "changed outside thingsync");
  CHECK(j["planHash"] == "0123456789abcdef");
  CHECK(j["desiredCommit"] == r.desired_commit);
  CHECK(j["before"]["modifiedAt"] == core::format_iso8601_ms(1'800'000'000'000));
  CHECK(j["before"]["modifiedBy"] == "alice@example.com");
  CHECK(j["after"]["modifiedBy"] == "principal/thingsync");
  CHECK_FALSE(j.contains("error"));
  CHECK(engine::parse_json_line(line) == r);

  SECTION("a failure has its status and error, and no after") {
    auto f = r;
    f.result = WriteResult::kFailed;
    f.status = 500;
    f.error = "500 server error: Internal Server Error";
    f.after.reset();
    const auto fj = nlohmann::json::parse(engine::to_json_line(f));
    CHECK(fj["result"] == "failed");
    CHECK(fj["status"] == 500);
    CHECK(fj["error"] == f.error);
    CHECK_FALSE(fj.contains("after"));
    CHECK(engine::parse_json_line(engine::to_json_line(f)) == f);
  }
  SECTION("what is not a record is refused") {
    CHECK_FALSE(engine::parse_json_line(""));
    CHECK_FALSE(engine::parse_json_line(line.substr(0, line.size() / 2)));  // torn
    CHECK_FALSE(engine::parse_json_line(R"({"a":"applied","id":"x"})"));   // the state journal
    auto bad = nlohmann::json::parse(line);
    bad["action"] = "upsert";
    CHECK_FALSE(engine::parse_json_line(bad.dump()));
  }
}

TEST_CASE("the plan hash is the same for the same plan and differs for another",
          "[engine][change_journal]") {
  core::Plan a;
  a.creates.push_back({*core::DeviceId::parse(kD1), 0});
  core::Plan b = a;
  CHECK(engine::plan_hash(a) == engine::plan_hash(b));
  CHECK(engine::plan_hash(a).size() == 16);
  b.creates.push_back({*core::DeviceId::parse(kD2), 1});
  CHECK(engine::plan_hash(a) != engine::plan_hash(b));
}

TEST_CASE("the executor records each write with its outcome, reason and stamps, no password",
          "[engine][change_journal]") {
  World w;
  w.want({{kD1, password(1)}, {kD2, password(2)}});
  w.apply();
  REQUIRE(w.writes.size() == 2);
  for (const auto& r : w.writes) {
    CHECK(r.action == obs::Action::kCreate);
    CHECK(r.result == WriteResult::kOk);
    CHECK_FALSE(r.binding_id.empty());
    REQUIRE(r.after);
    CHECK(r.after->modified_at_ms == w.api.store.at(r.binding_id).binding.modified_at_ms);
  }
  CHECK(w.writes[0].device == kD1);

  // A portal edit: put back, with who changed it before and what our PUT left.
  const auto id = w.api.of_device(kD1).front().binding.id;
  w.api.portal_edit(id, "someone-elses-Passw0rd!!!!!", "alice@example.com");
  const auto edited_at = w.api.store.at(id).binding.modified_at_ms;
  w.writes.clear();
  w.apply();
  REQUIRE(w.writes.size() == 1);
  const auto& u = w.writes[0];
  CHECK(u.action == obs::Action::kUpdate);
  CHECK(u.binding_id == id);
  CHECK(u.reason == "changed outside thingsync");
  REQUIRE(u.before);
  CHECK(u.before->modified_at_ms == edited_at);
  CHECK(u.before->modified_by == "alice@example.com");
  REQUIRE(u.after);
  CHECK(u.after->modified_at_ms == w.api.store.at(id).binding.modified_at_ms);

  SECTION("a failed PUT is recorded with its status") {
    w.api.portal_edit(id, "another-Passw0rd!!!!!!!!!!");
    w.api.fail_puts = 1;
    w.writes.clear();
    w.apply();
    REQUIRE(w.writes.size() == 1);
    CHECK(w.writes[0].result == WriteResult::kFailed);
    CHECK(w.writes[0].status == 500);
    CHECK_FALSE(w.writes[0].error.empty());
    CHECK_FALSE(w.writes[0].after);
  }
  SECTION("a delete with prune") {
    w.want({{kD1, password(1)}});
    w.writes.clear();
    w.apply();
    REQUIRE(w.writes.size() == 1);
    CHECK(w.writes[0].action == obs::Action::kDelete);
    CHECK(w.writes[0].device == kD2);
    CHECK(w.writes[0].reason == "not desired");
    CHECK(w.writes[0].result == WriteResult::kOk);
  }
  SECTION("a create whose answer was lost: unknown, then an adoption") {
    constexpr const char* kD3 = "imei:350266800610995";
    w.want({{kD1, password(1)}, {kD2, password(2)}, {kD3, password(3)}});
    w.api.creates_then_502 = 1;
    w.writes.clear();
    w.apply();
    REQUIRE(w.writes.size() == 2);
    CHECK(w.writes[0].action == obs::Action::kCreate);
    CHECK(w.writes[0].result == WriteResult::kUnknown);
    CHECK(w.writes[0].binding_id == w.api.of_device(kD3).front().binding.id);
    CHECK(w.writes[1].action == obs::Action::kUpdate);
    CHECK(w.writes[1].reason == "adoption");
    CHECK(w.writes[1].result == WriteResult::kOk);
  }
  const auto lines = all_lines(w.writes);
  for (int n = 1; n <= 3; ++n) CHECK(lines.find(password(n)) == std::string::npos);
  CHECK(lines.find("Passw0rd") == std::string::npos);
}

TEST_CASE("the change journal appends a line per record and follows a rotation",
          "[engine][change_journal]") {
  testsupport::TempDir dir;
  const auto path = dir / "changes.jsonl";
  engine::ChangeJournal journal({path, false});
  journal.record(an_update());
  journal.record(an_update());
  const auto line = engine::to_json_line(an_update()) + "\n";
  CHECK(testsupport::read_file(path) == line + line);
  // logrotate renames the file; the next record starts a new one.
  std::filesystem::rename(path, dir / "changes.jsonl.1");
  journal.record(an_update());
  CHECK(testsupport::read_file(path) == line);

  SECTION("a journal that cannot be written drops the record and goes on") {
    engine::ChangeJournal broken({dir / "no-such-dir" / "changes.jsonl", false});
    CHECK_NOTHROW(broken.record(an_update()));
    CHECK_NOTHROW(broken.record(an_update()));
    CHECK_FALSE(std::filesystem::exists(dir / "no-such-dir"));
  }
}

TEST_CASE("a pass's hook adds the plan hash, the commit and what the plan saw before",
          "[engine][change_journal]") {
  testsupport::TempDir dir;
  const auto path = dir / "changes.jsonl";
  engine::ChangeJournal journal({path, false});
  core::Plan plan;
  const auto device = *core::DeviceId::parse(kD2);
  plan.deletes.push_back({device, "b-2", core::DeleteReason::kNotDesired, ""});
  core::RemoteBinding seen{"b-2", device, 1, 1'800'000'000'000, "bob@example.com"};
  auto hook = journal.hook(plan, std::span(&seen, 1), "abc123");
  WriteRecord r;
  r.time_ms = 1'800'000'001'000;
  r.action = obs::Action::kDelete;
  r.device = kD2;
  r.binding_id = "b-2";
  hook(r);
  const auto back = engine::parse_json_line(testsupport::read_file(path));
  REQUIRE(back);
  CHECK(back->plan_hash == engine::plan_hash(plan));
  CHECK(back->desired_commit == "abc123");
  REQUIRE(back->before);
  CHECK(back->before->modified_by == "bob@example.com");
  CHECK(back->before->modified_at_ms == 1'800'000'000'000);
}
