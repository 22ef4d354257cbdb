// The client against a real thingsync-sim process over loopback sockets.
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <set>

#include "common.hpp"

using namespace thingsync;
using namespace thingsync::test;
using api::ErrorKind;

namespace {

const std::string kToken = "io-test-token-4f1c9a";

std::vector<core::RemoteBinding> list_everything(net::io_context& ioc, api::BindingsApi& api,
                                                 api::ListQuery q = {}) {
  auto r = run(ioc, api.list_all(std::move(q)));
  REQUIRE(r);
  return r->bindings;
}

net::awaitable<void> create_one(api::BindingsApi* api, int i, int* ok, int* adopted,
                                std::vector<std::string>* errors) {
  auto r = co_await api->create(imei(i), password(i));
  if (r) {
    ++*ok;
    if (r->adopted) ++*adopted;
  } else {
    errors->push_back(r.error().to_string());
  }
}

struct CreateTally {
  int ok = 0;
  int adopted = 0;
  std::vector<std::string> errors;
};

CreateTally create_many(net::io_context& ioc, api::BindingsApi& api, int first, int count) {
  CreateTally t;
  std::vector<net::awaitable<void>> tasks;
  for (int i = first; i < first + count; ++i) {
    tasks.push_back(create_one(&api, i, &t.ok, &t.adopted, &t.errors));
  }
  run(ioc, when_all(std::move(tasks)));
  return t;
}

net::awaitable<void> get_one(api::BindingsApi* api, std::string id, int* ok,
                             std::vector<std::string>* errors) {
  auto r = co_await api->get(std::move(id));
  if (r) {
    ++*ok;
  } else {
    errors->push_back(r.error().to_string());
  }
}

struct GetTally {
  int ok = 0;
  std::vector<std::string> errors;
};

// GETs every binding at once; the client's concurrency and rate limits do the pacing.
GetTally get_all(net::io_context& ioc, api::BindingsApi& api,
                 const std::vector<core::RemoteBinding>& bindings) {
  GetTally t;
  std::vector<net::awaitable<void>> tasks;
  for (const auto& b : bindings) tasks.push_back(get_one(&api, b.id, &t.ok, &t.errors));
  run(ioc, when_all(std::move(tasks)));
  return t;
}

// A sim with a static token and a request log, and a client for it.
struct LoggedSim {
  LoggedSim(std::vector<std::string> args, const std::function<void(api::ClientOptions&)>& tune)
      : sim([&] {
          args.insert(args.end(), {"--token", kToken, "--request-log", log_file().string()});
          return args;
        }()) {
    auto o = test_options(sim.url());
    tune(o);
    client = make_client(ioc, o, api::make_static_token_provider(core::Secret(kToken)));
    api = std::make_unique<api::BindingsApi>(*client);
  }
  std::filesystem::path log_file() const { return dir / "requests.jsonl"; }
  std::vector<nlohmann::json> log() const { return read_request_log(log_file()); }

  TempDir dir;
  Sim sim;
  net::io_context ioc;
  std::unique_ptr<api::ApiClient> client;
  std::unique_ptr<api::BindingsApi> api;
};

int count_path(const std::vector<nlohmann::json>& log, const std::string& path) {
  return static_cast<int>(std::count_if(log.begin(), log.end(), [&](const auto& l) {
    return l.at("path").template get<std::string>() == path;
  }));
}

int count_status(const std::vector<nlohmann::json>& log, int status) {
  return static_cast<int>(std::count_if(
      log.begin(), log.end(), [&](const auto& l) { return l.at("status").template get<int>() == status; }));
}

}  // namespace

TEST_CASE("list follows absolute and relative next links across many pages", "[api][io]") {
  LogCapture logs;
  for (const std::string form : {"absolute", "relative"}) {
    INFO(form);
    TempDir dir;
    Sim sim({"--token", kToken, "--seed", "250", "--page-size", "7", "--next-links", form,
             "--request-log", (dir / "requests.jsonl").string()});
    net::io_context ioc;
    auto client = make_client(ioc, test_options(sim.url()),
                              api::make_static_token_provider(core::Secret(kToken)));
    api::BindingsApi api(*client);
    auto r = run(ioc, api.list_all({}));
    REQUIRE(r);
    CHECK(r->bindings.size() == 250);
    CHECK(r->pages == 36);
    std::set<std::string> ids;
    for (const auto& b : r->bindings) ids.insert(b.id);
    CHECK(ids.size() == 250);
    const auto log = read_request_log(dir / "requests.jsonl");
    CHECK(count_path(log, "/mqtt/bindings") == 36);
    CHECK(client->stats().connections_opened == 1);  // keep-alive: one connection for all pages
  }
  check_no_secrets(logs, {kToken});
}

