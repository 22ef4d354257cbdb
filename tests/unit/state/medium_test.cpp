// The state store on a Medium: what a crash keeps, and durability failures surfacing as errors.
#include "thingsync/state/medium.hpp"

#include <catch2/catch.hpp>

#include <limits>

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
    s->record_applied("flushed", dev("imei:350266800610993"), fp(1), 0);
    REQUIRE(s->flush());
    s->record_applied("journaled", dev("imei:350266800610994"), fp(1), 0);
    REQUIRE(s->flush());
    s->record_applied("buffered", dev("imei:350266800610995"), fp(1), 0);
  }
  m->crash();
  auto s = open_ok(m);
  CHECK(s->existed());
  CHECK(s->salt() == kSalt);
  CHECK(s->find("flushed"));
  CHECK(s->find("journaled"));
  CHECK_FALSE(s->find("buffered"));
}

TEST_CASE("a flush whose journal write or sync fails reports it, and a later flush succeeds",
          "[state]") {
  // A failed write leaves half a line behind (MemoryMedium's short write). Appending the
  // records again behind it would bury a torn line mid-journal, which no open accepts.
  auto m = std::make_shared<MemoryMedium>();
  auto s = open_ok(m);
  s->record_applied("a", dev("imei:350266800610993"), fp(1), 0);
  REQUIRE(s->flush());
  s->record_applied("b", dev("imei:350266800610994"), fp(2), 0);
  REQUIRE(s->flush());
  const auto durable = m->durable_journal();
  s->record_applied("c", dev("imei:350266800610995"), fp(3), 0);
  m->fail_writes(true);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto r = s->flush();
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("memory:state"));
  }
  CHECK(m->durable_journal() == durable);
  SECTION("a crash before the retry keeps what was flushed before") {
    m->crash(std::numeric_limits<std::size_t>::max());
    m->fail_writes(false);
    auto after = open_ok(m);
    CHECK(after->size() == 2);
    CHECK_FALSE(after->find("c"));
  }
  SECTION("the retry writes the buffered records") {
    m->fail_writes(false);
    REQUIRE(s->flush());
    CHECK(s->journal_records() == 0);  // the retry wrote a snapshot
    s->record_applied("d", dev("imei:350266800610996"), fp(4), 0);
    REQUIRE(s->flush());
    CHECK(s->journal_records() == 1);
    m->crash();
    auto after = open_ok(m);
    CHECK(after->size() == 4);
    REQUIRE(after->find("c"));
    CHECK(after->find("c")->password_fp == fp(3));
    CHECK(after->find("d"));
  }
}

TEST_CASE("a snapshot that cannot be written fails flush and checkpoint and changes nothing",
          "[state]") {
  auto m = std::make_shared<MemoryMedium>();
  auto s = open_ok(m);
  s->record_applied("a", dev("imei:350266800610993"), fp(1), 0);
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
  const auto p = t.path() / "missing-dir" / "state.json";
  auto s = open_ok(p);
  s->record_applied("a", dev("imei:350266800610993"), fp(1), 0);
  const auto r = s->flush();
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains(p.string()));
  FileMedium file(p);
  const auto j = file.append_journal("x\n");
  REQUIRE_FALSE(j);
  CHECK_THAT(j.error().message,
             Catch::Contains("cannot open state journal " + p.string() + ".journal"));
}
