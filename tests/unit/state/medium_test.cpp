// The state store on a Medium: what a crash keeps, and durability failures surfacing as errors.
#include "thingsync/state/medium.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"
#include "thingsync/state/state_store.hpp"

using thingsync::state::FileMedium;
using thingsync::state::MemoryMedium;
using thingsync::state::StateStore;
using namespace thingsync::state::test;

TEST_CASE("a MemoryMedium crash keeps synced journal bytes and loses the rest", "[state]") {
  MemoryMedium m;
  REQUIRE(m.append_journal("one\n"));
  REQUIRE(m.sync_journal());
  REQUIRE(m.append_journal("two\n"));
  CHECK(m.unsynced_journal() == "two\n");
  m.crash();
  CHECK(m.durable_journal() == "one\n");
  REQUIRE(m.append_journal("three\n"));
  m.crash(2);  // a write that reached the disk in part
  CHECK(m.durable_journal() == "one\nth");
  REQUIRE(m.clear_journal());
  CHECK(m.durable_journal().empty());
  CHECK_FALSE(m.snapshot());
}

TEST_CASE("on a MemoryMedium, flushed records survive a crash and unflushed ones do not",
          "[state]") {
  auto m = std::make_shared<MemoryMedium>();
  {
    auto s = open_ok(m);
    CHECK_FALSE(s->existed());
    CHECK(s->path().empty());
    s->record_applied("flushed", dev("imei:350266800610993"), fp(1));
    REQUIRE(s->flush());
    s->record_applied("journaled", dev("imei:350266800610994"), fp(1));
    REQUIRE(s->flush());
    s->record_applied("buffered", dev("imei:350266800610995"), fp(1));
  }
  m->crash();
  auto s = open_ok(m);
  CHECK(s->existed());
  CHECK(s->salt() == kSalt);
  CHECK(s->find("flushed"));
  CHECK(s->find("journaled"));
  CHECK_FALSE(s->find("buffered"));
}

TEST_CASE("a snapshot that cannot be written fails flush and checkpoint and changes nothing",
          "[state]") {
  auto m = std::make_shared<MemoryMedium>();
  auto s = open_ok(m);
  s->record_applied("a", dev("imei:350266800610993"), fp(1));
  m->fail_writes(true);
  CHECK_FALSE(s->flush());  // the first flush writes a snapshot
  CHECK_FALSE(s->checkpoint());
  CHECK_FALSE(m->snapshot());
  m->fail_writes(false);
  REQUIRE(s->flush());
  auto after = open_ok(m);
  CHECK(after->find("a"));
}

TEST_CASE("a state file that cannot be written is an error naming it", "[state]") {
  TempDir t;
  const auto p = t.path / "missing-dir" / "state.json";
  auto s = open_ok(p);
  s->record_applied("a", dev("imei:350266800610993"), fp(1));
  const auto r = s->flush();
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains(p.string()));
  FileMedium file(p);
  const auto j = file.append_journal("x\n");
  REQUIRE_FALSE(j);
  CHECK_THAT(j.error().message,
             Catch::Contains("cannot open state journal " + p.string() + ".journal"));
}