TEST_CASE("each list filter selects what the full list says it should", "[api][io]") {
  LogCapture logs;
  Sim sim({"--token", kToken, "--seed", "60", "--admin"});
  net::io_context ioc;
  auto client = make_client(ioc, test_options(sim.url()),
                            api::make_static_token_provider(core::Secret(kToken)));
  api::BindingsApi api(*client);
  const auto all = list_everything(ioc, api);
  REQUIRE(all.size() == 60);
  auto ids_of = [](const std::vector<core::RemoteBinding>& v) {
    std::set<std::string> s;
    for (const auto& b : v) s.insert(b.id);
    return s;
  };
  auto expect = [&](auto pred) {
    std::set<std::string> s;
    for (const auto& b : all) {
      if (pred(b)) s.insert(b.id);
    }
    return s;
  };

  SECTION("deviceId in another spelling, and username") {
    const auto it = std::find_if(all.begin(), all.end(), [](const auto& b) {
      return b.device.kind() != core::DeviceKind::kUuid;
    });
    REQUIRE(it != all.end());
    api::ListQuery q;
    q.device_id = it->device.urn();  // "urn:dev:IMEI:…:" for a binding listed as "imei:…"
    CHECK(ids_of(list_everything(ioc, api, q)) == std::set<std::string>{it->id});
    api::ListQuery u;
    u.username = it->device.urn();
    CHECK(ids_of(list_everything(ioc, api, u)) == std::set<std::string>{it->id});
  }
  SECTION("clientId") {
    const auto listing = sim.admin("GET", "/_sim/bindings");
    REQUIRE(listing.status == 200);
    const auto items = nlohmann::json::parse(listing.body).at("items");
    const auto client_id = items.at(0).at("clientId").get<std::string>();
    std::set<std::string> owned;
    for (const auto& b : items) {
      if (b.at("clientId") == client_id) owned.insert(b.at("id").get<std::string>());
    }
    api::ListQuery q;
    q.client_id = client_id;
    CHECK(ids_of(list_everything(ioc, api, q)) == owned);
    q.client_id = "5b6f5a3e-0000-4000-8000-000000000099";
    CHECK(list_everything(ioc, api, q).empty());
  }
  SECTION("created and modified, since inclusive and before exclusive") {
    std::vector<std::int64_t> created, modified;
    for (const auto& b : all) {
      created.push_back(b.created_at_ms);
      modified.push_back(b.modified_at_ms);
    }
    std::sort(created.begin(), created.end());
    std::sort(modified.begin(), modified.end());
    const auto c = created[created.size() / 2];
    const auto m = modified[modified.size() / 3];
    api::ListQuery q;
    q.created_since_ms = c;
    CHECK(ids_of(list_everything(ioc, api, q)) == expect([&](const auto& b) { return b.created_at_ms >= c; }));
    q = {};
    q.created_before_ms = c;
    CHECK(ids_of(list_everything(ioc, api, q)) == expect([&](const auto& b) { return b.created_at_ms < c; }));
    q = {};
    q.modified_since_ms = m;
    CHECK(ids_of(list_everything(ioc, api, q)) == expect([&](const auto& b) { return b.modified_at_ms >= m; }));
    q = {};
    q.modified_before_ms = m;
    CHECK(ids_of(list_everything(ioc, api, q)) == expect([&](const auto& b) { return b.modified_at_ms < m; }));
  }
  SECTION("sort and limit") {
    api::ListQuery q;
    q.sort = "-createdAt";
    q.limit = 13;
    auto r = run(ioc, api.list_all(q));
    REQUIRE(r);
    CHECK(r->pages == 5);
    CHECK(r->bindings.size() == 60);
    CHECK(std::is_sorted(r->bindings.begin(), r->bindings.end(), [](const auto& a, const auto& b) {
      return a.created_at_ms > b.created_at_ms;
    }));
  }
  check_no_secrets(logs, {kToken});
}

