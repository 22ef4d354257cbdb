#include "thingsync/core/plan.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace thingsync::core;

namespace {

DeviceId id(std::string_view spelling) {
  auto parsed = DeviceId::parse(spelling);
  REQUIRE(parsed);
  return *parsed;
}

PackedDevice core_device(const DeviceId& d) { return PackedDevice(d); }

Fingerprint fp(std::uint8_t n) {
  Fingerprint f{};
  f.fill(n);
  return f;
}

DesiredBinding want(std::string_view device, std::uint8_t pw, std::uint32_t index = 0) {
  return {id(device), fp(pw), index};
}
RemoteBinding remote(std::string bid, std::string_view device, std::int64_t created = 1000) {
  return {std::move(bid), id(device), created, created};
}
AppliedBinding state(std::string bid, std::string_view device, std::uint8_t pw) {
  return {std::move(bid), id(device), fp(pw)};
}

SyncPolicy prune_with(DeleteLimit limit) { return {true, limit}; }
DeleteLimit count(double n) { return {DeleteLimit::Kind::kCount, n}; }
DeleteLimit percent(double p) { return {DeleteLimit::Kind::kPercent, p}; }

// A readable, complete rendering of a plan, so that two plans can be compared as a whole.
std::string describe(const Plan& p) {
  std::ostringstream out;
  for (const auto& c : p.creates) out << "create " << c.device.canonical() << " #" << c.desired_index << '\n';
  for (const auto& u : p.updates) {
    out << "update " << u.device.canonical() << ' ' << u.binding_id << " #" << u.desired_index
        << " (" << to_string(u.reason) << ")\n";
  }
  for (const auto& d : p.deletes) {
    out << "delete " << d.device.canonical() << ' ' << d.binding_id << " (" << to_string(d.reason)
        << ")\n";
  }
  for (const auto& b : p.blocked) {
    out << "blocked " << b.del.device.canonical() << ' ' << b.del.binding_id << " ("
        << to_string(b.del.reason) << "; " << to_string(b.reason) << ")\n";
  }
  out << "unchanged=" << p.unchanged << " unmanaged=" << p.unmanaged
      << " limit=" << p.delete_limit << '\n';
  return out.str();
}

// The rules of docs/operations.md "Reconciliation" written the obvious way, with ordered maps, to check make_plan against.
Plan reference_plan(const std::vector<DesiredBinding>& desired,
                    const std::vector<RemoteBinding>& observed,
                    const std::vector<AppliedBinding>& applied, const SyncPolicy& policy) {
  std::map<std::string, const DesiredBinding*> want_by_device;
  for (const auto& d : desired) want_by_device[d.device.unpack().canonical()] = &d;
  std::map<std::string, std::vector<const RemoteBinding*>> remote_by_device;
  for (const auto& r : observed) remote_by_device[r.device.canonical()].push_back(&r);
  std::map<std::string, const AppliedBinding*> applied_by_id;
  for (const auto& a : applied) applied_by_id[a.binding_id] = &a;

  Plan p;
  p.delete_limit = policy.max_deletes.resolve(observed.size());
  std::vector<PlannedDelete> dups;
  for (const auto& [device, d] : want_by_device) {
    auto it = remote_by_device.find(device);
    if (it == remote_by_device.end()) {
      p.creates.push_back({d->device.unpack(), d->index});
      continue;
    }
    auto group = it->second;
    std::sort(group.begin(), group.end(), [](const RemoteBinding* a, const RemoteBinding* b) {
      return a->created_at_ms != b->created_at_ms ? a->created_at_ms < b->created_at_ms
                                                  : a->id < b->id;
    });
    const RemoteBinding* kept = group.front();
    auto a = applied_by_id.find(kept->id);
    if (a == applied_by_id.end()) {
      p.updates.push_back({d->device.unpack(), kept->id, UpdateReason::kNotRecorded, d->index});
    } else if (core_device(a->second->device) != d->device) {
      p.updates.push_back({d->device.unpack(), kept->id, UpdateReason::kDeviceChanged, d->index});
    } else if (a->second->password_fp != d->password_fp) {
      p.updates.push_back({d->device.unpack(), kept->id, UpdateReason::kPasswordChanged, d->index});
    } else {
      ++p.unchanged;
    }
    for (std::size_t k = 1; k < group.size(); ++k) {
      dups.push_back({group[k]->device, group[k]->id, DeleteReason::kDuplicate});
    }
  }
  for (const auto& [device, group] : remote_by_device) {
    if (want_by_device.count(device) != 0) continue;
    for (const auto* r : group) {
      if (policy.prune) {
        p.deletes.push_back({r->device, r->id, DeleteReason::kNotDesired});
      } else {
        ++p.unmanaged;
      }
    }
  }
  for (auto& d : dups) {
    if (policy.prune) {
      p.deletes.push_back(d);
    } else {
      p.blocked.push_back({d, BlockReason::kPruneDisabled});
    }
  }
  if (p.deletes.size() > p.delete_limit) {
    for (auto& d : p.deletes) p.blocked.push_back({d, BlockReason::kMaxDeletes});
    p.deletes.clear();
  }
  auto key = [](const PlannedDelete& d) { return d.device.canonical() + '\n' + d.binding_id; };
  std::sort(p.deletes.begin(), p.deletes.end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  std::sort(p.blocked.begin(), p.blocked.end(),
            [&](const auto& a, const auto& b) { return key(a.del) < key(b.del); });
  std::sort(p.updates.begin(), p.updates.end(), [](const auto& a, const auto& b) {
    return a.device.canonical() < b.device.canonical();
  });
  return p;
}

struct Scenario {
  std::vector<DesiredBinding> desired;
  std::vector<RemoteBinding> observed;
  std::vector<AppliedBinding> applied;
};

// Devices drawn from a small pool so that matches, duplicates and strays all happen; long
// dvnuuid IDs share 24-byte prefixes to exercise the full-string comparisons.
Scenario random_scenario(std::mt19937& rng) {
  auto pick = [&](unsigned n) { return rng() % n; };
  std::vector<std::string> pool;
  for (int i = 0; i < 40; ++i) {
    std::ostringstream s;
    switch (i % 4) {
      case 0: s << "imei:3502668006" << 10000 + i; break;
      case 1: s << "DEVEUI:EA8FA35E2CF348" << std::hex << 16 + i; break;
      case 2: s << "urn:dev:dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf2897" << 10 + i << ':'; break;
      default: s << "ed8b73ac-f48f-4457-8ccc-9926cf2897" << 10 + i; break;
    }
    pool.push_back(s.str());
  }
  std::shuffle(pool.begin(), pool.end(), rng);
  Scenario sc;
  std::uint32_t index = 0;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    if (pick(3) != 0) sc.desired.push_back(want(pool[i], static_cast<std::uint8_t>(pick(2)), index++));
  }
  int bid = 0;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    for (unsigned n = pick(4) == 0 ? 0 : 1 + pick(3) / 2; n > 0; --n) {
      std::ostringstream b;
      b << "b" << std::setw(3) << std::setfill('0') << bid++;
      sc.observed.push_back(remote(b.str(), pool[i], 1000 + static_cast<int>(pick(3))));
      switch (pick(4)) {
        case 0: break;  // not recorded
        case 1: sc.applied.push_back(state(b.str(), pool[(i + 1) % pool.size()], 0)); break;
        default: sc.applied.push_back(state(b.str(), pool[i], static_cast<std::uint8_t>(pick(2)))); break;
      }
    }
  }
  return sc;
}

}  // namespace

