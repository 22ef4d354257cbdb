#include "thingsync/core/packed.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <unordered_set>

using thingsync::core::DeviceId;
using thingsync::core::pack_uuid;
using thingsync::core::PackedDevice;
using thingsync::core::PackedMillis;
using thingsync::core::PackedUuid;
using thingsync::core::PackedUuidTable;
using thingsync::core::unpack_uuid;

TEST_CASE("a lower-case UUID packs into 16 bytes and back", "[core][packed]") {
  const std::string id = "478a82d4-128f-47a6-aa61-2eac3f2a23ad";
  const auto p = pack_uuid(id);
  REQUIRE(p);
  CHECK((*p)[0] == 0x47);
  CHECK((*p)[15] == 0xad);
  CHECK(unpack_uuid(*p) == id);
  // Spellings that would not round-trip stay text.
  CHECK_FALSE(pack_uuid("478A82D4-128F-47A6-AA61-2EAC3F2A23AD"));
  CHECK_FALSE(pack_uuid("478a82d4128f47a6aa612eac3f2a23ad"));
  CHECK_FALSE(pack_uuid("478a82d4-128f-47a6-aa61-2eac3f2a23a"));
  CHECK_FALSE(pack_uuid("478a82d4-128f-47a6-aa61_2eac3f2a23ad"));
  CHECK_FALSE(pack_uuid("478a82d4-128f-47a6-aa61-2eac3f2a23ag"));
  // Packed ids sort as their spellings do.
  const auto a = pack_uuid("0fffffff-ffff-ffff-ffff-ffffffffffff");
  const auto b = pack_uuid("10000000-0000-0000-0000-000000000000");
  REQUIRE((a && b));
  CHECK(*a < *b);
}

TEST_CASE("a time in ms packs into 6 bytes and back, exactly, within 4,400 years of 1970",
          "[core][packed]") {
  static_assert(sizeof(PackedMillis) == 6);
  const std::int64_t samples[] = {0,
                                  -1,
                                  1,
                                  1764165600123,
                                  -62135596800000,  // 0001-01-01
                                  127000000000000,  // year 5994
                                  PackedMillis::kMax,
                                  PackedMillis::kMin,
                                  0x7fffffffff,
                                  -0x8000000000};
  for (const std::int64_t ms : samples) {
    INFO(ms);
    REQUIRE(PackedMillis::fits(ms));
    CHECK(PackedMillis(ms).get() == ms);
  }
  CHECK_FALSE(PackedMillis::fits(PackedMillis::kMax + 1));
  CHECK_FALSE(PackedMillis::fits(PackedMillis::kMin - 1));
  CHECK_FALSE(PackedMillis::fits(INT64_MAX));
  CHECK_FALSE(PackedMillis::fits(INT64_MIN));
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const auto ms = static_cast<std::int64_t>(rng()) >> 16;  // every 48-bit value
    CHECK(PackedMillis(ms).get() == ms);
  }
}

TEST_CASE("a packed device unpacks to the same device, for every kind", "[core][packed]") {
  for (const char* s :
       {"imei:350266800610993", "imei:3502668006109931", "imei:000000000000001",
        "imei:0000000000000000", "imei:9999999999999999", "imei:999999999999999",
        "urn:dev:DEVEUI:EA8FA35E2CF3489F:", "deveui:0000000000000000",
        "DVNUUID:ED8B73AC-F48F-4457-8CCC-9926CF28979F", "478A82D4-128F-47A6-AA61-2EAC3F2A23AD"}) {
    INFO(s);
    const auto id = DeviceId::parse(s);
    REQUIRE(id);
    const PackedDevice p(*id);
    CHECK(p.unpack() == *id);
    CHECK(p.unpack().canonical() == id->canonical());
    CHECK(p.holds(*id));
  }
  // IMEIs that differ only in leading zeros, and UUIDs that differ only in kind, stay apart.
  const auto i15 = DeviceId::parse("imei:012345678901234");
  const auto i16 = DeviceId::parse("imei:0012345678901234");
  const auto u = DeviceId::parse("ed8b73ac-f48f-4457-8ccc-9926cf28979f");
  const auto d = DeviceId::parse("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f");
  REQUIRE((i15 && i16 && u && d));
  CHECK_FALSE(PackedDevice(*i15) == PackedDevice(*i16));
  CHECK_FALSE(PackedDevice(*u) == PackedDevice(*d));
  CHECK_FALSE(PackedDevice(*u).holds(*d));
}

namespace {
struct Rec {
  PackedUuid id;
  int value;
};
}  // namespace

