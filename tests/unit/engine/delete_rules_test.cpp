// The delete rules on a state store: the grace survives a restart (only durable bytes do), and
// an approval is used once.
#include <catch2/catch.hpp>

#include <memory>

#include "thingsync/engine/pass.hpp"
#include "thingsync/state/medium.hpp"
#include "thingsync/state/state_store.hpp"

using namespace thingsync;

namespace {

constexpr std::int64_t kHour = 3'600'000;
constexpr std::int64_t kT0 = 1'800'000'000'000;

core::DeviceId dev(int n) { return *core::DeviceId::parse("imei:35000000000" + std::to_string(1000 + n)); }
std::string id(int n) { return "00000000-0000-4000-8000-" + std::to_string(100000000000 + n); }

engine::PassPlan full_pass(const std::vector<int>& deleted, std::size_t limit = 100) {
  engine::PassPlan p;
  p.fresh = true;
  p.plan.delete_limit = limit;
  for (int n : deleted) p.plan.deletes.push_back({dev(n), id(n), core::DeleteReason::kNotDesired, {}});
  return p;
}

std::unique_ptr<state::StateStore> open(const std::shared_ptr<state::MemoryMedium>& m) {
  auto s = state::StateStore::open(m, std::string(32, 's'));
  REQUIRE(s);
  return std::move(s.value());
}

}  // namespace

TEST_CASE("the grace of a delete survives a restart of the process", "[engine][deletes]") {
  auto medium = std::make_shared<state::MemoryMedium>();
  engine::DeleteRules rules;
  rules.delete_after_ms = 24 * kHour;
  {
    auto st = open(medium);
    auto pass = full_pass({1});
    engine::apply_delete_rules(pass, *st, rules, kT0);
    CHECK(pass.plan.waiting.size() == 1);
    REQUIRE(st->flush());
  }
  medium->crash();  // only what was synced survives
  auto st = open(medium);
  REQUIRE(st->tombstones().size() == 1);
  CHECK(st->tombstones()[0].since_ms == kT0);
  // 23 hours after the first sighting, restarted in between: still waiting, not reset.
  auto pass = full_pass({1});
  engine::apply_delete_rules(pass, *st, rules, kT0 + 23 * kHour);
  REQUIRE(pass.plan.waiting.size() == 1);
  CHECK(pass.plan.waiting[0].not_before_ms == kT0 + 24 * kHour);
  pass = full_pass({1});
  engine::apply_delete_rules(pass, *st, rules, kT0 + 24 * kHour);
  CHECK(pass.plan.deletes.size() == 1);
}

TEST_CASE("an approval lets its set through once, and is remembered as used", "[engine][deletes]") {
  auto medium = std::make_shared<state::MemoryMedium>();
  auto st = open(medium);
  auto pass = full_pass({1, 2, 3}, 1);
  pass.plan.blocked.clear();
  // make_plan would have blocked them: hold_deletes applies the guard itself.
  auto first = engine::apply_delete_rules(pass, *st, {}, kT0);
  REQUIRE(pass.plan.guard_blocked());
  const auto hash = first.blocked_hash;
  REQUIRE_FALSE(hash.empty());

  engine::DeleteRules approved;
  approved.approvals = {"0123456789abcdef", hash};
  pass = full_pass({1, 2, 3}, 1);
  auto second = engine::apply_delete_rules(pass, *st, approved, kT0 + 1);
  CHECK(second.approved == hash);
  CHECK(pass.plan.deletes.size() == 3);
  REQUIRE(st->flush());

  // The same set again (say the deletes failed, or it came back): the approval is spent.
  st = open(medium);
  pass = full_pass({1, 2, 3}, 1);
  auto third = engine::apply_delete_rules(pass, *st, approved, kT0 + 2);
  CHECK(third.approved.empty());
  CHECK_THAT(third.approval_refused, Catch::Contains("used already"));
  CHECK(pass.plan.deletes.empty());
  CHECK(pass.plan.guard_blocked());
}
