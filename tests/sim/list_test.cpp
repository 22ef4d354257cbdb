// GET /mqtt/bindings: cursor pagination, next/prev links, filters and sort.
#include <algorithm>
#include <chrono>
#include <set>

#include <catch2/catch.hpp>

#include "common.hpp"
#include "thingsync/core/time.hpp"

using nlohmann::json;
using simtest::kGoodPassword;
using simtest::Sim;

namespace {

std::vector<std::string> field(const std::vector<json>& items, const char* name) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.at(name).get<std::string>());
  return out;
}

void check_exactly_once(const std::vector<json>& items, std::size_t expected) {
  const auto ids = field(items, "id");
  CHECK(ids.size() == expected);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == expected);
}

std::string encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a full walk over absolute next links returns every binding exactly once",
          "[sim][list]") {
  Sim sim({"--seed", "237"});
  const auto first = sim.get("/mqtt/bindings?limit=10").json();
  REQUIRE(first.contains("next"));
  CHECK(first["next"].get<std::string>().rfind(
            "http://127.0.0.1:" + std::to_string(sim.port()) + "/mqtt/bindings?", 0) == 0);
  CHECK_FALSE(first.contains("prev"));
  int pages = 0;
  const auto items = sim.walk("/mqtt/bindings?limit=10", &pages);
  check_exactly_once(items, 237);
  CHECK(pages == 24);
}

TEST_CASE("a full walk over relative next links returns every binding exactly once",
          "[sim][list]") {
  Sim sim({"--seed", "101", "--next-links", "relative", "--page-size", "7"});
  const auto first = sim.get("/mqtt/bindings").json();
  CHECK(first["items"].size() == 7);
  CHECK(first["next"].get<std::string>().rfind("/mqtt/bindings?", 0) == 0);
  check_exactly_once(sim.walk("/mqtt/bindings"), 101);
}

TEST_CASE("the default page size is 50 and the last page has no next link", "[sim][list]") {
  Sim sim({"--seed", "60"});
  const auto first = sim.get("/mqtt/bindings").json();
  CHECK(first["items"].size() == 50);
  const auto next = first["next"].get<std::string>();
  const auto second = sim.get(next.substr(next.find("/mqtt/"))).json();
  CHECK(second["items"].size() == 10);
  CHECK_FALSE(second.contains("next"));
  CHECK(second.contains("prev"));
}

TEST_CASE("prev links lead back to the previous page", "[sim][list]") {
  Sim sim({"--seed", "30", "--next-links", "relative"});
  for (const char* sort : {"", "&sort=-modifiedAt", "&sort=deviceId"}) {
    INFO(sort);
    const auto p1 = sim.get(std::string("/mqtt/bindings?limit=10") + sort).json();
    const auto p2 = sim.get(p1["next"].get<std::string>()).json();
    const auto p3 = sim.get(p2["next"].get<std::string>()).json();
    const auto back2 = sim.get(p3["prev"].get<std::string>()).json();
    CHECK(back2["items"] == p2["items"]);
    const auto back1 = sim.get(back2["prev"].get<std::string>()).json();
    CHECK(back1["items"] == p1["items"]);
    CHECK_FALSE(back1.contains("prev"));
  }
}

TEST_CASE("a walk while bindings are created returns each old binding exactly once",
          "[sim][list]") {
  Sim sim({"--seed", "40", "--next-links", "relative"});
  auto page = sim.get("/mqtt/bindings?limit=7").json();
  std::vector<json> items(page["items"].begin(), page["items"].end());
  while (page.contains("next")) {
    REQUIRE(sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}}).status == 201);
    page = sim.get(page["next"].get<std::string>()).json();
    items.insert(items.end(), page["items"].begin(), page["items"].end());
  }
  const auto ids = field(items, "id");
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
  CHECK(ids.size() >= 40);
}

TEST_CASE("sort orders by createdAt ascending by default and descending with a minus",
          "[sim][list]") {
  Sim sim({"--seed", "25", "--next-links", "relative"});
  const auto asc = field(sim.walk("/mqtt/bindings?limit=4"), "createdAt");
  CHECK(std::is_sorted(asc.begin(), asc.end()));
  const auto desc = field(sim.walk("/mqtt/bindings?limit=4&sort=-createdAt"), "createdAt");
  CHECK(std::is_sorted(desc.rbegin(), desc.rend()));
  CHECK(desc.size() == 25);
}