TEST_CASE("create get update delete round trip, a second delete is already done", "[api][io]") {
  LogCapture logs;
  Sim sim({"--token", kToken, "--duplicates", "reject"});  // the 409 path
  net::io_context ioc;
  auto client = make_client(ioc, test_options(sim.url()),
                            api::make_static_token_provider(core::Secret(kToken)));
  api::BindingsApi api(*client);
  auto created = run(ioc, api.create(imei(1), password(1)));
  REQUIRE(created);
  CHECK_FALSE(created->adopted);
  CHECK(created->binding.device == imei(1));
  const auto id = created->binding.id;
  auto got = run(ioc, api.get(id));
  REQUIRE(got);
  CHECK(got->device == imei(1));
  auto updated = run(ioc, api.update(id, imei(1), password(2)));
  REQUIRE(updated);
  CHECK(updated->modified_at_ms >= created->binding.modified_at_ms);
  auto again = run(ioc, api.create(imei(1), password(3)));  // 409: the existing one is adopted
  REQUIRE(again);
  CHECK(again->adopted);
  CHECK(again->binding.id == id);
  CHECK(run(ioc, api.remove(id)).value() == api::DeleteResult::kDeleted);
  CHECK(run(ioc, api.remove(id)).value() == api::DeleteResult::kAlreadyGone);
  auto gone = run(ioc, api.get(id));
  REQUIRE_FALSE(gone);
  CHECK(gone.error().status == 404);
  CHECK(gone.error().kind == ErrorKind::kClient);

  const core::Secret weak("weakpass");
  auto bad = run(ioc, api.create(imei(2), weak));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().status == 400);
  CHECK_FALSE(bad.error().transient());
  CHECK(bad.error().to_string().find(weak.reveal()) == std::string::npos);
  check_no_secrets(logs, {kToken, weak.reveal(), password(1).reveal(), password(2).reveal(),
                          password(3).reveal()});
}

TEST_CASE("a rotated token file is picked up without a 401", "[api][io]") {
  LogCapture logs;
  TempDir dir;
  Sim sim({"--oauth-client", "rot-client:rot-secret-8d2e", "--admin", "--request-log",
           (dir / "requests.jsonl").string()},
          "");
  auto fetch_token = [&] {
    const auto r = testsupport::http(sim.port(), "POST", "/oauth2/token",
                                     "grant_type=client_credentials&client_id=rot-client"
                                     "&client_secret=rot-secret-8d2e&audience=x",
                                     {{"Content-Type", "application/x-www-form-urlencoded"}});
    REQUIRE(r.status == 200);
    return nlohmann::json::parse(r.body).at("access_token").get<std::string>();
  };
  const auto file = dir / "api-token";
  write_file(file, fetch_token() + "\n");
  net::io_context ioc;
  auto client = make_client(ioc, test_options(sim.url()), api::make_token_file_provider(file));
  api::BindingsApi api(*client);
  REQUIRE(run(ioc, api.list_all({})));

  REQUIRE(sim.admin("POST", "/_sim/expire-tokens").status / 100 == 2);
  // Rotation the way credential managers do it: write a new file, rename it over the old one.
  write_file(dir / "api-token.new", fetch_token() + "\n");
  std::filesystem::rename(dir / "api-token.new", file);
  REQUIRE(run(ioc, api.list_all({})));
  CHECK(client->stats().unauthorized == 0);

  SECTION("an expired token that is not rotated fails after one retry") {
    REQUIRE(sim.admin("POST", "/_sim/expire-tokens").status / 100 == 2);
    auto r = run(ioc, api.list_all({}));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kUnauthorized);
    CHECK(client->stats().unauthorized == 2);  // the request and its one retry
  }
  check_no_secrets(logs, {"rot-secret-8d2e"});
}

TEST_CASE("a token file swapped for a FIFO keeps the last token and says so once", "[api][io]") {
  LogCapture logs;
  TempDir dir;
  const auto file = dir / "api-token";
  const std::string first = "first-token-of-the-fifo-test";
  write_file(file, first + "\n");
  auto provider = api::make_token_file_provider(file);
  const core::Secret* t = provider->ready_token();
  REQUIRE(t != nullptr);
  CHECK(t->reveal() == first);

  // A FIFO renamed over the file: reading it would block until a writer came.
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  std::filesystem::rename(dir / "fifo", file);
  for (int i = 0; i < 3; ++i) {
    t = provider->ready_token();
    REQUIRE(t != nullptr);
    CHECK(t->reveal() == first);
  }
  const std::string text = logs.text();
  const std::string said = "token file " + file.string() + " cannot be used";
  CHECK(text.find(said) != std::string::npos);
  CHECK(text.find(said) == text.rfind(said));  // once, not per request
  CHECK_THAT(text, Catch::Contains("FIFO"));

  // A token with a line break inside (it would start a header of its own) is not used either.
  std::filesystem::remove(file);
  write_file(file, "abc\r\nX-Injected: 1\n");
  t = provider->ready_token();
  REQUIRE(t != nullptr);
  CHECK(t->reveal() == first);
  CHECK_THAT(logs.text(), Catch::Contains("control character"));

  // A real token written again is taken up.
  std::filesystem::remove(file);
  write_file(file, "second-token-of-the-fifo-test\n");
  t = provider->ready_token();
  REQUIRE(t != nullptr);
  CHECK(t->reveal() == "second-token-of-the-fifo-test");
  check_no_secrets(logs, {first, "second-token-of-the-fifo-test"});
}

