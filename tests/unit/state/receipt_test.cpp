// Receipts (the modifiedAt the API answered to thingsync's own last write of a binding) in the
// state store, and state version 3, which holds them.
#include "thingsync/state/state_store.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <limits>

#include "test_support.hpp"
#include "thingsync/state/medium.hpp"

using thingsync::core::PackedMillis;
using thingsync::state::MemoryMedium;
using namespace thingsync::state::test;

namespace {

// Binding ids as the API spells them (lower-case UUIDs: the compact path) and one that is not.
const std::string kA = "0f8c6b7e-1d2a-4c3b-9e4f-5a6b7c8d9e01";
const std::string kB = "0f8c6b7e-1d2a-4c3b-9e4f-5a6b7c8d9e02";
const std::string kC = "0f8c6b7e-1d2a-4c3b-9e4f-5a6b7c8d9e03";
const std::string kOdd = "Binding-Odd";
constexpr std::int64_t kR1 = 1'795'000'000'001;  // 2026-11-18
constexpr std::int64_t kR2 = 1'795'000'000'002;
constexpr std::int64_t kR3 = 1'795'000'000'003;
constexpr std::int64_t kR4 = 1'795'000'000'004;

std::int64_t receipt(const thingsync::state::StateStore& s, const std::string& id) {
  const auto a = s.find(id);
  REQUIRE(a);
  return a->receipt_ms;
}

// A version 2 state: binding kA (fingerprint 01 x 8) in the snapshot, kB (02 x 8) in the
// journal, neither with a receipt.
std::shared_ptr<MemoryMedium> version2_state() {
  auto m = std::make_shared<MemoryMedium>();
  REQUIRE(m->replace_snapshot(R"({"format":"thingsync-state","version":2,"salt":")" +
                              std::string(64, 'a') + R"(","bindings":{")" + kA +
                              R"(":{"device":"imei:350266800610993","fp":"0101010101010101"}},)"
                              R"("pending":[],"failures":{}})"));
  REQUIRE(m->append_journal(R"({"a":"applied","id":")" + kB +
                            R"(","device":"imei:350266800610994","fp":"0202020202020202"})"
                            "\n"));
  REQUIRE(m->sync_journal());
  return m;
}

}  // namespace

TEST_CASE("record_applied keeps the receipt, which find and applied return", "[state]") {
  auto s = open_ok(std::make_shared<MemoryMedium>());
  s->record_applied(kB, dev("imei:350266800610994"), fp(2), kR2);
  s->record_applied(kOdd, dev("imei:350266800610995"), fp(3), kR3);
  s->record_applied(kA, dev("imei:350266800610993"), fp(1), 0);
  CHECK(receipt(*s, kB) == kR2);
  CHECK(receipt(*s, kOdd) == kR3);
  const auto all = s->applied();
  REQUIRE(all.size() == 3);
  CHECK(all[0].binding_id == kA);
  CHECK(all[0].receipt_ms == 0);
  CHECK(all[1].binding_id == kB);
  CHECK(all[1].receipt_ms == kR2);
  CHECK(all[2].binding_id == kOdd);
  CHECK(all[2].receipt_ms == kR3);
}

TEST_CASE("receipts survive a snapshot, a journal replay and a crash", "[state]") {
  auto m = std::make_shared<MemoryMedium>();
  {
    auto s = open_ok(m);
    s->record_applied(kA, dev("imei:350266800610993"), fp(1), kR1);
    s->record_applied(kOdd, dev("imei:350266800610995"), fp(3), kR3);
    REQUIRE(s->checkpoint());
    REQUIRE(m->snapshot());
    CHECK_THAT(*m->snapshot(),
               Catch::Contains(R"("version":4)") &&
                   Catch::Contains(R"("fp":"0101010101010101","receipt":1795000000001})"));
    s->record_applied(kB, dev("imei:350266800610994"), fp(2), kR2);
    s->set_receipt(kA, kR4);
    REQUIRE(s->flush());
    CHECK_THAT(m->durable_journal(), Catch::Contains(R"("receipt":1795000000002})"));
    s->record_applied(kC, dev("imei:350266800610996"), fp(4), kR1);  // never flushed
  }
  m->crash();
  auto s = open_ok(m);
  CHECK(s->size() == 3);
  CHECK(receipt(*s, kA) == kR4);
  CHECK(s->find(kA)->password_fp == fp(1));
  CHECK(receipt(*s, kB) == kR2);
  CHECK(receipt(*s, kOdd) == kR3);
  CHECK_FALSE(s->find(kC));
  // And once more through a snapshot alone.
  REQUIRE(s->checkpoint());
  CHECK(m->durable_journal().empty());
  auto again = open_ok(m);
  CHECK(receipt(*again, kA) == kR4);
  CHECK(receipt(*again, kB) == kR2);
  CHECK(receipt(*again, kOdd) == kR3);
}