TEST_CASE("a desired device without a remote binding is created", "[core][plan]") {
  const std::vector<DesiredBinding> desired{want("imei:350266800610993", 1, 7)};
  const Plan p = make_plan(desired, {}, {}, {});
  REQUIRE(p.creates.size() == 1);
  CHECK(p.creates[0].device == id("imei:350266800610993"));
  CHECK(p.creates[0].desired_index == 7);
  CHECK(p.updates.empty());
  CHECK(p.deletes.empty());
  CHECK(p.unchanged == 0);
  CHECK_FALSE(p.empty());
}

TEST_CASE("the kept binding is updated when its state is missing, for another device, or stale",
          "[core][plan]") {
  const std::vector<DesiredBinding> desired{
      want("imei:350266800610993", 1, 0), want("deveui:ea8fa35e2cf3489f", 2, 1),
      want("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f", 3, 2),
      want("478a82d4-128f-47a6-aa61-2eac3f2a23ad", 4, 3)};
  const std::vector<RemoteBinding> observed{
      remote("b-imei", "urn:dev:IMEI:350266800610993:"), remote("b-deveui", "deveui:EA8FA35E2CF3489F"),
      remote("b-dvn", "dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f"),
      remote("b-uuid", "478a82d4-128f-47a6-aa61-2eac3f2a23ad")};
  const std::vector<AppliedBinding> applied{
      // b-imei: no state at all
      state("b-deveui", "deveui:ea8fa35e2cf3489e", 2),  // remembered for another device
      state("b-dvn", "dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f", 9),  // other password
      state("b-uuid", "478a82d4-128f-47a6-aa61-2eac3f2a23ad", 4),         // up to date
  };
  const Plan p = make_plan(desired, observed, applied, {});
  CHECK(p.creates.empty());
  REQUIRE(p.updates.size() == 3);
  // Sorted by canonical device ID: "deveui:…" < "dvnuuid:…" < "imei:…".
  CHECK(p.updates[0].binding_id == "b-deveui");
  CHECK(p.updates[0].reason == UpdateReason::kDeviceChanged);
  CHECK(p.updates[0].desired_index == 1);
  CHECK(p.updates[1].binding_id == "b-dvn");
  CHECK(p.updates[1].reason == UpdateReason::kPasswordChanged);
  CHECK(p.updates[2].binding_id == "b-imei");
  CHECK(p.updates[2].reason == UpdateReason::kNotRecorded);
  CHECK(p.updates[2].device.canonical() == "imei:350266800610993");
  CHECK(p.unchanged == 1);
  CHECK(p.deletes.empty());
  CHECK(p.blocked.empty());
}

