// The state store on a Medium: what a crash keeps, and durability failures surfacing as errors.
#include "thingsync/state/medium.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <iterator>
#include <limits>
#include <string>

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

namespace {
std::string snapshot_of(thingsync::state::Medium& m) {
  auto in = m.read_snapshot();
  REQUIRE(in);
  if (!in.value()) return "(none)";
  return std::string(std::istreambuf_iterator<char>(*in.value()), {});
}
std::size_t files_in(const std::filesystem::path& dir) {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir),
                                                std::filesystem::directory_iterator()));
}
}  // namespace

TEST_CASE("a snapshot written in pieces replaces the old one only at its commit", "[state]") {
  TempDir t;
  FileMedium file(t.path() / "state.json");
  REQUIRE(file.replace_snapshot("old\n"));
  {
    auto w = file.begin_snapshot();
    REQUIRE(w);
    REQUIRE(w.value()->write("half of "));
    CHECK(snapshot_of(file) == "old\n");
    CHECK(files_in(t.path()) == 2);  // the temporary file beside it
  }  // dropped without a commit: nothing changes, nothing is left behind
  CHECK(snapshot_of(file) == "old\n");
  CHECK(files_in(t.path()) == 1);
  auto w = file.begin_snapshot();
  REQUIRE(w);
  for (int i = 0; i < 3; ++i) REQUIRE(w.value()->write("piece " + std::to_string(i) + "\n"));
  REQUIRE(w.value()->commit());
  CHECK(snapshot_of(file) == "piece 0\npiece 1\npiece 2\n");
  CHECK(files_in(t.path()) == 1);

  MemoryMedium memory;
  auto mw = memory.begin_snapshot();
  REQUIRE(mw);
  REQUIRE(mw.value()->write("a"));
  CHECK_FALSE(memory.snapshot());
  memory.fail_writes(true);
  CHECK_FALSE(mw.value()->commit());
  CHECK_FALSE(memory.snapshot());
  memory.fail_writes(false);
  REQUIRE(mw.value()->write("b"));
  REQUIRE(mw.value()->commit());
  CHECK(*memory.snapshot() == "ab");
}

TEST_CASE("a large state's checkpoint streams the same snapshot a reopen reads", "[state]") {
  auto m = std::make_shared<MemoryMedium>();
  {
    auto s = open_ok(m);
    // ~20,000 records: the snapshot is written in several 1 MiB pieces.
    for (int i = 0; i < 20000; ++i) {
      char id[37];
      std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
      const std::string device = "imei:35026680" + std::to_string(1000000 + i);
      s->record_applied(id, dev(device.c_str()), fp(static_cast<std::uint8_t>(i % 250)), i);
    }
    REQUIRE(s->checkpoint());
  }
  REQUIRE(m->snapshot());
  CHECK(m->snapshot()->size() > (std::size_t{2} << 20));
  auto again = open_ok(m);
  CHECK(again->size() == 20000);
  CHECK(again->find("00000000-0000-4000-8000-000000019999"));
}
