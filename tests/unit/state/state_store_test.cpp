#include "thingsync/state/state_store.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "test_support.hpp"

using thingsync::state::StateStore;
using namespace thingsync::state::test;
namespace fs = std::filesystem;

namespace {

// A state file as thingsync wrote it before fingerprints were cut to 8 bytes: binding "a" with
// the 16-byte fingerprint 01 x 8, ff x 8.
void write_version1_state(const fs::path& p) {
  std::ofstream(p) << R"({"format":"thingsync-state","version":1,"salt":")" +
                          std::string(64, 'a') +
                          R"(","bindings":{"a":{"device":"imei:350266800610993",)"
                          R"("fp":"0101010101010101ffffffffffffffff"}},"pending":[],"failures":{}})";
}

}  // namespace

TEST_CASE("a missing state file means first adoption with a fresh salt", "[state]") {
  TempDir t;
  auto s = open_ok(t.path() / "state.json");
  CHECK_FALSE(s->existed());
  CHECK(s->salt() == kSalt);
  CHECK(s->size() == 0);
  CHECK_FALSE(fs::exists(t.path() / "state.json"));  // opening alone writes nothing
}

TEST_CASE("applied records survive a checkpoint and reopen, sorted by binding id", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  {
    auto s = open_ok(p);
    s->record_applied("b-2", dev("imei:350266800610993"), fp(2), 0);
    s->record_applied("a-1", dev("deveui:ea8fa35e2cf3489f"), fp(1), 0);
    REQUIRE(s->checkpoint());
  }
  auto s = open_ok(p);
  CHECK(s->existed());
  CHECK(s->salt() == kSalt);
  const auto applied = s->applied();
  REQUIRE(applied.size() == 2);
  CHECK(applied[0].binding_id == "a-1");
  CHECK(applied[0].device == dev("deveui:ea8fa35e2cf3489f"));
  CHECK(applied[0].password_fp == fp(1));
  CHECK(applied[1].binding_id == "b-2");
}

TEST_CASE("the state file and its journal are mode 0600", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  auto s = open_ok(p);
  s->record_applied("x", dev("imei:350266800610993"), fp(1), 0);
  REQUIRE(s->flush());  // first flush writes the snapshot (salt first)
  s->record_applied("y", dev("imei:350266800610994"), fp(1), 0);
  REQUIRE(s->flush());  // then the journal
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((p.string() + ".journal").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("journal records flushed without a checkpoint are replayed on open", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  {
    auto s = open_ok(p);
    s->record_applied("keep", dev("imei:350266800610993"), fp(1), 0);
    REQUIRE(s->checkpoint());
    s->record_applied("new", dev("imei:350266800610994"), fp(3), 0);
    s->forget("keep");
    s->begin_create(dev("deveui:ea8fa35e2cf3489f"), 1000);
    s->begin_create(dev("deveui:ea8fa35e2cf3489e"), 1001);
    s->end_create(dev("deveui:ea8fa35e2cf3489e"));
    s->record_failure(dev("imei:350266800610995"), "400 Bad Request: password policy", 5000);
    REQUIRE(s->flush());
    // No checkpoint: as if the process were killed here.
  }
  auto s = open_ok(p);
  REQUIRE(s->size() == 1);
  CHECK(s->find("new"));
  CHECK_FALSE(s->find("keep"));
  const auto pending = s->pending();
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].device == dev("deveui:ea8fa35e2cf3489f"));
  CHECK(pending[0].since_ms == 1000);
  REQUIRE(s->failures().size() == 1);
  const auto& f = s->failures().at("imei:350266800610995");
  CHECK(f.failures == 1);
  CHECK(f.next_attempt_ms == 5000 + 30'000);
  CHECK(f.last_error == "400 Bad Request: password policy");
}

TEST_CASE("unflushed records are lost on a crash, flushed ones are not", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  {
    auto s = open_ok(p);
    s->record_applied("flushed", dev("imei:350266800610993"), fp(1), 0);
    REQUIRE(s->flush());
    s->record_applied("buffered", dev("imei:350266800610994"), fp(1), 0);
  }
  auto s = open_ok(p);
  CHECK(s->find("flushed"));
  CHECK_FALSE(s->find("buffered"));
}

TEST_CASE("a torn last journal line is dropped and repaired before the next append", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  {
    auto s = open_ok(p);
    s->record_applied("a", dev("imei:350266800610993"), fp(1), 0);
    REQUIRE(s->checkpoint());
    s->record_applied("b", dev("imei:350266800610994"), fp(1), 0);
    REQUIRE(s->flush());
  }
  {
    std::ofstream j(p.string() + ".journal", std::ios::app);
    j << R"({"a":"applied","id":"c","dev)";  // the crash cut this write short
  }
  {
    auto s = open_ok(p);
    CHECK(s->size() == 2);
    s->record_applied("d", dev("imei:350266800610996"), fp(1), 0);
    REQUIRE(s->flush());
  }
  auto s = open_ok(p);
  CHECK(s->size() == 3);
  CHECK(s->find("d"));
}

TEST_CASE("a corrupt state file is an error that says how to recover", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  SECTION("not json") { std::ofstream(p) << "{\"format\": \"thingsync-state\", \"bindings\": {"; }
  SECTION("another program's json") { std::ofstream(p) << R"({"hello": "world"})"; }
  SECTION("a bad fingerprint") {
    std::ofstream(p) << R"({"format":"thingsync-state","version":1,"salt":")" +
                            std::string(64, 'a') +
                            R"(","bindings":{"x":{"device":"imei:350266800610993","fp":"zz"}},)"
                            R"("pending":[],"failures":{}})";
  }
  const auto before = read(p);
  auto r = StateStore::open(p, kSalt);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains(p.string()) && Catch::Contains("corrupt") &&
                                    Catch::Contains("move it aside"));
  CHECK(read(p) == before);  // never silently discarded
}