TEST_CASE("an up-to-date plan is empty and counts every binding as unchanged", "[core][plan]") {
  const std::vector<DesiredBinding> desired{want("imei:350266800610993", 1),
                                            want("imei:350266800610994", 2)};
  const std::vector<RemoteBinding> observed{remote("b1", "imei:350266800610993"),
                                            remote("b2", "imei:350266800610994")};
  const std::vector<AppliedBinding> applied{state("b1", "imei:350266800610993", 1),
                                            state("b2", "imei:350266800610994", 2),
                                            state("gone", "imei:350266800610995", 3)};
  const Plan p = make_plan(desired, observed, applied, prune_with(count(0)));
  CHECK(p.empty());
  CHECK(p.unchanged == 2);
  CHECK(p.blocked.empty());
  CHECK_FALSE(p.guard_blocked());
}

TEST_CASE("remote bindings of undesired devices are deleted with prune and only counted without",
          "[core][plan]") {
  const std::vector<RemoteBinding> observed{remote("b2", "imei:350266800610994"),
                                            remote("b1", "imei:350266800610993"),
                                            remote("b3", "imei:350266800610993", 5)};
  SECTION("prune on") {
    const Plan p = make_plan({}, observed, {}, prune_with(count(10)));
    REQUIRE(p.deletes.size() == 3);
    CHECK(p.deletes[0].binding_id == "b1");
    CHECK(p.deletes[1].binding_id == "b3");
    CHECK(p.deletes[2].binding_id == "b2");
    for (const auto& d : p.deletes) CHECK(d.reason == DeleteReason::kNotDesired);
    CHECK(p.unmanaged == 0);
  }
  SECTION("prune off") {
    const Plan p = make_plan({}, observed, {}, {false, count(10)});
    CHECK(p.deletes.empty());
    CHECK(p.blocked.empty());
    CHECK(p.unmanaged == 3);
    CHECK(p.empty());
  }
}