TEST_CASE("a 401 triggers exactly one token refresh and one retry", "[api][io]") {
  LogCapture logs;
  TempDir dir;
  const auto log_file = dir / "requests.jsonl";
  Sim sim({"--oauth-client", "id-401:secret-401-aa", "--admin", "--request-log", log_file.string()},
          "");
  net::io_context ioc;
  api::OAuth2Options oo;
  oo.token_url = sim.url() + "/oauth2/token";
  oo.client_id = "id-401";
  oo.client_secret = core::Secret("secret-401-aa");
  oo.audience = "things";
  auto client = make_client(ioc, test_options(sim.url()), api::make_oauth2_provider(ioc.get_executor(), oo));
  api::BindingsApi api(*client);
  REQUIRE(run(ioc, api.list_all({})));
  REQUIRE(sim.admin("POST", "/_sim/expire-tokens").status / 100 == 2);
  REQUIRE(run(ioc, api.list_all({})));
  CHECK(client->stats().unauthorized == 1);
  const auto log = read_request_log(log_file);
  CHECK(count_path(log, "/oauth2/token") == 2);
  CHECK(count_status(log, 401) == 1);
  check_no_secrets(logs, {"secret-401-aa"});
}

TEST_CASE("oauth2 tokens expiring every 2 s during a run fail no operation", "[api][io]") {
  LogCapture logs;
  TempDir dir;
  const auto log_file = dir / "requests.jsonl";
  Sim sim({"--oauth-client", "id-exp:secret-exp-bb", "--token-lifetime", "2s", "--request-log",
           log_file.string()},
          "");
  net::io_context ioc;
  api::OAuth2Options oo;
  oo.token_url = sim.url() + "/oauth2/token";
  oo.client_id = "id-exp";
  oo.audience = "things";
  oo.client_secret_file = dir / "client-secret";
  write_file(oo.client_secret_file, "secret-exp-bb\n");
  auto o = test_options(sim.url());
  o.rate_limit = 25;
  o.concurrency = 4;
  auto client = make_client(ioc, o, api::make_oauth2_provider(ioc.get_executor(), oo));
  api::BindingsApi api(*client);
  const auto t = create_many(ioc, api, 0, 130);  // ~5 s at 25/s: two token lifetimes and more
  CHECK(t.errors == std::vector<std::string>{});
  CHECK(t.ok == 130);
  const auto log = read_request_log(log_file);
  CHECK(count_path(log, "/oauth2/token") >= 3);
  check_no_secrets(logs, {"secret-exp-bb"});
}

TEST_CASE("a 429 pauses every request for its Retry-After", "[api][io]") {
  LogCapture logs;
  // Concurrency 4 and no client-side rate limit: the sim's 429s do the limiting.
  LoggedSim s({"--seed", "40", "--rate-limit", "10"}, [](auto& o) { o.concurrency = 4; });
  const auto all = list_everything(s.ioc, *s.api);
  REQUIRE(all.size() == 40);
  const auto gets = get_all(s.ioc, *s.api, all);
  CHECK(gets.errors.empty());
  CHECK(gets.ok == 40);
  CHECK(s.client->stats().rate_limited > 0);

  const auto log = s.log();
  int windows = 0;
  for (const auto& l : log) {
    if (l.at("status") != 429) continue;
    ++windows;
    const auto t = log_time_ms(l);
    // Requests already on the wire when the 429 left may land just after it; after that,
    // nothing until Retry-After (1 s) has passed.
    const auto inside = std::count_if(log.begin(), log.end(), [&](const auto& other) {
      const auto u = log_time_ms(other);
      return u > t + 50 && u < t + 950;
    });
    INFO("429 at " << l.at("time"));
    CHECK(inside == 0);
  }
  CHECK(windows > 0);
  check_no_secrets(logs, {kToken});
}