TEST_CASE("sort=createdAt walks several pages in (createdAt, id) order, ties and stamped "
          "times included",
          "[sim][list]") {
  Sim sim({"--seed", "17", "--next-links", "relative", "--admin"});
  // Bindings the index does not get in time order: in the past, in the future, and four with
  // one createdAt (ties that fall across page boundaries, ordered by id).
  const std::vector<std::string> stamps = {
      "2001-01-01T00:00:00.000Z", "2040-01-01T00:00:00.000Z", "2020-05-05T05:05:05.555Z",
      "2020-05-05T05:05:05.555Z", "2020-05-05T05:05:05.555Z", "2020-05-05T05:05:05.555Z",
      "1999-12-31T23:59:59.999Z"};
  for (const auto& at : stamps) {
    REQUIRE(sim.admin("POST", "/_sim/bindings",
                      {{"deviceId", simtest::unique_imei()}, {"modifiedAt", at}})
                .status == 201);
  }
  REQUIRE(sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}}).status == 201);
  auto all = sim.admin("GET", "/_sim/bindings").json()["items"];
  REQUIRE(all.size() == 25);
  std::vector<std::pair<std::string, std::string>> expected;  // (createdAt, id)
  for (const auto& b : all) expected.emplace_back(b["createdAt"], b["id"]);
  std::sort(expected.begin(), expected.end());
  REQUIRE(expected.front().first == "1999-12-31T23:59:59.999Z");
  REQUIRE(std::count_if(expected.begin(), expected.end(), [](const auto& k) {
            return k.first == "2020-05-05T05:05:05.555Z";
          }) == 4);

  auto keys = [](const std::vector<json>& items) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& i : items) out.emplace_back(i["createdAt"], i["id"]);
    return out;
  };
  for (const int limit : {1, 2, 3, 4, 7, 24}) {
    INFO("limit " << limit);
    const std::string l = std::to_string(limit);
    int pages = 0;
    const auto asc = sim.walk("/mqtt/bindings?sort=createdAt&limit=" + l, &pages);
    CHECK(keys(asc) == expected);
    CHECK(pages == (25 + limit - 1) / limit);
    // The default sort is the same walk.
    CHECK(keys(sim.walk("/mqtt/bindings?limit=" + l)) == expected);
    auto desc = keys(sim.walk("/mqtt/bindings?sort=-createdAt&limit=" + l));
    std::reverse(desc.begin(), desc.end());
    CHECK(desc == expected);
  }
  // A filter narrows the walk, and the order holds.
  const auto since =
      sim.walk("/mqtt/bindings?sort=createdAt&limit=2&createdSince=2020-01-01T00:00:00Z");
  CHECK(keys(since).front().first == "2020-05-05T05:05:05.555Z");
  CHECK(keys(since).back().first == "2040-01-01T00:00:00.000Z");
  CHECK(since.size() == 23);
}

TEST_CASE("sort by several fields walks every binding in that order", "[sim][list]") {
  Sim sim({"--seed", "33", "--next-links", "relative"});
  const auto items = sim.walk("/mqtt/bindings?limit=5&sort=-modifiedAt,deviceId");
  REQUIRE(items.size() == 33);
  const auto mod = field(items, "modifiedAt");
  CHECK(std::is_sorted(mod.rbegin(), mod.rend()));
  const auto by_user = field(sim.walk("/mqtt/bindings?limit=6&sort=username"), "username");
  CHECK(by_user.size() == 33);
  CHECK(std::is_sorted(by_user.begin(), by_user.end()));
  const auto by_id = field(sim.walk("/mqtt/bindings?limit=6&sort=-id"), "id");
  CHECK(std::is_sorted(by_id.rbegin(), by_id.rend()));
}

TEST_CASE("an unknown or repeated sort field is 400", "[sim][list]") {
  Sim sim;
  for (const char* q : {"sort=name", "sort=createdAt,-name", "sort=createdAt,createdAt", "sort=",
                        "sort=createdAt,"}) {
    INFO(q);
    const auto r = sim.get(std::string("/mqtt/bindings?") + q);
    CHECK(r.status == 400);
    CHECK(r.header("content-type") == "application/problem+json");
  }
}

TEST_CASE("an unknown query parameter is 400", "[sim][list]") {
  Sim sim;
  for (const char* q : {"modifiedSnice=2025-01-01T00:00:00Z", "page=2", "limit=5&limit=6"}) {
    INFO(q);
    CHECK(sim.get(std::string("/mqtt/bindings?") + q).status == 400);
  }
}

TEST_CASE("limit outside 1 to 1000 is 400", "[sim][list]") {
  Sim sim({"--seed", "3"});
  for (const char* q : {"limit=0", "limit=1001", "limit=-1", "limit=ten", "limit=", "limit=5.5"}) {
    INFO(q);
    CHECK(sim.get(std::string("/mqtt/bindings?") + q).status == 400);
  }
  CHECK(sim.get("/mqtt/bindings?limit=1000").status == 200);
  CHECK(sim.get("/mqtt/bindings?limit=1").json()["items"].size() == 1);
}