TEST_CASE("of two remote bindings for one device the oldest is kept, ties by smaller binding ID",
          "[core][plan]") {
  const std::vector<DesiredBinding> desired{want("imei:350266800610993", 1)};
  SECTION("older one kept, newer deleted as duplicate with prune") {
    const std::vector<RemoteBinding> observed{remote("aaa-new", "imei:350266800610993", 2000),
                                              remote("zzz-old", "IMEI:350266800610993", 1000)};
    const std::vector<AppliedBinding> applied{state("zzz-old", "imei:350266800610993", 1)};
    const Plan p = make_plan(desired, observed, applied, prune_with(count(1)));
    CHECK(p.unchanged == 1);
    REQUIRE(p.deletes.size() == 1);
    CHECK(p.deletes[0].binding_id == "aaa-new");
    CHECK(p.deletes[0].reason == DeleteReason::kDuplicate);
  }
  SECTION("same creation time: the smaller binding ID is kept") {
    const std::vector<RemoteBinding> observed{remote("b2", "imei:350266800610993", 1000),
                                              remote("b1", "imei:350266800610993", 1000),
                                              remote("b3", "imei:350266800610993", 1000)};
    const Plan p = make_plan(desired, observed, {}, prune_with(count(5)));
    REQUIRE(p.updates.size() == 1);
    CHECK(p.updates[0].binding_id == "b1");
    CHECK(p.updates[0].reason == UpdateReason::kNotRecorded);
    REQUIRE(p.deletes.size() == 2);
    CHECK(p.deletes[0].binding_id == "b2");
    CHECK(p.deletes[1].binding_id == "b3");
  }
  SECTION("without prune the duplicates are blocked and reported") {
    const std::vector<RemoteBinding> observed{remote("b2", "imei:350266800610993", 1000),
                                              remote("b1", "imei:350266800610993", 3000)};
    const Plan p = make_plan(desired, observed, {}, {false, count(5)});
    REQUIRE(p.updates.size() == 1);
    CHECK(p.updates[0].binding_id == "b2");
    CHECK(p.deletes.empty());
    REQUIRE(p.blocked.size() == 1);
    CHECK(p.blocked[0].del.binding_id == "b1");
    CHECK(p.blocked[0].del.reason == DeleteReason::kDuplicate);
    CHECK(p.blocked[0].reason == BlockReason::kPruneDisabled);
    CHECK_FALSE(p.guard_blocked());
    CHECK(p.unmanaged == 0);
  }
}

TEST_CASE("a delete set exactly at maxDeletes goes ahead and one more blocks all of it",
          "[core][plan]") {
  // 20 observed, none desired: 5% of 20 = 1 delete allowed.
  std::vector<RemoteBinding> observed;
  for (int i = 0; i < 20; ++i) {
    observed.push_back(remote("b" + std::to_string(10 + i), "imei:3502668006109" + std::to_string(10 + i)));
  }
  std::vector<DesiredBinding> desired;
  for (int i = 1; i < 20; ++i) desired.push_back(want("imei:3502668006109" + std::to_string(10 + i), 1));
  std::vector<AppliedBinding> applied;
  for (int i = 0; i < 20; ++i) {
    applied.push_back(state("b" + std::to_string(10 + i), "imei:3502668006109" + std::to_string(10 + i), 1));
  }

  SECTION("at the limit") {
    const Plan p = make_plan(desired, observed, applied, prune_with(percent(5)));
    CHECK(p.delete_limit == 1);
    REQUIRE(p.deletes.size() == 1);
    CHECK(p.deletes[0].binding_id == "b10");
    CHECK(p.blocked.empty());
    CHECK_FALSE(p.guard_blocked());
    CHECK(p.unchanged == 19);
  }
  SECTION("one over the limit") {
    desired.pop_back();
    const Plan p = make_plan(desired, observed, applied, prune_with(percent(5)));
    CHECK(p.delete_limit == 1);
    CHECK(p.deletes.empty());
    REQUIRE(p.blocked.size() == 2);
    CHECK(p.blocked[0].del.binding_id == "b10");
    CHECK(p.blocked[1].del.binding_id == "b29");
    for (const auto& b : p.blocked) {
      CHECK(b.reason == BlockReason::kMaxDeletes);
      CHECK(b.del.reason == DeleteReason::kNotDesired);
    }
    CHECK(p.guard_blocked());
    CHECK(p.unchanged == 18);
    CHECK(p.empty());  // nothing left to do, but the report says what was held back
  }
  SECTION("a count limit works the same way") {
    desired.clear();
    CHECK(make_plan(desired, observed, applied, prune_with(count(20))).deletes.size() == 20);
    const Plan p = make_plan(desired, observed, applied, prune_with(count(19)));
    CHECK(p.deletes.empty());
    CHECK(p.blocked.size() == 20);
  }
}