TEST_CASE("the client rate limit holds in every one-second window", "[api][io]") {
  LogCapture logs;
  LoggedSim s({"--seed", "100", "--rate-limit", "40"}, [](auto& o) {
    o.rate_limit = 30;
    o.burst = 3;
  });
  api::ListQuery q;
  q.limit = 1000;
  const auto all = list_everything(s.ioc, *s.api, q);
  REQUIRE(all.size() == 100);
  const auto gets = get_all(s.ioc, *s.api, all);
  CHECK(gets.ok == 100);
  CHECK(s.client->stats().rate_limited == 0);
  const auto log = s.log();
  CHECK(count_status(log, 429) == 0);
  long worst = 0;
  for (const auto& l : log) {
    const auto t = log_time_ms(l);
    worst = std::max<long>(worst, std::count_if(log.begin(), log.end(), [&](const auto& other) {
                             const auto u = log_time_ms(other);
                             return u >= t && u < t + 1000;
                           }));
  }
  CHECK(worst <= 30 + 3);
  check_no_secrets(logs, {kToken});
}

TEST_CASE("30 percent server errors still complete every operation", "[api][io]") {
  LogCapture logs;
  TempDir dir;
  const auto log_file = dir / "requests.jsonl";
  Sim sim({"--token", kToken, "--fail-rate", "0.3", "--random-seed", "11", "--request-log",
           log_file.string()});
  net::io_context ioc;
  auto o = test_options(sim.url());
  o.backoff = core::BackoffPolicy{5ms, 50ms, 15};
  auto client = make_client(ioc, o, api::make_static_token_provider(core::Secret(kToken)));
  api::BindingsApi api(*client);
  const auto t = create_many(ioc, api, 100, 24);
  CHECK(t.errors.empty());
  CHECK(t.ok == 24);
  const auto all = list_everything(ioc, api);
  CHECK(all.size() == 24);
  for (const auto& b : all) REQUIRE(run(ioc, api.remove(b.id)));
  const auto log = read_request_log(log_file);
  CHECK(count_status(log, 500) + count_status(log, 503) > 0);
  CHECK(count_status(log, 409) == 0);
  check_no_secrets(logs, {kToken, password(100).reveal()});
}

TEST_CASE("creates whose answer is dropped end with one binding per device and no 409",
          "[api][io]") {
  LogCapture logs;
  TempDir dir;
  const auto log_file = dir / "requests.jsonl";
  Sim sim({"--token", kToken, "--drop-after-create", "0.2", "--random-seed", "5",
           "--request-log", log_file.string()});
  net::io_context ioc;
  auto client = make_client(ioc, test_options(sim.url()),
                            api::make_static_token_provider(core::Secret(kToken)));
  api::BindingsApi api(*client);
  const auto t = create_many(ioc, api, 200, 50);
  CHECK(t.errors.empty());
  CHECK(t.ok == 50);
  CHECK(t.adopted > 0);
  const auto all = list_everything(ioc, api);
  CHECK(all.size() == 50);
  std::set<std::string> devices;
  for (const auto& b : all) devices.insert(b.device.canonical());
  CHECK(devices.size() == 50);
  const auto log = read_request_log(log_file);
  CHECK(count_status(log, 409) == 0);
  std::vector<std::string> secrets{kToken};
  for (int i = 200; i < 250; ++i) secrets.push_back(password(i).reveal());
  check_no_secrets(logs, secrets);
}

TEST_CASE("requests in flight never exceed the concurrency limit", "[api][io]") {
  LoggedSim s({"--seed", "24", "--latency", "20ms"}, [](auto& o) { o.concurrency = 3; });
  const auto all = list_everything(s.ioc, *s.api);
  const auto gets = get_all(s.ioc, *s.api, all);
  CHECK(gets.ok == 24);
  CHECK(s.client->stats().max_in_flight == 3);
  CHECK(s.client->stats().connections_opened == 3);
}

TEST_CASE("a client with nothing in flight leaves its io_context without work", "[api][io]") {
  // The timeouts of requests in flight share one timer; once none is in flight it must not
  // keep io_context::run() going until it expires (here 60 s).
  Sim sim({"--token", kToken, "--seed", "5"});
  net::io_context ioc;
  auto o = test_options(sim.url());
  o.http.timeout = 60s;
  auto client = make_client(ioc, o, api::make_static_token_provider(core::Secret(kToken)));
  api::BindingsApi api(*client);
  const auto all = list_everything(ioc, api);
  REQUIRE(all.size() == 5);
  int ok = 0;
  std::vector<std::string> errors;
  net::co_spawn(ioc, get_one(&api, all.front().id, &ok, &errors), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  const auto started = std::chrono::steady_clock::now();
  ioc.run();
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(ok == 1);
  CHECK(errors.empty());
}