TEST_CASE("a version 1 state file and journal load, their fingerprints cut to 8 bytes",
          "[state]") {
  // Version 1 stored 16-byte fingerprints, whose first 8 bytes are today's: an upgrade must not
  // make every binding look changed (a PUT for each of them).
  TempDir t;
  const auto p = t.path() / "state.json";
  write_version1_state(p);
  std::ofstream(p.string() + ".journal")
      << R"({"a":"applied","id":"b","device":"imei:3502668006109931","fp":"02020202020202020000000000000000"})"
      << "\n";
  auto s = open_ok(p);
  REQUIRE(s->find("a"));
  CHECK(s->find("a")->password_fp == fp(1));
  REQUIRE(s->find("b"));
  CHECK(s->find("b")->password_fp == fp(2));
  REQUIRE(s->checkpoint());
  const auto text = read(p);
  CHECK_THAT(text, Catch::Contains(R"("version":4)") &&
                       Catch::Contains(R"("fp":"0101010101010101")") &&
                       Catch::Contains(R"("fp":"0202020202020202")"));
}

TEST_CASE("a state file of a newer version is refused, not rewritten", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  // Its bindings may be in a form this version cannot read: still "newer", never "corrupt".
  const std::string bindings = GENERATE(
      std::string("{}"),
      std::string(R"({"0e3f5b0c-0000-4000-8000-000000000001":{"device":"imei:350266800610993",)"
                  R"("fp":"sha256:00","receipt":0}})"));
  std::ofstream(p) << R"({"format":"thingsync-state","version":5,"salt":")" +
                          std::string(64, 'a') + R"(","bindings":)" + bindings +
                          R"(,"pending":[],"failures":{}})";
  const auto before = read(p);
  auto r = StateStore::open(p, kSalt);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("newer thingsync (state version 5") &&
                                    Catch::Contains("Do not move the file aside"));
  CHECK(read(p) == before);
}

TEST_CASE("a version 1 snapshot is rewritten before the first journal append", "[state]") {
  // Otherwise a crash would leave version 4 journal lines behind a version 1 snapshot, which
  // the thingsync that wrote version 1 cannot read.
  TempDir t;
  const auto p = t.path() / "state.json";
  write_version1_state(p);
  {
    auto s = open_ok(p);
    CHECK_THAT(read(p), Catch::Contains(R"("version":1)"));  // opening alone writes nothing
    s->record_applied("b", dev("imei:3502668006109931"), fp(2), 0);
    REQUIRE(s->flush());
    CHECK_THAT(read(p), Catch::Contains(R"("version":4)") &&
                            Catch::Contains(R"("fp":"0101010101010101")"));
    s->record_applied("c", dev("deveui:ea8fa35e2cf3489f"), fp(3), 0);
    REQUIRE(s->flush());  // now appended to the journal
  }  // no checkpoint: a crash here
  auto s = open_ok(p);
  CHECK(s->size() == 3);
  REQUIRE(s->find("c"));
  CHECK(s->find("c")->password_fp == fp(3));
}

TEST_CASE("a corrupt line in the middle of the journal is an error", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  {
    auto s = open_ok(p);
    s->record_applied("a", dev("imei:350266800610993"), fp(1), 0);
    REQUIRE(s->checkpoint());
  }
  std::ofstream(p.string() + ".journal") << "garbage\n"
                                         << R"({"a":"forget","id":"a"})" << "\n";
  auto r = StateStore::open(p, kSalt);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("line 1"));
}

TEST_CASE("failure backoff doubles and is capped", "[state]") {
  TempDir t;
  auto s = open_ok(t.path() / "state.json");
  const auto d = dev("imei:350266800610993");
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 10; ++i) {
    s->record_failure(d, "500", 0, 1000, 16000);
    delays.push_back(s->failures().at(d.canonical()).next_attempt_ms);
  }
  CHECK(delays == std::vector<std::int64_t>{1000, 2000, 4000, 8000, 16000, 16000, 16000, 16000,
                                            16000, 16000});
  s->clear_failure(d);
  CHECK(s->failures().empty());
}

TEST_CASE("retain_only forgets bindings that no longer exist remotely", "[state]") {
  TempDir t;
  auto s = open_ok(t.path() / "state.json");
  s->record_applied("a", dev("imei:350266800610993"), fp(1), 0);
  s->record_applied("b", dev("imei:350266800610994"), fp(1), 0);
  s->retain_only({"b", "zzz"});
  CHECK(s->size() == 1);
  CHECK(s->find("b"));
}

TEST_CASE("the state file never holds anything but fingerprints", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  auto s = open_ok(p);
  s->record_applied("a", dev("imei:350266800610993"), fp(0xab), 0);
  REQUIRE(s->checkpoint());
  const auto text = read(p);
  CHECK_THAT(text, Catch::Contains(R"("fp":"abababababababab")"));
  CHECK_THAT(text, Catch::Contains("\"format\":\"thingsync-state\""));
}

TEST_CASE("a tombstone whose time is text is a corrupt state, never a time of 0", "[state]") {
  TempDir t;
  const auto p = t.path() / "state.json";
  std::ofstream(p) << R"({"format":"thingsync-state","version":4,"salt":")" + std::string(64, 'a') +
                          R"(","bindings":{},"pending":[],"failures":{},"tombstones":{)"
                          R"("0f8c6b7e-1d2a-4c3b-9e4f-5a6b7c8d9e01":{"device":"imei:350266800610993",)"
                          R"("since":"yesterday","confirmed":1}},"approvals":{}})";
  auto r = StateStore::open(p, kSalt);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("is corrupt") && Catch::Contains("'since'"));
}
