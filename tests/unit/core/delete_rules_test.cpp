// The delete rules with the clock injected: grace across full lists and restarts, a device
// restored within the grace, duplicates, approvals bound to one exact set.
#include "thingsync/core/delete_rules.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace thingsync::core;

namespace {

constexpr std::int64_t kHour = 3'600'000;
constexpr std::int64_t kT0 = 1'800'000'000'000;

DeviceId dev(int n) { return *DeviceId::parse("imei:35000000000" + std::to_string(1000 + n)); }
std::string id(int n) { return "00000000-0000-4000-8000-" + std::to_string(100000000000 + n); }

// A plan with these deletes (not desired), under a limit of `limit`.
Plan plan_of(const std::vector<int>& deleted, std::size_t limit = 100) {
  Plan p;
  p.delete_limit = limit;
  for (int n : deleted) p.deletes.push_back({dev(n), id(n), DeleteReason::kNotDesired, {}});
  return p;
}

DeleteTiming at(std::int64_t now, bool full_list = true, std::int64_t after = 24 * kHour) {
  DeleteTiming t;
  t.now_ms = now;
  t.full_list = full_list;
  t.delete_after_ms = after;
  return t;
}

}  // namespace

TEST_CASE("no grace: deletes go at once and no tombstone is kept", "[core][deletes]") {
  auto p = plan_of({1, 2});
  const auto keep = hold_deletes(p, {}, at(kT0, true, 0));
  CHECK(p.deletes.size() == 2);
  CHECK(p.waiting.empty());
  CHECK(keep.empty());
}

TEST_CASE("a delete waits until full lists have shown its reason for the whole grace",
          "[core][deletes]") {
  auto p = plan_of({1});
  auto keep = hold_deletes(p, {}, at(kT0));
  REQUIRE(p.waiting.size() == 1);
  CHECK(p.waiting[0].why == WaitingDelete::Why::kGrace);
  CHECK(p.waiting[0].not_before_ms == kT0 + 24 * kHour);
  REQUIRE(keep.size() == 1);
  CHECK(keep[0].since_ms == kT0);

  // A pass on polls only (no full list) a day later: not confirmed, still waits.
  p = plan_of({1});
  keep = hold_deletes(p, keep, at(kT0 + 25 * kHour, false));
  CHECK(p.deletes.empty());
  CHECK(p.waiting.size() == 1);

  // A full list past the grace confirms it: it goes.
  p = plan_of({1});
  keep = hold_deletes(p, keep, at(kT0 + 25 * kHour));
  CHECK(p.deletes.size() == 1);
  CHECK(p.waiting.empty());
}

TEST_CASE("a device restored within the grace costs nothing, and its clock starts over",
          "[core][deletes]") {
  auto p = plan_of({1, 2});
  auto keep = hold_deletes(p, {}, at(kT0));
  REQUIRE(keep.size() == 2);
  // Device 1 is back in the desired state: no delete for it, its tombstone goes.
  p = plan_of({2});
  keep = hold_deletes(p, keep, at(kT0 + kHour));
  REQUIRE(keep.size() == 1);
  CHECK(keep[0].binding_id == id(2));
  // Removed again later: a new grace from then.
  p = plan_of({1, 2});
  keep = hold_deletes(p, keep, at(kT0 + 24 * kHour));
  REQUIRE(p.deletes.size() == 1);
  CHECK(p.deletes[0].binding_id == id(2));
  REQUIRE(p.waiting.size() == 1);
  CHECK(p.waiting[0].not_before_ms == kT0 + 48 * kHour);
}

TEST_CASE("a duplicate waits like any delete, and a pass over some devices keeps the others'",
          "[core][deletes]") {
  Plan p;
  p.delete_limit = 100;
  p.deletes.push_back({dev(1), id(11), DeleteReason::kDuplicate, id(10)});
  p.deletes.push_back({dev(2), id(2), DeleteReason::kNotDesired, {}});
  auto keep = hold_deletes(p, {}, at(kT0));
  CHECK(p.waiting.size() == 2);
  // A --target pass over device 1 only: device 2's tombstone is kept as it is.
  Plan one;
  one.delete_limit = 100;
  one.deletes.push_back({dev(1), id(11), DeleteReason::kDuplicate, id(10)});
  auto t = at(kT0 + 25 * kHour);
  t.in_pass = [](const DeviceId& d) { return d == dev(1); };
  keep = hold_deletes(one, keep, t);
  CHECK(one.deletes.size() == 1);
  REQUIRE(keep.size() == 2);  // sorted by binding id: id(2) first
  CHECK(keep[0].binding_id == id(2));
  CHECK(keep[0].confirmed_ms == kT0);
  CHECK(keep[1].confirmed_ms == kT0 + 25 * kHour);
}

