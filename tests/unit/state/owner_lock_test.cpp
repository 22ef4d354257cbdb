// The state belongs to one API, and has one writer.
#include "thingsync/state/writer_lock.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "test_support.hpp"
#include "thingsync/state/medium.hpp"

using namespace thingsync::state;
using namespace thingsync::state::test;

TEST_CASE("a state takes the first API that claims it and refuses another", "[state]") {
  auto medium = std::make_shared<MemoryMedium>();
  {
    auto s = StateStore::open(medium, kSalt);
    REQUIRE(s);
    REQUIRE((*s)->claim("https://api.example/", "c1"));  // a trailing slash does not count
    (*s)->record_applied("00000000-0000-4000-8000-000000000001", dev("imei:350266800610993"),
                         fp(1), 5);
    REQUIRE((*s)->flush());  // the first flush of a claimed state writes a snapshot
  }
  REQUIRE(medium->snapshot());
  CHECK(medium->snapshot()->find("\"api\":\"https://api.example\"") != std::string::npos);
  auto s = StateStore::open(medium, kSalt);
  REQUIRE(s);
  CHECK((*s)->claim("https://api.example", "c1"));
  const auto other_api = (*s)->claim("https://other.example", "c1");
  REQUIRE_FALSE(other_api);
  CHECK(other_api.error().message.find("belongs to https://api.example scope c1") !=
        std::string::npos);
  CHECK(other_api.error().message.find("mv ") != std::string::npos);
  CHECK_FALSE((*s)->claim("https://api.example", ""));  // another scope
}

TEST_CASE("a state of an older version takes the API that claims it", "[state]") {
  auto medium = std::make_shared<MemoryMedium>();
  REQUIRE(medium->replace_snapshot(
      R"({"format":"thingsync-state","version":2,"salt":")" + std::string(32, 'a') +
      R"(","bindings":{},"pending":[],"failures":{}})"));
  auto s = StateStore::open(medium, kSalt);
  REQUIRE(s);
  CHECK((*s)->claim("http://127.0.0.1:8080", ""));
  REQUIRE((*s)->checkpoint());
  CHECK(medium->snapshot()->find("\"api\":\"http://127.0.0.1:8080\",\"scope\":\"\"") !=
        std::string::npos);
}

TEST_CASE("the writer lock: one holder, named to the next, released at the end", "[state]") {
  TempDir dir;
  const auto state = dir.path() / "state.json";
  auto first = WriterLock::acquire(state, "thingsync run");
  REQUIRE(first);
  CHECK(read(dir.path() / "state.json.lock").find("pid=" + std::to_string(::getpid())) == 0);
  // flock is per open file: a second acquire in this process conflicts like another process.
  auto second = WriterLock::acquire(state, "thingsync apply");
  REQUIRE_FALSE(second);
  CHECK(second.error().busy);
  CHECK(second.error().message.find("in use by another thingsync (pid=" +
                                    std::to_string(::getpid()) + " command=thingsync run") !=
        std::string::npos);
  first.value().reset();
  CHECK(WriterLock::acquire(state, "thingsync apply"));
}

TEST_CASE("the writer lock in a missing directory is an error naming it, not busy", "[state]") {
  TempDir dir;
  auto lock = WriterLock::acquire(dir.path() / "missing" / "state.json", "thingsync apply");
  REQUIRE_FALSE(lock);
  CHECK_FALSE(lock.error().busy);
  CHECK(lock.error().message.find((dir.path() / "missing" / "state.json.lock").string()) !=
        std::string::npos);
}

TEST_CASE("an API spelled otherwise is the same API", "[state]") {
  auto s = StateStore::open(std::make_shared<MemoryMedium>(), kSalt);
  REQUIRE(s);
  REQUIRE((*s)->claim("https://api.kpnthings.com", ""));
  CHECK((*s)->claim("HTTPS://API.kpnthings.com:443/", ""));
  CHECK((*s)->claim("https://api.kpnthings.com/", ""));
  CHECK_FALSE((*s)->claim("https://api.kpnthings.com:8443", ""));
  CHECK_FALSE((*s)->claim("http://api.kpnthings.com", ""));
}

TEST_CASE("a lock whose file was deleted or replaced is no longer held", "[state]") {
  TempDir dir;
  const auto state = dir.path() / "state.json";
  auto lock = WriterLock::acquire(state, "thingsync run");
  REQUIRE(lock);
  CHECK((*lock)->still_held());
  std::filesystem::remove(dir.path() / "state.json.lock");
  CHECK_FALSE((*lock)->still_held());
  // Someone else locks the file that is there now; the first holder can no longer.
  auto intruder = WriterLock::acquire(state, "thingsync run");
  REQUIRE(intruder);
  CHECK((*intruder)->still_held());
  CHECK_FALSE((*lock)->still_held());
}

TEST_CASE("a state path through a symbolic link shares the lock of the file it names",
          "[state]") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "other");
  {
    std::ofstream(dir.path() / "state.json") << "";
  }
  std::filesystem::create_symlink("../state.json", dir.path() / "other" / "state.json");
  auto first = WriterLock::acquire(dir.path() / "state.json", "thingsync run");
  REQUIRE(first);
  auto second = WriterLock::acquire(dir.path() / "other" / "state.json", "thingsync apply");
  REQUIRE_FALSE(second);
  CHECK(second.error().busy);
}