TEST_CASE("duplicates and strays over maxDeletes are blocked together in device order",
          "[core][plan]") {
  const std::vector<DesiredBinding> desired{want("imei:350266800610995", 1)};
  const std::vector<RemoteBinding> observed{remote("d", "imei:350266800610996"),
                                            remote("c", "imei:350266800610995", 9),
                                            remote("b", "imei:350266800610995", 1),
                                            remote("a", "imei:350266800610994")};
  const Plan p = make_plan(desired, observed, {}, prune_with(count(2)));
  CHECK(p.deletes.empty());
  REQUIRE(p.blocked.size() == 3);
  CHECK(p.blocked[0].del.binding_id == "a");
  CHECK(p.blocked[0].del.reason == DeleteReason::kNotDesired);
  CHECK(p.blocked[1].del.binding_id == "c");
  CHECK(p.blocked[1].del.reason == DeleteReason::kDuplicate);
  CHECK(p.blocked[2].del.binding_id == "d");
  REQUIRE(p.updates.size() == 1);
  CHECK(p.updates[0].binding_id == "b");
}

TEST_CASE("with nothing observed a percentage limit allows no deletes and creates still go ahead",
          "[core][plan]") {
  const std::vector<DesiredBinding> desired{want("imei:350266800610993", 1, 1),
                                            want("imei:350266800610992", 1, 0)};
  const Plan p = make_plan(desired, {}, {}, prune_with(percent(50)));
  CHECK(p.delete_limit == 0);
  REQUIRE(p.creates.size() == 2);
  CHECK(p.creates[0].desired_index == 0);
  CHECK(p.creates[1].desired_index == 1);
  CHECK(p.blocked.empty());
  CHECK(make_plan({}, {}, {}, {}).empty());
}