TEST_CASE("the guard counts what may go now, whole or not at all", "[core][deletes]") {
  // 3 deletes over a limit of 2: blocked by make_plan; their grace over, still blocked whole.
  auto p = plan_of({1, 2, 3}, 2);
  auto keep = hold_deletes(p, {}, at(kT0));
  CHECK(p.waiting.size() == 3);  // waiting: the guard sees nothing to go yet
  CHECK(p.blocked.empty());
  p = plan_of({1, 2, 3}, 2);
  keep = hold_deletes(p, keep, at(kT0 + 25 * kHour));
  CHECK(p.deletes.empty());
  CHECK(p.blocked.size() == 3);
  CHECK(p.guard_blocked());
}

TEST_CASE("a delete window holds deletes back until it opens", "[core][deletes]") {
  auto p = plan_of({1});
  auto t = at(kT0, true, 0);
  t.next_window = [](std::int64_t now) -> std::optional<std::int64_t> { return now + kHour; };
  hold_deletes(p, {}, t);
  REQUIRE(p.waiting.size() == 1);
  CHECK(p.waiting[0].why == WaitingDelete::Why::kWindow);
  CHECK(p.waiting[0].not_before_ms == kT0 + kHour);
  p = plan_of({1});
  t.next_window = [](std::int64_t) -> std::optional<std::int64_t> { return std::nullopt; };
  hold_deletes(p, {}, t);
  CHECK(p.deletes.size() == 1);
}

TEST_CASE("an approval matches exactly one blocked set: one binding more is another hash",
          "[core][deletes]") {
  std::vector<int> fifty;
  for (int i = 1; i <= 50; ++i) fifty.push_back(i);
  auto p = plan_of(fifty, 10);
  hold_deletes(p, {}, at(kT0, true, 0));
  REQUIRE(p.guard_blocked());
  const auto hash = blocked_deletes_hash(p);
  CHECK(hash.size() == 16);
  // The same set in another order: the same hash.
  std::vector<int> reversed(fifty.rbegin(), fifty.rend());
  auto q = plan_of(reversed, 10);
  hold_deletes(q, {}, at(kT0, true, 0));
  CHECK(blocked_deletes_hash(q) == hash);
  // One binding more: another hash, and the first approval does not let it through.
  fifty.push_back(51);
  auto r = plan_of(fifty, 10);
  hold_deletes(r, {}, at(kT0, true, 0));
  CHECK(blocked_deletes_hash(r) != hash);
  CHECK_FALSE(approve_blocked_deletes(r, hash));
  CHECK(r.deletes.empty());
  // The matching approval lets exactly that set through.
  CHECK(approve_blocked_deletes(p, hash));
  CHECK(p.deletes.size() == 50);
  CHECK(p.blocked.empty());
  CHECK(blocked_deletes_hash(p).empty());
}

TEST_CASE("delete windows parse as days, times and a zone", "[core][deletes]") {
  std::string why;
  auto w = parse_delete_window("Mon-Fri 09:00-17:00 Europe/Amsterdam", why);
  REQUIRE(w);
  CHECK(w->days == 0b0011111);
  CHECK(w->start_minute == 540);
  CHECK(w->end_minute == 1020);
  CHECK(w->zone == "Europe/Amsterdam");
  w = parse_delete_window("sat,SUN 22:00-02:00 UTC", why);
  REQUIRE(w);
  CHECK(w->days == 0b1100000);
  CHECK(w->end_minute == 120);
  CHECK(parse_delete_window("Fri-Mon 00:00-24:00 UTC", why)->days == 0b1110001);
  CHECK_FALSE(parse_delete_window("Mon-Fri 9-17 Europe/Amsterdam", why));
  CHECK_FALSE(parse_delete_window("Funday 09:00-17:00 UTC", why));
  CHECK_FALSE(parse_delete_window("Mon 09:00-09:00 UTC", why));
  CHECK_FALSE(parse_delete_window("Mon 09:00-17:00", why));
  CHECK_FALSE(parse_delete_window("Mon 24:00-17:00 UTC", why));
}
