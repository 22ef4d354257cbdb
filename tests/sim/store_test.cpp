// The simulator's store against a plain model: random creates (some allowed as duplicates),
// updates that move bindings between devices, and deletes, checking every index after each.
#include <algorithm>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store.hpp"

using thingsync::core::DeviceId;
using thingsync::sim::BindingInput;
using thingsync::sim::Store;

namespace {

struct Model {
  std::string device;  // canonical
  std::int64_t created_at = 0;
};

std::string device_spelling(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "imei:35%013zu", i);
  return buf;
}

// A create/update input; it views `spelling`, which has to outlive it.
BindingInput input(const std::string& spelling) {
  return {spelling, *DeviceId::parse(spelling), std::nullopt, "principal/test",
          "00000000-0000-4000-8000-000000000001"};
}

// Ids of the device's bindings in the model, oldest first.
std::vector<std::string> model_device(const std::map<std::string, Model>& model,
                                      const std::string& canonical) {
  std::vector<std::pair<std::int64_t, std::string>> found;
  for (const auto& [id, m] : model) {
    if (m.device == canonical) found.emplace_back(m.created_at, id);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> ids;
  for (auto& f : found) ids.push_back(f.second);
  return ids;
}

}  // namespace

TEST_CASE("the store's indexes follow random creates, moves and deletes", "[sim][store]") {
  Store store(7);
  std::map<std::string, Model> model;
  std::mt19937 rng(42);
  constexpr std::size_t kDevices = 40;
  for (int step = 0; step < 6000; ++step) {
    const std::string spelling = device_spelling(rng() % kDevices);
    const std::string canonical = DeviceId::parse(spelling)->canonical();
    const bool allow_duplicate = rng() % 4 == 0;
    const auto holders = model_device(model, canonical);
    const auto op = rng() % 3;
    if (op == 0 || model.empty()) {
      const auto out = store.create(input(spelling), 1000, allow_duplicate);
      if (!allow_duplicate && !holders.empty()) {
        REQUIRE(out.conflict != nullptr);
        CHECK(out.conflict->id() == holders.front());
        CHECK(out.binding == nullptr);
      } else {
        REQUIRE(out.binding != nullptr);
        model[std::string(out.binding->id())] = {canonical, out.binding->created_at};
      }
    } else {
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng() % model.size()));
      const std::string id = it->first;
      if (op == 1) {
        const auto out = store.update(id, input(spelling), 1000, allow_duplicate);
        REQUIRE(out.has_value());
        std::vector<std::string> others = holders;
        std::erase(others, id);
        if (it->second.device != canonical && !allow_duplicate && !others.empty()) {
          REQUIRE(out->conflict != nullptr);
          CHECK(out->conflict->id() == others.front());
        } else {
          REQUIRE(out->binding != nullptr);
          CHECK(out->binding->id() == id);
          it->second.device = canonical;
        }
      } else {
        CHECK(store.erase(id));
        CHECK_FALSE(store.erase(id));
        model.erase(id);
      }
    }
    // Every index agrees with the model.
    REQUIRE(store.size() == model.size());
    for (const auto& [id, m] : model) {
      const auto* b = store.find(id);
      REQUIRE(b != nullptr);
      CHECK(b->device() == m.device);
    }
    for (std::size_t d = 0; d < kDevices; ++d) {
      const std::string c = DeviceId::parse(device_spelling(d))->canonical();
      std::vector<std::string> got;
      for (const auto* b : store.find_device(c)) got.push_back(std::string(b->id()));
      REQUIRE(got == model_device(model, c));
    }
    const auto all = store.all();
    REQUIRE(all.size() == model.size());
    CHECK(std::is_sorted(all.begin(), all.end(), [](const auto* a, const auto* b) {
      return std::pair(a->created_at, a->id()) < std::pair(b->created_at, b->id());
    }));
  }
  CHECK(store.find("00000000-0000-4000-8000-000000000000") == nullptr);
}

TEST_CASE("the store's cached JSON is what nlohmann::json writes", "[sim][store]") {
  Store store(1);
  // Plain strings are written by hand; a spelling that needs escaping takes the library's way.
  const auto plain = store.create(input("imei:350266800610993"), 1'756'767'600'123);
  REQUIRE(plain.binding != nullptr);
  CHECK(plain.binding->json() ==
        R"({"id":")" + std::string(plain.binding->id()) +
            R"(","deviceId":"imei:350266800610993","username":"urn:dev:IMEI:350266800610993:",)"
            R"("createdAt":"2025-09-01T23:00:00.123Z","createdBy":"principal/test",)"
            R"("modifiedAt":"2025-09-01T23:00:00.123Z","modifiedBy":"principal/test"})");
  const std::string spelling = "imei:350266800610994";  // the input only views it
  BindingInput odd = input(spelling);
  odd.principal = "principal/\"quoted\"\x01";
  const auto escaped = store.create(odd, 1'756'767'600'999);
  REQUIRE(escaped.binding != nullptr);
  CHECK(escaped.binding->json().find(R"("createdBy":"principal/\"quoted\"\u0001")") !=
        std::string::npos);
  CHECK(escaped.binding->json().find(R"("createdAt":"2025-09-01T23:00:00.999Z")") !=
        std::string::npos);
}

