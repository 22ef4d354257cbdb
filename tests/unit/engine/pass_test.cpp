// The reconcile pass against FakeApi: one case per rule of docs/operations.md
// "Reconciliation". Each case is the operator's bad day that once went wrong.
#include "thingsync/engine/pass.hpp"

#include <catch2/catch.hpp>

#include "world.hpp"

using namespace thingsync;
using thingsync::testing::password;
using thingsync::testing::World;

namespace {
constexpr const char* kD1 = "imei:350266800610993";
constexpr const char* kD2 = "imei:350266800610994";

std::string only_binding(const World& w, const char* device) {
  const auto b = w.api.of_device(device);
  REQUIRE(b.size() == 1);
  return b.front().binding.id;
}
}  // namespace

// ---- foreign changes: receipts ------------------------------------------------------------

TEST_CASE("pass: a password changed in the portal while stopped is put back after a restart") {
  World w;
  w.want({{kD1, password(1)}, {kD2, password(2)}});
  w.apply();
  w.check_converged();
  const auto id = only_binding(w, kD1);
  w.restart();
  w.api.portal_edit(id, "someone-elses-Passw0rd!!!!!", "alice@example.com");

  const auto plan = w.plan();
  REQUIRE(plan.plan.updates.size() == 1);
  CHECK(plan.plan.updates[0].binding_id == id);
  CHECK(plan.plan.updates[0].reason == core::UpdateReason::kChangedOutside);
  CHECK(plan.plan.updates[0].modified_by == "alice@example.com");
  w.apply();
  w.check_converged();
  // Our PUT's answer is the new receipt: nothing to do, nothing to record.
  const auto after = w.plan();
  CHECK(after.plan.empty());
  CHECK(after.plan.receipts.empty());
  CHECK(w.state->find(id)->receipt_ms == w.api.store.at(id).binding.modified_at_ms);
  // And a second portal edit after it is seen again.
  w.api.portal_edit(id, "yet-another-Passw0rd!!!!!!!");
  w.apply();
  CHECK(w.api.count("PUT") == 2);
  w.check_converged();
}

TEST_CASE("pass: a portal edit seen by a poll or only by a full resync is put back") {
  World w;
  w.want({{kD1, password(1)}});
  w.start();  // the daemon's start: a full list and a pass
  w.check_converged();
  const auto id = only_binding(w, kD1);
  SECTION("by a poll") {
    w.api.portal_edit(id, "someone-elses-Passw0rd!!!!!");
    CHECK(w.poll());
  }
  SECTION("by a full resync before any poll") {
    w.api.portal_edit(id, "someone-elses-Passw0rd!!!!!");
    w.full_list();
  }
  const auto pass = w.full_pass();
  REQUIRE(pass.plan.updates.size() == 1);
  CHECK(pass.plan.updates[0].reason == core::UpdateReason::kChangedOutside);
  w.check_converged();
}

TEST_CASE("pass: a binding with no state record is adopted with one PUT, then left alone") {
  World w;
  w.want({{kD1, password(1)}});
  w.api.portal_create(kD1, "factory-Passw0rd!!!!!!!!!!");
  w.apply();
  CHECK(w.api.count("PUT") == 1);
  CHECK(w.api.count("POST") == 0);
  w.check_converged();
  w.apply();
  CHECK(w.api.count("PUT") == 1);
}

TEST_CASE("pass: a record of an older state file gets its receipt without a write") {
  World w;
  w.want({{kD1, password(1)}});
  w.apply();
  const auto id = only_binding(w, kD1);
  // What a version 2 state file holds: the fingerprint, no receipt.
  const auto rec = w.state->find(id);
  REQUIRE(rec);
  w.state->record_applied(id, rec->device, rec->password_fp, 0);
  w.apply();
  CHECK(w.api.count("PUT") == 0);
  CHECK(w.state->find(id)->receipt_ms == w.api.store.at(id).binding.modified_at_ms);
  // From then on a portal edit is seen.
  w.api.portal_edit(id, "someone-elses-Passw0rd!!!!!");
  w.apply();
  CHECK(w.api.count("PUT") == 1);
  w.check_converged();
}

// ---- deletes only on fresh evidence -------------------------------------------------------