TEST_CASE("the packed-id table finds, replaces and erases as a map does", "[core][packed]") {
  std::mt19937_64 rng(7);
  PackedUuidTable<Rec> table;
  std::map<PackedUuid, int> model;
  // Few distinct ids, many operations: inserts over existing ids, erases of held and absent ids,
  // and long probe chains that backward-shift deletion must keep whole.
  std::vector<PackedUuid> ids(3000);
  for (auto& id : ids) {
    for (auto& byte : id) byte = static_cast<std::uint8_t>(rng());
  }
  for (int step = 0; step < 60000; ++step) {
    const PackedUuid& id = ids[rng() % ids.size()];
    const int op = static_cast<int>(rng() % 3);
    if (op < 2) {
      auto [at, added] = table.insert({id, step});
      CHECK(added == !model.contains(id));
      if (!added) at->value = step;
      model[id] = step;
    } else {
      int seen = -1;
      const bool erased = table.erase(id, [&](const Rec& r) { seen = r.value; });
      CHECK(erased == model.contains(id));
      if (erased) CHECK(seen == model[id]);
      model.erase(id);
    }
  }
  REQUIRE(table.size() == model.size());
  for (const auto& id : ids) {
    const Rec* r = table.find(id);
    const auto it = model.find(id);
    REQUIRE((r != nullptr) == (it != model.end()));
    if (r) CHECK(r->value == it->second);
  }
  std::size_t sum = 0;
  for (const auto& r : table.records()) sum += model.contains(r.id);
  CHECK(sum == model.size());
}

TEST_CASE("the packed-id table keeps every record findable as it grows and shrinks",
          "[core][packed]") {
  // Through every doubling up to 2^18 slots (load up to 0.8, long probe chains), then erases
  // that move records and shift chains, with ids that share most of their bytes.
  std::mt19937_64 rng(13);
  PackedUuidTable<Rec> table;
  std::vector<PackedUuid> ids(200'000);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i].fill(0x5a);
    for (std::size_t k = 0; k < 4; ++k) ids[i][12 + k] = static_cast<std::uint8_t>(i >> (8 * k));
    if (i % 2) ids[i][0] = static_cast<std::uint8_t>(rng());
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    REQUIRE(table.insert({ids[i], static_cast<int>(i)}).second);
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const Rec* r = table.find(ids[i]);
    REQUIRE(r != nullptr);
    REQUIRE(r->value == static_cast<int>(i));
  }
  for (std::size_t i = 0; i < ids.size(); i += 3) REQUIRE(table.erase(ids[i]));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const Rec* r = table.find(ids[i]);
    REQUIRE((r != nullptr) == (i % 3 != 0));
    if (r) REQUIRE(r->value == static_cast<int>(i));
  }
  CHECK(table.size() == ids.size() - (ids.size() + 2) / 3);
}

TEST_CASE("packed devices compare in the canonical order", "[core][packed]") {
  std::mt19937_64 rng(11);
  std::vector<DeviceId> ids;
  const auto hex = [&](std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s.push_back("0123456789abcdef"[rng() % 16]);
    return s;
  };
  const auto uuid = [&](const std::string& head) {
    return head + hex(8 - head.size()) + "-" + hex(4) + "-" + hex(4) + "-" + hex(4) + "-" + hex(12);
  };
  // UUIDs around where the prefixed kinds fall ("de", "df", "dv"...), IMEIs of 15 and 16 digits
  // that are prefixes of each other, and random ones.
  for (const char* head : {"", "d", "de", "df", "e0", "dd", "0", "f"}) {
    for (int i = 0; i < 20; ++i) ids.push_back(*DeviceId::parse(uuid(head)));
    for (int i = 0; i < 5; ++i) ids.push_back(*DeviceId::parse("dvnuuid:" + uuid(head)));
  }
  for (int i = 0; i < 40; ++i) {
    std::string d15;
    for (int k = 0; k < 15; ++k) d15.push_back(static_cast<char>('0' + rng() % (i < 20 ? 2 : 10)));
    ids.push_back(*DeviceId::parse("imei:" + d15));
    ids.push_back(*DeviceId::parse("imei:" + d15 + static_cast<char>('0' + rng() % 10)));
    ids.push_back(*DeviceId::parse("imei:" + d15.substr(0, 14) + "00"));
    ids.push_back(*DeviceId::parse("deveui:" + hex(16)));
  }
  for (const auto& a : ids) {
    for (const auto& b : ids) {
      INFO(a.canonical() << " vs " << b.canonical());
      REQUIRE(canonical_order(PackedDevice(a), PackedDevice(b)) == (a <=> b));
    }
  }
}

TEST_CASE("unpacking into a device ID replaces it whole", "[core][packed]") {
  auto target = *DeviceId::parse("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f");
  const auto imei = *DeviceId::parse("imei:012345678901234");
  PackedDevice(imei).unpack_into(target);
  CHECK(target == imei);
  CHECK(target.kind() == imei.kind());
  CHECK(target.urn() == "urn:dev:IMEI:012345678901234:");
}

TEST_CASE("equal packed devices hash alike, and a set of them finds exactly its members",
          "[core][packed]") {
  std::unordered_set<PackedDevice, thingsync::core::PackedDeviceHash> set;
  const auto a = *DeviceId::parse("imei:012345678901234");
  const auto b = *DeviceId::parse("imei:0012345678901234");
  const auto c = *DeviceId::parse("ed8b73ac-f48f-4457-8ccc-9926cf28979f");
  const auto d = *DeviceId::parse("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f");
  set.emplace(a);
  set.emplace(c);
  CHECK(PackedDevice(a).hash() == PackedDevice(*DeviceId::parse("IMEI:012345678901234")).hash());
  CHECK(set.contains(PackedDevice(a)));
  CHECK(set.contains(PackedDevice(c)));
  CHECK_FALSE(set.contains(PackedDevice(b)));
  CHECK_FALSE(set.contains(PackedDevice(d)));
}