TEST_CASE("a crash that tears the last journal line loses only that record's receipt", "[state]") {
  auto m = std::make_shared<MemoryMedium>();
  {
    auto s = open_ok(m);
    s->record_applied(kA, dev("imei:350266800610993"), fp(1), kR1);
    REQUIRE(s->flush());  // the first flush writes the snapshot
    s->record_applied(kB, dev("imei:350266800610994"), fp(2), kR2);
    REQUIRE(s->flush());  // this one the journal
    s->record_applied(kC, dev("imei:350266800610996"), fp(3), kR3);
    m->fail_writes(true);
    REQUIRE_FALSE(s->flush());  // half of the line was written
  }
  m->crash(std::numeric_limits<std::size_t>::max());  // and reached the disk
  m->fail_writes(false);
  REQUIRE_THAT(m->durable_journal(), !Catch::EndsWith("\n"));
  {
    auto s = open_ok(m);
    CHECK(s->size() == 2);
    CHECK(receipt(*s, kA) == kR1);
    CHECK(receipt(*s, kB) == kR2);
    CHECK_FALSE(s->find(kC));
    s->set_receipt(kB, kR4);
    REQUIRE(s->flush());  // a snapshot, so nothing lands behind the torn line
    CHECK(m->durable_journal().empty());
    s->record_applied(kC, dev("imei:350266800610996"), fp(3), kR3);
    REQUIRE(s->flush());
  }
  m->crash();
  auto s = open_ok(m);
  CHECK(receipt(*s, kA) == kR1);
  CHECK(receipt(*s, kB) == kR4);
  CHECK(receipt(*s, kC) == kR3);
}

TEST_CASE("receipts round-trip through the state file and its journal, torn tail included",
          "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  {
    auto s = open_ok(p);
    s->record_applied(kA, dev("imei:350266800610993"), fp(1), kR1);
    REQUIRE(s->checkpoint());
    s->record_applied(kB, dev("imei:350266800610994"), fp(2), kR2);
    s->set_receipt(kA, kR3);
    REQUIRE(s->flush());
  }
  std::ofstream(p.string() + ".journal", std::ios::app)
      << R"({"a":"applied","id":")" + kC + R"(","device":"imei:3502)";  // cut short by a crash
  auto s = open_ok(p);
  CHECK(s->size() == 2);
  CHECK(receipt(*s, kA) == kR3);
  CHECK(receipt(*s, kB) == kR2);
  CHECK_THAT(read(p), Catch::Contains(R"("version":4)"));
}

TEST_CASE("set_receipt keeps the fingerprint, is journaled once, and ignores unknown ids",
          "[state]") {
  auto m = std::make_shared<MemoryMedium>();
  {
    auto s = open_ok(m);
    s->record_applied(kA, dev("imei:350266800610993"), fp(1), 0);
    REQUIRE(s->checkpoint());
    s->set_receipt(kA, kR1);
    s->set_receipt(kA, kR1);  // no change: no record
    s->set_receipt(kB, kR2);  // not recorded: nothing
    REQUIRE(s->flush());
    CHECK(s->journal_records() == 1);
    CHECK(m->durable_journal() ==
          R"({"a":"receipt","id":")" + kA + R"(","receipt":1795000000001})" + "\n");
  }
  m->crash();
  auto s = open_ok(m);
  CHECK(s->size() == 1);
  CHECK(receipt(*s, kA) == kR1);
  CHECK(s->find(kA)->password_fp == fp(1));
  CHECK_FALSE(s->find(kB));
}

TEST_CASE("a version 2 state loads with no receipts and is rewritten before the first append",
          "[state]") {
  auto m = version2_state();
  const auto v2 = *m->snapshot();
  {
    auto s = open_ok(m);
    CHECK(s->existed());
    REQUIRE(s->size() == 2);
    for (const auto& a : s->applied()) CHECK(a.receipt_ms == 0);
    CHECK(s->find(kB)->password_fp == fp(2));
    CHECK(*m->snapshot() == v2);  // opening alone writes nothing
    s->set_receipt(kA, kR1);
    REQUIRE(s->flush());
    CHECK_THAT(*m->snapshot(), Catch::Contains(R"("version":4)") &&
                                   Catch::Contains(R"("receipt":1795000000001})") &&
                                   Catch::Contains(R"("fp":"0202020202020202","receipt":0})"));
    CHECK(m->durable_journal().empty());
    s->set_receipt(kB, kR2);
    REQUIRE(s->flush());  // now appended to the journal
  }
  m->crash();
  auto s = open_ok(m);
  CHECK(receipt(*s, kA) == kR1);
  CHECK(receipt(*s, kB) == kR2);
}

TEST_CASE("a receipt too far from 1970 for 6 bytes is kept exactly", "[state]") {
  const std::int64_t far = PackedMillis::kMax + 1;
  const std::int64_t before = std::numeric_limits<std::int64_t>::min();
  auto m = std::make_shared<MemoryMedium>();
  {
    auto s = open_ok(m);
    s->record_applied(kA, dev("imei:350266800610993"), fp(1), far);
    s->record_applied(kB, dev("imei:350266800610994"), fp(2), kR2);
    s->set_receipt(kB, before);
    s->record_applied(kC, dev("imei:350266800610996"), fp(3), far);
    s->set_receipt(kC, kR3);  // back to 6 bytes
    CHECK(s->size() == 3);
    CHECK(receipt(*s, kA) == far);
    CHECK(receipt(*s, kB) == before);
    CHECK(receipt(*s, kC) == kR3);
    REQUIRE(s->flush());
    s->record_applied(kOdd, dev("imei:350266800610995"), fp(4), PackedMillis::kMax);
    REQUIRE(s->flush());
  }
  m->crash();
  auto s = open_ok(m);
  const auto all = s->applied();
  REQUIRE(all.size() == 4);
  CHECK(all[0].receipt_ms == far);
  CHECK(all[1].receipt_ms == before);
  CHECK(all[1].password_fp == fp(2));
  CHECK(all[2].receipt_ms == kR3);
  CHECK(all[3].receipt_ms == PackedMillis::kMax);
  s->forget(kA);
  s->retain_only({kC, kOdd});
  CHECK(s->size() == 2);
  REQUIRE(s->checkpoint());
  auto again = open_ok(m);
  CHECK(again->size() == 2);
  CHECK(receipt(*again, kC) == kR3);
}