TEST_CASE("pass: a portal delete-and-re-create seen by a poll keeps the new binding") {
  World w;
  w.want({{kD1, password(1)}});
  w.start();  // the daemon's start: a full list and a pass
  const auto old_id = only_binding(w, kD1);
  w.api.portal_delete(old_id);
  const auto new_id = w.api.portal_create(kD1, "portal-Passw0rd!!!!!!!!!!!");
  CHECK(w.poll());  // sees the new one; cannot see the delete
  w.full_pass();
  CHECK(w.api.count("DELETE") == 0);
  CHECK(only_binding(w, kD1) == new_id);
  w.check_converged();  // the desired password is in the new binding
}

TEST_CASE("pass: a delete planned on an older list looks first, and sends nothing for a gone one") {
  World w;
  w.want({{kD1, password(1)}});
  const auto stray = w.api.portal_create(kD2, "stray-Passw0rd!!!!!!!!!!!!");
  w.full_list();
  w.api.portal_delete(stray);  // gone before the pass
  w.poll();                    // a poll in between: the list is no longer fresh evidence
  w.full_pass();
  CHECK(w.api.count("GET " + stray) == 1);
  CHECK(w.api.count("DELETE") == 0);
  w.check_converged();
}

TEST_CASE("pass: a one-shot pass deletes on its own full list without looking again") {
  World w;
  w.want({{kD1, password(1)}});
  w.api.portal_create(kD2, "stray-Passw0rd!!!!!!!!!!!!");
  w.apply();
  CHECK(w.api.count("GET") == 0);
  CHECK(w.api.count("DELETE") == 1);
  w.check_converged();
}

TEST_CASE("pass: of two bindings for one device the kept one is confirmed live first") {
  World w;
  w.want({{kD1, password(1)}});
  const auto first = w.api.portal_create(kD1, "a-Passw0rd!!!!!!!!!!!!!!!!");
  const auto second = w.api.portal_create(kD1, "b-Passw0rd!!!!!!!!!!!!!!!!");
  w.full_list();
  w.api.portal_delete(first);
  w.poll();
  w.full_pass();
  CHECK(w.api.count("GET " + first) == 1);
  CHECK(w.api.count("DELETE") == 0);
  CHECK(only_binding(w, kD1) == second);
  w.check_converged();
}

TEST_CASE("pass: a delete-and-re-create during a full list keeps the new binding") {
  // Found by the simulation (tests/simulation): a full list is not one instant. The portal
  // replaced the binding between two pages; the list showed the old one and the new one, and
  // the pass on it deleted the new one as a duplicate without confirming the kept one.
  World w;
  w.want({{kD1, password(1)}, {kD2, password(2)}, {"imei:350266800610995", password(3)}});
  w.apply();
  const auto old_id = only_binding(w, kD1);
  std::string new_id;
  w.api.on_call = [&](const testing::FakeApi::Call& c) {
    if (c.op == testing::FakeApi::Op::kList && c.page == 1 && new_id.empty()) {
      w.api.portal_delete(old_id);
      new_id = w.api.portal_create(kD1, "portal-Passw0rd!!!!!!!!!!!");
    }
    return testing::FakeApi::Verdict{};
  };
  w.apply();  // pages of 2: the old binding on the first, the new one on the second
  w.api.on_call = nullptr;
  REQUIRE_FALSE(new_id.empty());
  CHECK(w.api.count("GET " + old_id) == 1);
  CHECK(w.api.count("DELETE") == 0);
  CHECK(only_binding(w, kD1) == new_id);
  w.apply();  // the next pass puts the desired password into it
  w.check_converged();
}

TEST_CASE("pass: a binding a create adopted is not moved back by the same pass") {
  // Found by the simulation: after a crash, d1's create was pending; the portal moved d2's
  // binding to d1 after the full list. d1's lookup adopted it (PUT with d1), then d2's update,
  // planned on the list, PUT it back to d2: d1 was left with no binding by thingsync itself.
  World w;
  w.want({{kD1, password(1)}, {kD2, password(2)}});
  const auto id = w.api.portal_create(kD2, "factory-Passw0rd!!!!!!!!!!");
  w.state->begin_create(*core::DeviceId::parse(kD1), w.api.now_ms);
  REQUIRE(w.state->flush());
  bool moved = false;
  w.api.on_call = [&](const testing::FakeApi::Call& c) {
    if (c.op == testing::FakeApi::Op::kList && c.query->device_id && !moved) {
      w.api.move(id, kD1);  // between the list and the lookup of the pending create
      moved = true;
    }
    return testing::FakeApi::Verdict{};
  };
  w.apply();
  w.api.on_call = nullptr;
  REQUIRE(moved);
  CHECK(w.api.count("PUT " + id) == 1);  // the adoption's, not the stale update's
  CHECK(only_binding(w, kD1) == id);
  w.apply();  // d2 gets a binding of its own
  w.check_converged();
}