TEST_CASE("a malformed date in a date filter is 400", "[sim][list]") {
  Sim sim;
  for (const char* q : {"modifiedSince=yesterday", "modifiedSince=2025-13-01T00:00:00Z",
                        "createdBefore=2025-05-01", "createdSince=", "modifiedBefore=12345"}) {
    INFO(q);
    CHECK(sim.get(std::string("/mqtt/bindings?") + q).status == 400);
  }
  CHECK(sim.get("/mqtt/bindings?modifiedSince=2025-05-01T00:00:00.5%2B02:00").status == 200);
}

TEST_CASE("a tampered cursor is 400", "[sim][list]") {
  Sim sim({"--seed", "5"});
  for (const char* c : {"garbage!", "Zm9vYmFy", "", "YzEfZh8"}) {
    INFO(c);
    CHECK(sim.get(std::string("/mqtt/bindings?cursor=") + c).status == 400);
  }
}

TEST_CASE("a cursor used with other filters or another sort is 400", "[sim][list]") {
  Sim sim({"--seed", "20", "--next-links", "relative"});
  const auto next = sim.get("/mqtt/bindings?limit=5").json()["next"].get<std::string>();
  const auto cursor = next.substr(next.find("cursor="), next.find('&', next.find("cursor=")) -
                                                            next.find("cursor="));
  CHECK(sim.get("/mqtt/bindings?" + cursor + "&limit=9").status == 200);
  CHECK(sim.get("/mqtt/bindings?" + cursor + "&sort=-createdAt").status == 400);
  CHECK(sim.get("/mqtt/bindings?" + cursor + "&modifiedSince=2020-01-01T00:00:00Z").status == 400);
}

TEST_CASE("the deviceId filter matches any spelling of the device", "[sim][list]") {
  Sim sim({"--seed", "10"});
  const auto id = sim.post("/mqtt/bindings", {{"deviceId", "imei:350266800610993"}}).json()["id"];
  for (const char* spelling : {"imei:350266800610993", "urn:dev:IMEI:350266800610993:",
                               "URN:DEV:imei:350266800610993"}) {
    INFO(spelling);
    const auto items = sim.get("/mqtt/bindings?deviceId=" + encode(spelling)).json()["items"];
    REQUIRE(items.size() == 1);
    CHECK(items[0]["id"] == id);
  }
  CHECK(sim.get("/mqtt/bindings?deviceId=imei:350266800610994").json()["items"].empty());
  CHECK(sim.get("/mqtt/bindings?deviceId=imei:123").status == 400);
}

TEST_CASE("the username filter matches the exact device URN", "[sim][list]") {
  Sim sim({"--seed", "10"});
  REQUIRE(sim.post("/mqtt/bindings", {{"deviceId", "deveui:ea8fa35e2cf3489f"}}).status == 201);
  const auto items =
      sim.get("/mqtt/bindings?username=" + encode("urn:dev:DEVEUI:ea8fa35e2cf3489f:")).json();
  REQUIRE(items["items"].size() == 1);
  CHECK(items["items"][0]["deviceId"] == "deveui:ea8fa35e2cf3489f");
  CHECK(sim.get("/mqtt/bindings?username=nobody").json()["items"].empty());
}

TEST_CASE("the clientId filter returns the bindings of that client's devices", "[sim][list]") {
  Sim sim({"--admin", "--client-id", "11111111-2222-4333-8444-555555555555"});
  REQUIRE(sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}}).status == 201);
  REQUIRE(sim.admin("POST", "/_sim/bindings",
                    {{"deviceId", simtest::unique_imei()},
                     {"clientId", "99999999-2222-4333-8444-555555555555"}})
              .status == 201);
  CHECK(sim.get("/mqtt/bindings?clientId=11111111-2222-4333-8444-555555555555").json()["items"].size() ==
        1);
  CHECK(sim.get("/mqtt/bindings?clientId=99999999-2222-4333-8444-555555555555").json()["items"].size() ==
        1);
  CHECK(sim.get("/mqtt/bindings").json()["items"].size() == 2);
  CHECK(sim.get("/mqtt/bindings?clientId=not-a-uuid").status == 400);
}

TEST_CASE("createdSince is inclusive and createdBefore exclusive", "[sim][list]") {
  Sim sim({"--seed", "12", "--next-links", "relative"});
  const auto all = sim.walk("/mqtt/bindings?limit=100");
  REQUIRE(all.size() == 12);
  const auto pivot = all[5]["createdAt"].get<std::string>();
  const auto since = sim.get("/mqtt/bindings?createdSince=" + pivot).json()["items"];
  REQUIRE(since.size() == 7);
  CHECK(since[0]["createdAt"] == pivot);
  const auto before = sim.get("/mqtt/bindings?createdBefore=" + pivot).json()["items"];
  CHECK(before.size() == 5);
}