namespace {

// Ids in (createdAt, id) order, walking the default sort page by page.
std::vector<std::string> walk(const Store& store, bool backward) {
  thingsync::sim::ListQuery q;
  q.limit = 7;
  std::vector<std::string> ids;
  if (backward) {  // from past the end back to the start
    thingsync::sim::Cursor end;
    end.backward = true;
    end.created_at = std::numeric_limits<std::int64_t>::max();
    end.id = "ffffffff-ffff-4fff-bfff-ffffffffffff";
    q.cursor = end;
  }
  for (;;) {
    const auto page = store.list(q);
    std::vector<std::string> got;
    for (const auto* b : page.items) got.emplace_back(b->id());
    ids.insert(backward ? ids.begin() : ids.end(), got.begin(), got.end());
    const auto& next = backward ? page.prev : page.next;
    if (!next) break;
    q.cursor = next;
  }
  return ids;
}

void check_order(const Store& store, const std::map<std::string, std::int64_t>& model) {
  std::vector<std::pair<std::int64_t, std::string>> want;
  for (const auto& [id, created] : model) want.emplace_back(created, id);
  std::sort(want.begin(), want.end());
  std::vector<std::string> want_ids;
  for (auto& w : want) want_ids.push_back(w.second);
  std::vector<std::string> all;
  for (const auto* b : store.all()) all.emplace_back(b->id());
  REQUIRE(store.size() == model.size());
  CHECK(all == want_ids);
  CHECK(walk(store, false) == want_ids);
  CHECK(walk(store, true) == want_ids);
}

}  // namespace

TEST_CASE("the store keeps createdAt order through unsorted loads, seeds and mass deletes",
          "[sim][store]") {
  Store store(3);
  std::mt19937 rng(5);
  std::map<std::string, std::int64_t> model;  // id -> createdAt
  std::string file = R"({"format":"thingsync-sim/1","bindings":[)";
  for (int i = 0; i < 900; ++i) {
    std::string id = store.new_uuid();
    if (i == 899) id = model.begin()->first;  // a repeated id: the later entry wins
    const std::int64_t created = 1'000'000 + static_cast<std::int64_t>(rng() % 300);  // ties
    model[id] = created;
    char entry[320];
    std::snprintf(entry, sizeof entry,
                  R"(%s{"id":"%s","deviceId":"imei:35%013d","clientId":"c","password":null,)"
                  R"("createdAt":%lld,"modifiedAt":%lld,"createdBy":"p","modifiedBy":"p"})",
                  i ? "," : "", id.c_str(), i, static_cast<long long>(created),
                  static_cast<long long>(created));
    file += entry;
  }
  file += "]}";
  std::string error;
  REQUIRE(store.load(file, error));
  check_order(store, model);

  SECTION("deletes at the front, in the middle and at the back") {
    auto erase_where = [&](auto pick) {
      std::vector<std::string> ids;
      for (const auto* b : store.all()) ids.emplace_back(b->id());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (!pick(i, ids.size())) continue;
        REQUIRE(store.erase(ids[i]));
        model.erase(ids[i]);
      }
      check_order(store, model);
    };
    erase_where([](std::size_t i, std::size_t) { return i % 3 == 1; });  // some left in place
    erase_where([](std::size_t i, std::size_t) { return i < 100; });     // the oldest
    erase_where([](std::size_t i, std::size_t n) { return i + 50 >= n; });
    erase_where([](std::size_t i, std::size_t) { return i % 2 == 0; });
    const auto created = store.create(input("imei:350000000000001"), 2'000'000);
    REQUIRE(created.binding != nullptr);
    model[std::string(created.binding->id())] = created.binding->created_at;
    check_order(store, model);
    erase_where([](std::size_t, std::size_t) { return true; });
    CHECK(store.all().empty());
  }
  SECTION("a seed older than the loaded bindings goes before them") {
    store.seed(40, 1'000'100);
    for (const auto* b : store.all()) model.emplace(std::string(b->id()), b->created_at);
    check_order(store, model);
  }
}