// ---- creates with an unknown outcome ------------------------------------------------------

TEST_CASE("pass: a create committed then answered 502 or timed out is looked up, not re-sent") {
  World w;  // FakeApi accepts a second binding for a device, as the API may
  w.want({{kD1, password(1)}, {kD2, password(2)}});
  SECTION("502") { w.api.creates_then_502 = 2; }
  SECTION("timeout") { w.api.creates_then_timeout = 2; }
  w.apply();
  CHECK(w.api.count("POST") == 2);
  CHECK(w.api.count("LIST sort= device=") == 2);
  w.check_converged();
  CHECK(w.plan().plan.empty());
}

TEST_CASE("pass: no create is sent unless its pending record is durable") {
  World w;
  w.want({{kD1, password(1)}});
  w.medium->fail_writes(true);
  w.apply();
  CHECK(w.api.count("POST") == 0);
  CHECK(w.last_report.failed == 1);
  CHECK_FALSE(w.last_report.state_error.empty());
  w.medium->fail_writes(false);
  w.apply();
  CHECK(w.api.count("POST") == 1);
  w.check_converged();
}

TEST_CASE("pass: a pending create of a crashed run that the list shows is adopted, not re-posted") {
  World w;
  w.want({{kD1, password(1)}});
  // The POST landed, then the process crashed before the answer: only the pending record,
  // synced before the POST, survives.
  w.state->begin_create(*core::DeviceId::parse(kD1), w.api.now_ms);
  REQUIRE(w.state->flush());
  w.api.portal_create(kD1, "posted-before-crash-Passw0rd!", "thingsync");  // the landed POST
  w.restart(true);
  REQUIRE(w.state->pending().size() == 1);
  w.apply();
  CHECK(w.api.count("POST") == 0);
  CHECK(w.state->pending().empty());
  w.check_converged();
}

// ---- the delete guard ---------------------------------------------------------------------

TEST_CASE("pass: a device-scoped pass never sends a delete the full pass would block") {
  World w;
  w.policy.max_deletes = {core::DeleteLimit::Kind::kCount, 2};
  std::vector<std::pair<std::string, std::string>> all;
  for (int i = 0; i < 5; ++i) {
    all.push_back({"imei:35026680061100" + std::to_string(i), password(i)});
  }
  w.want(all);
  for (int i = 0; i < 3; ++i) w.api.portal_create("imei:35999999999999" + std::to_string(i), password(9));
  w.full_list();
  auto pass = w.full_pass();
  CHECK(pass.plan.blocked.size() == 3);  // 3 deletes > maxDeletes 2
  // A commit removes two devices: their pass (creates/updates only) defers the deletes...
  w.want({all.begin() + 2, all.end()});
  pass = w.devices_pass({all[0].first, all[1].first});
  CHECK(pass.deferred_deletes == 2);
  CHECK(w.api.count("DELETE") == 0);
  // ... to the full pass, whose guard counts all five.
  pass = w.full_pass();
  CHECK(pass.plan.blocked.size() == 5);
  CHECK(w.api.count("DELETE") == 0);
}

// ---- the watermark ------------------------------------------------------------------------