TEST_CASE("modifiedSince is inclusive and shows updated bindings", "[sim][list]") {
  Sim sim({"--seed", "15"});
  const auto items = sim.get("/mqtt/bindings?limit=100").json()["items"];
  const auto id = items[3]["id"].get<std::string>();
  const auto updated =
      sim.put("/mqtt/bindings/" + id, {{"deviceId", items[3]["deviceId"]}, {"password", kGoodPassword}})
          .json();
  const auto mark = updated["modifiedAt"].get<std::string>();
  const auto since = sim.get("/mqtt/bindings?modifiedSince=" + mark).json()["items"];
  REQUIRE(since.size() == 1);
  CHECK(since[0]["id"] == id);
  const auto before = sim.get("/mqtt/bindings?limit=100&modifiedBefore=" + mark).json()["items"];
  CHECK(before.size() == 14);
}

TEST_CASE("modifiedSince, modifiedBefore and sort=modifiedAt hold with stamped times",
          "[sim][list]") {
  Sim sim({"--seed", "10", "--next-links", "relative", "--admin"});
  const auto items = sim.get("/mqtt/bindings?limit=100").json()["items"];
  REQUIRE(items.size() == 10);
  auto stamp = [&](const json& b, const std::string& at) {
    REQUIRE(sim.admin("PUT", "/_sim/bindings/" + b["id"].get<std::string>(),
                      {{"deviceId", b["deviceId"]}, {"modifiedAt", at}})
                .status == 200);
  };
  stamp(items[2], "2090-01-01T00:00:00.000Z");  // a node clock ahead
  stamp(items[7], "2000-01-01T00:00:00.000Z");  // a node clock behind
  // Changed after both stamps, by the API: its time lies between them.
  const auto later = sim.put("/mqtt/bindings/" + items[4]["id"].get<std::string>(),
                             {{"deviceId", items[4]["deviceId"]}})
                         .json();
  const auto mark = later["modifiedAt"].get<std::string>();

  auto ids = [&](const std::string& query) {
    std::set<std::string> out;
    for (const auto& i : sim.walk("/mqtt/bindings?limit=3&" + query)) out.insert(i["id"]);
    return out;
  };
  const auto id = [&](int i) { return items[static_cast<std::size_t>(i)]["id"].get<std::string>(); };
  CHECK(ids("modifiedSince=" + mark) == std::set<std::string>{id(4), id(2)});
  CHECK(ids("modifiedSince=2090-01-01T00:00:00.000Z") == std::set<std::string>{id(2)});
  CHECK(ids("modifiedSince=2090-01-01T00:00:00.001Z").empty());
  CHECK(ids("modifiedBefore=2000-01-01T00:00:00.001Z") == std::set<std::string>{id(7)});
  CHECK(ids("modifiedBefore=2000-01-01T00:00:00.000Z").empty());
  CHECK(ids("modifiedSince=2000-01-01T00:00:00Z&modifiedBefore=2000-01-01T00:00:01Z") ==
        std::set<std::string>{id(7)});

  const auto by_modified = sim.walk("/mqtt/bindings?limit=3&sort=modifiedAt");
  REQUIRE(by_modified.size() == 10);
  const auto mod = field(by_modified, "modifiedAt");
  CHECK(std::is_sorted(mod.begin(), mod.end()));
  CHECK(by_modified.front()["id"] == id(7));
  CHECK(by_modified.back()["id"] == id(2));
  const auto desc = sim.walk("/mqtt/bindings?limit=4&sort=-modifiedAt");
  REQUIRE(desc.size() == 10);
  CHECK(desc.front()["id"] == id(2));
  CHECK(desc[1]["id"] == id(4));
}

TEST_CASE("modifiedAt never goes back across quick changes, and stays with the wall clock",
          "[sim][list]") {
  Sim sim;
  std::vector<std::string> stamps;
  const auto before = std::chrono::system_clock::now();
  for (int i = 0; i < 200; ++i) {
    stamps.push_back(
        sim.post("/mqtt/bindings", {{"deviceId", simtest::unique_imei()}}).json()["modifiedAt"]);
  }
  const auto after = std::chrono::system_clock::now();
  CHECK(std::is_sorted(stamps.begin(), stamps.end()));
  // 200 changes in less than 200 ms share milliseconds rather than run ahead of the clock.
  const auto ms = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  };
  CHECK(*thingsync::core::parse_iso8601_ms(stamps.back()) <= ms(after));
  CHECK(*thingsync::core::parse_iso8601_ms(stamps.front()) >= ms(before) - 1);
}