TEST_CASE("delete limits resolve as a count or as a floored percentage of managed bindings",
          "[core][plan]") {
  CHECK(percent(5).resolve(0) == 0);
  CHECK(percent(5).resolve(19) == 0);
  CHECK(percent(5).resolve(20) == 1);
  CHECK(percent(5).resolve(39) == 1);
  CHECK(percent(7).resolve(100) == 7);
  CHECK(percent(0.5).resolve(1'000'000) == 5'000);
  CHECK(percent(100).resolve(3) == 3);
  CHECK(percent(0).resolve(1000) == 0);
  CHECK(count(0).resolve(1000) == 0);
  CHECK(count(25).resolve(0) == 25);
  CHECK(count(25).resolve(10) == 25);
  CHECK(count(-3).resolve(10) == 0);
}

TEST_CASE("plan reasons have fixed human-readable names", "[core][plan]") {
  CHECK(to_string(UpdateReason::kPasswordChanged) == "password changed");
  CHECK(to_string(UpdateReason::kNotRecorded) == "not recorded in state (first adoption)");
  CHECK(to_string(UpdateReason::kDeviceChanged) == "device changed");
  CHECK(to_string(DeleteReason::kNotDesired) == "not desired");
  CHECK(to_string(DeleteReason::kDuplicate) == "duplicate binding");
  CHECK(to_string(BlockReason::kMaxDeletes) == "exceeds maxDeletes");
  CHECK(to_string(BlockReason::kPruneDisabled) == "prune is off");
}

TEST_CASE("long device IDs that share a prefix are still told apart and ordered",
          "[core][plan]") {
  // dvnuuid IDs are 44 characters; these differ only after the 24th.
  const std::vector<DesiredBinding> desired{
      want("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f", 1, 0),
      want("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979a", 1, 1)};
  const std::vector<RemoteBinding> observed{
      remote("x", "dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979e"),
      remote("y", "dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f")};
  const Plan p = make_plan(desired, observed, {}, prune_with(count(5)));
  REQUIRE(p.creates.size() == 1);
  CHECK(p.creates[0].desired_index == 1);
  REQUIRE(p.updates.size() == 1);
  CHECK(p.updates[0].binding_id == "y");
  REQUIRE(p.deletes.size() == 1);
  CHECK(p.deletes[0].binding_id == "x");
}

TEST_CASE("random scenarios plan as the rules say and shuffled inputs give the same plan",
          "[core][plan]") {
  std::mt19937 rng(42);
  std::map<std::string, int> seen;  // how many rounds exercised each outcome
  for (int round = 0; round < 300; ++round) {
    Scenario sc = random_scenario(rng);
    const SyncPolicy policy{rng() % 2 == 0,
                            rng() % 2 == 0 ? count(rng() % 30) : percent(rng() % 80)};
    const Plan ref = reference_plan(sc.desired, sc.observed, sc.applied, policy);
    const std::string expected = describe(ref);
    for (const char* outcome : {"create ", "(password changed)", "(not recorded", "(device changed)",
                                "(not desired)", "(duplicate binding)", "exceeds maxDeletes",
                                "prune is off", "unmanaged=0"}) {
      if (expected.find(outcome) != std::string::npos) ++seen[outcome];
    }
    if (!ref.deletes.empty()) ++seen["deletes allowed"];
    INFO("round " << round);
    REQUIRE(describe(make_plan(sc.desired, sc.observed, sc.applied, policy)) == expected);
    for (int s = 0; s < 3; ++s) {
      std::shuffle(sc.desired.begin(), sc.desired.end(), rng);
      std::shuffle(sc.observed.begin(), sc.observed.end(), rng);
      std::shuffle(sc.applied.begin(), sc.applied.end(), rng);
      REQUIRE(describe(make_plan(sc.desired, sc.observed, sc.applied, policy)) == expected);
    }
  }
  INFO("outcomes seen in the random rounds");
  CHECK(seen.size() == 10);
  for (const auto& [outcome, rounds] : seen) {
    INFO(outcome);
    CHECK(rounds >= 10);
  }
}

namespace {
Plan plan_of(std::vector<DesiredBinding> desired, std::vector<RemoteBinding> observed,
             std::vector<AppliedBinding> applied, SyncPolicy policy = {}) {
  return make_plan(desired, observed, applied, policy);
}
AppliedBinding receipted(std::string bid, std::string_view device, std::uint8_t pw,
                         std::int64_t receipt) {
  AppliedBinding a = state(std::move(bid), device, pw);
  a.receipt_ms = receipt;
  return a;
}
}  // namespace

TEST_CASE("plan: a binding whose modifiedAt is not its receipt was changed outside thingsync") {
  auto r = remote("b1", "imei:350266800610993", 1000);
  r.modified_at_ms = 5000;
  r.modified_by = "portal-user";
  SECTION("changed: its password is put back, with when and by whom") {
    const auto p = plan_of({want("imei:350266800610993", 1)}, {r},
                             {receipted("b1", "imei:350266800610993", 1, 4000)}, {});
    REQUIRE(p.updates.size() == 1);
    CHECK(p.updates[0].reason == UpdateReason::kChangedOutside);
    CHECK(p.updates[0].modified_at_ms == 5000);
    CHECK(p.updates[0].modified_by == "portal-user");
    CHECK(p.unchanged == 0);
  }
  SECTION("the receipt matches: unchanged") {
    const auto p = plan_of({want("imei:350266800610993", 1)}, {r},
                             {receipted("b1", "imei:350266800610993", 1, 5000)}, {});
    CHECK(p.updates.empty());
    CHECK(p.unchanged == 1);
    CHECK(p.receipts.empty());
  }
  SECTION("no receipt (an older state file): the listed modifiedAt becomes it, no write") {
    const auto p = plan_of({want("imei:350266800610993", 1)}, {r},
                             {receipted("b1", "imei:350266800610993", 1, 0)}, {});
    CHECK(p.updates.empty());
    REQUIRE(p.receipts.size() == 1);
    CHECK(p.receipts[0].binding_id == "b1");
    CHECK(p.receipts[0].modified_at_ms == 5000);
  }
  SECTION("no state record at all: adopted with one PUT") {
    const auto p = plan_of({want("imei:350266800610993", 1)}, {r}, {}, {});
    REQUIRE(p.updates.size() == 1);
    CHECK(p.updates[0].reason == UpdateReason::kNotRecorded);
  }
  SECTION("the API gave no modifiedAt: nothing to compare, no endless PUTs") {
    r.modified_at_ms = 0;
    const auto p = plan_of({want("imei:350266800610993", 1)}, {r},
                             {receipted("b1", "imei:350266800610993", 1, 4000)}, {});
    CHECK(p.updates.empty());
  }
}

TEST_CASE("plan: a duplicate's delete names the binding kept for its device") {
  const auto p =
      plan_of({want("imei:350266800610993", 1)},
                {remote("old", "imei:350266800610993", 1000), remote("new", "imei:350266800610993", 2000)},
                {state("old", "imei:350266800610993", 1)}, prune_with(count(10)));
  REQUIRE(p.deletes.size() == 1);
  CHECK(p.deletes[0].binding_id == "new");
  CHECK(p.deletes[0].kept_id == "old");
}