TEST_CASE("pass: a binding stamped in the future does not hide later portal changes from polls") {
  World w;
  w.want({{kD1, password(1)}, {kD2, password(2)}});
  w.start();  // the daemon's start: a full list and a pass
  w.check_converged();
  const auto ahead = only_binding(w, kD1);
  const auto other = only_binding(w, kD2);
  w.api.stamp(ahead, w.api.now_ms + 24 * 3'600'000LL);  // a node whose clock runs a day ahead
  w.advance_local(1000);
  w.poll();
  w.full_pass();  // the stamped one looks changed outside: its password is put again
  for (int i = 0; i < 3; ++i) {  // polls, well past the overlap
    w.advance_local(120'000);
    w.api.now_ms += 120'000;
    w.poll();
  }
  CHECK(w.observer().modified_since() <= w.api.now_ms);
  w.api.portal_edit(other, "someone-elses-Passw0rd!!!!!");
  CHECK(w.poll());
  const auto pass = w.full_pass();
  REQUIRE(pass.plan.updates.size() == 1);
  CHECK(pass.plan.updates[0].binding_id == other);
  w.check_converged();
}

TEST_CASE("pass: a pending create the list does not show is looked up before its POST") {
  World w;
  w.want({{kD1, password(1)}});
  w.state->begin_create(*core::DeviceId::parse(kD1), w.api.now_ms);
  REQUIRE(w.state->flush());
  w.restart(true);
  w.full_list();  // the crashed run's POST has not landed yet
  w.api.portal_create(kD1, "posted-before-crash-Passw0rd!", "thingsync");  // now it has
  w.full_pass();
  CHECK(w.api.count("LIST sort= device=") == 1);
  CHECK(w.api.count("POST") == 0);
  CHECK(w.last_report.adopted == 1);
  CHECK(w.state->pending().empty());
  w.check_converged();
}

TEST_CASE("pass: a create whose outcome and lookup both failed stays pending and is looked up") {
  World w;
  w.want({{kD1, password(1)}});
  w.full_list();
  w.api.creates_then_timeout = 1;
  w.api.fail_lists = 1;  // the lookup after the timeout
  w.full_pass();
  CHECK(w.api.count("POST") == 1);
  CHECK(w.state->pending().size() == 1);
  w.full_pass();  // no list in between: only the lookup can tell
  CHECK(w.api.count("LIST sort= device=") == 2);
  CHECK(w.api.count("POST") == 1);
  w.check_converged();
}

TEST_CASE("pass: an update that finds its binding gone plans again and creates it") {
  World w;
  w.want({{kD1, password(1)}});
  w.start();
  const auto old_id = only_binding(w, kD1);
  SECTION("on an older observation: the look before the PUT finds it gone") {
    w.api.portal_delete(old_id);    // no poll can show this
    w.want({{kD1, password(11)}});  // a commit changes the password
    w.full_pass();
    CHECK(w.api.count("GET " + old_id) == 1);
    CHECK(w.api.count("PUT " + old_id) == 0);
  }
  SECTION("on a fresh list: the PUT itself finds it gone") {
    w.want({{kD1, password(11)}});
    REQUIRE(w.full_list());
    w.api.portal_delete(old_id);  // between the list and the pass
    w.full_pass();
    CHECK(w.api.count("PUT " + old_id) == 1);
  }
  CHECK(w.api.count("POST") == 2);
  CHECK(w.last_report.failed == 0);
  CHECK_FALSE(w.observer().set().contains(old_id));
  CHECK(w.state->failures().empty());
  w.check_converged();
}

TEST_CASE("pass: a delete planned on a poll is sent once a look confirms it") {
  World w;
  w.want({{kD1, password(1)}});
  w.start();  // the daemon's start: a full list and a pass
  const auto stray = w.api.portal_create(kD2, "stray-Passw0rd!!!!!!!!!!!!");
  CHECK(w.poll());
  w.full_pass();
  CHECK(w.api.count("GET " + stray) == 1);
  CHECK(w.api.count("DELETE " + stray) == 1);
  w.check_converged();
}

TEST_CASE("pass: a delete whose binding moved to another device is not sent") {
  World w;
  w.want({{kD1, password(1)}});
  w.start();  // the daemon's start: a full list and a pass
  const auto stray = w.api.portal_create(kD2, "stray-Passw0rd!!!!!!!!!!!!");
  CHECK(w.poll());
  w.api.move(stray, "imei:350266800610995");  // a portal PUT the poll has not seen
  w.full_pass();
  CHECK(w.api.count("DELETE " + stray) == 1);  // deleted as what it is now, after a look
  CHECK(w.api.count("GET " + stray) == 2);     // once refused (other device), once confirmed
}

TEST_CASE("pass: a create answered 409 (an API that refuses duplicates) adopts the binding") {
  World w;
  w.api.duplicates_allowed = false;
  w.want({{kD1, password(1)}});
  w.full_list();
  const auto id = w.api.portal_create(kD1, "portal-Passw0rd!!!!!!!!!!!");  // not seen yet
  w.full_pass();
  CHECK(w.api.count("POST") == 1);
  CHECK(w.api.count("PUT " + id) == 1);
  CHECK(w.last_report.adopted == 1);
  w.check_converged();
}

TEST_CASE("pass: a portal delete-and-re-create whose duplicate delete is blocked still converges") {
  World w;
  SECTION("by the guard") { w.policy.max_deletes = {core::DeleteLimit::Kind::kCount, 0}; }
  SECTION("by prune off") { w.policy.prune = false; }
  w.want({{kD1, password(1)}});
  w.start();  // the daemon's start: a full list and a pass
  const auto old_id = only_binding(w, kD1);
  w.api.portal_delete(old_id);
  const auto new_id = w.api.portal_create(kD1, "portal-Passw0rd!!!!!!!!!!!");
  CHECK(w.poll());
  const auto first = w.full_pass();
  CHECK(w.api.count("GET " + old_id) == 1);
  CHECK(w.api.count("DELETE") == 0);
  CHECK(only_binding(w, kD1) == new_id);
  w.check_converged();
  CHECK(engine::needs_execution(first));
}

TEST_CASE("pass: the backoff and pending create of a device no longer desired are forgotten") {
  World w;
  w.want({{kD1, password(1)}, {kD2, password(2)}});
  w.start();
  const auto d2 = *core::DeviceId::parse(kD2);
  w.state->record_failure(d2, "400 rejected", w.api.now_ms);
  w.state->begin_create(*core::DeviceId::parse("imei:350266800610995"), w.api.now_ms);
  w.want({{kD1, password(1)}});  // a commit removes kD2
  REQUIRE(w.full_list());
  CHECK(w.state->failures().empty());
  CHECK(w.state->pending().empty());
  // The desired device's own records stay.
  w.state->record_failure(*core::DeviceId::parse(kD1), "400 rejected", w.api.now_ms);
  REQUIRE(w.full_list());
  CHECK(w.state->failures().size() == 1);
}

TEST_CASE("pass: an update on an older observation never moves a binding back from another device") {
  World w;
  w.policy.prune = false;
  w.want({{kD1, password(1)}});
  w.start();
  const auto id = only_binding(w, kD1);
  constexpr const char* kOther = "imei:350266800610777";
  w.api.move(id, kOther);  // re-assigned in the portal; no poll has seen it
  w.want({{kD1, password(11)}});
  w.full_pass();
  CHECK(w.api.count("PUT " + id) == 0);
  CHECK(only_binding(w, kOther) == id);  // the other device keeps its login
  CHECK(w.api.count("POST") == 2);       // the desired device gets a binding of its own
  const auto mine = w.api.of_device(kD1);
  REQUIRE(mine.size() == 1);
  CHECK(mine.front().password == password(11));
}

TEST_CASE("pass: a create adopted by its lookup is not created again when its PUT fails") {
  World w;
  w.policy.prune = false;
  w.want({{kD1, password(1)}});
  REQUIRE(w.full_list());
  w.api.creates_then_502 = 1;  // the POST lands, the answer is a 502: adopted by the lookup
  w.api.fail_puts = 1;         // and its password PUT fails
  w.full_pass();
  CHECK(w.last_report.adopted == 1);
  CHECK(w.last_report.failed == 1);
  w.full_pass();  // the next pass, on no new list: the adopted binding is known
  CHECK(w.api.count("POST") == 1);
  CHECK(w.api.of_device(kD1).size() == 1);
  w.check_converged();
}

TEST_CASE("pass: a device bound in the portal since the last look is adopted, not created twice") {
  World w;
  w.policy.prune = false;
  w.want({{kD1, password(1)}});
  w.start();
  const auto portal = w.api.portal_create(kD2, "portal-Passw0rd!!!!!!!!!!!");  // no poll yet
  w.want({{kD1, password(1)}, {kD2, password(2)}});  // then added to Git
  w.devices_pass({kD2});
  CHECK(w.api.count("POST") == 1);  // kD1's only
  CHECK(only_binding(w, kD2) == portal);
  w.check_converged();
}
