// The client against in-test servers that misbehave in ways the simulator does not, plus TLS
// and CONNECT proxy runs against the simulator.
#include <cstdlib>

#include "common.hpp"

using namespace thingsync;
using namespace thingsync::test;
using api::ErrorKind;

namespace {

const std::string kToken = "local-test-token-77c1";

std::shared_ptr<api::TokenProvider> token() {
  return api::make_static_token_provider(core::Secret(kToken));
}

std::string page_json(const std::string& items, const std::string& next = {}) {
  return "{\"items\":[" + items + "]" + (next.empty() ? "" : ",\"next\":\"" + next + "\"") + "}";
}

const std::string kItemId = "224ecc46-291d-482b-993f-c8b508adb0da";
const std::string kItem =
    R"({"id":"224ecc46-291d-482b-993f-c8b508adb0da","deviceId":"imei:350266800610993",)"
    R"("createdAt":"2025-09-01T23:00:00.000Z","modifiedAt":"2025-09-01T23:00:00.000Z"})";

using Clock = std::chrono::steady_clock;

struct Timed {
  std::optional<core::Result<core::RemoteBinding, api::ApiError>> result;
  Clock::duration took{};
};

// One GET, started `after` from now; its result and how long it took from its start.
net::awaitable<void> timed_get(api::BindingsApi* api, std::string id, Clock::duration after,
                               Timed* out) {
  net::steady_timer wait(co_await net::this_coro::executor, after);
  co_await wait.async_wait(net::use_awaitable);
  const auto started = Clock::now();
  out->result = co_await api->get(std::move(id));
  out->took = Clock::now() - started;
}

// GETs one after another until `*stop` is set; counts the answers.
net::awaitable<void> get_until(api::BindingsApi* api, std::string id, const bool* stop, int* ok,
                               int* failed) {
  while (!*stop) {
    auto r = co_await api->get(id);
    ++(r ? *ok : *failed);
  }
}

// One GET; counts the answer.
net::awaitable<void> get_once(api::BindingsApi* api, std::string id, int* ok, int* failed) {
  auto r = co_await api->get(std::move(id));
  ++(r ? *ok : *failed);
}

// Sets `*flag` after `after`.
net::awaitable<void> set_after(Clock::duration after, bool* flag) {
  net::steady_timer wait(co_await net::this_coro::executor, after);
  co_await wait.async_wait(net::use_awaitable);
  *flag = true;
}

}  // namespace

TEST_CASE("a next link to another origin is refused and that origin receives nothing",
          "[api][io]") {
  LogCapture logs;
  net::io_context ioc;
  CannedServer foreign(ioc, [](const std::string&) {
    return CannedReply{http_response(200, page_json(""))};
  });
  const std::string foreign_next = foreign.url() + "/mqtt/bindings?cursor=steal";
  CannedServer server(ioc, [&](const std::string&) {
    return CannedReply{http_response(200, page_json(kItem, foreign_next))};
  });
  auto client = make_client(ioc, test_options(server.url()), token());
  api::BindingsApi api(*client);
  auto r = run(ioc, api.list_all({}));
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::kProtocol);
  CHECK(r.error().title == "next link points to another origin");
  CHECK(server.requests() == 1);
  CHECK(foreign.connections() == 0);
  check_no_secrets(logs, {kToken});
}

TEST_CASE("a server that accepts and never answers times out within api.timeout", "[api][io]") {
  net::io_context ioc;
  CannedServer silent(ioc, [](const std::string&) { return CannedReply{{}, false, true}; });
  auto o = test_options(silent.url());
  o.http.timeout = 300ms;
  o.backoff.max_attempts = 2;
  auto client = make_client(ioc, o, token());
  api::BindingsApi api(*client);
  const auto started = std::chrono::steady_clock::now();
  auto r = run(ioc, api.get("224ecc46-291d-482b-993f-c8b508adb0da"));
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::kTimeout);
  CHECK(r.error().detail.find("no complete answer within 300ms") != std::string::npos);
  CHECK(silent.requests() == 2);
  // Two attempts of 300 ms each plus at most one 5 ms backoff; generous slack for slow CI.
  CHECK(took >= 600ms);
  CHECK(took < 600ms + 1500ms);
}

TEST_CASE("an invalid or truncated JSON page is a clear error, not a crash", "[api][io]") {
  net::io_context ioc;
  SECTION("invalid JSON") {
    CannedServer server(ioc, [](const std::string&) {
      return CannedReply{http_response(200, R"({"items":[{"id":"a","deviceId":)")};
    });
    auto client = make_client(ioc, test_options(server.url()), token());
    api::BindingsApi api(*client);
    auto r = run(ioc, api.list_all({}));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kProtocol);
    CHECK(r.error().to_string() ==
          "200 protocol error: page is not valid JSON — page 1 of /mqtt/bindings: 31 bytes");
  }
  SECTION("body shorter than Content-Length, then the connection closes") {
    CannedServer server(ioc, [](const std::string&) {
      auto raw = http_response(200, page_json(kItem));
      raw.resize(raw.size() - 20);
      return CannedReply{raw, true};
    });
    auto o = test_options(server.url());
    o.backoff.max_attempts = 3;
    auto client = make_client(ioc, o, token());
    api::BindingsApi api(*client);
    auto r = run(ioc, api.list_all({}));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kTransport);
    CHECK(r.error().detail.find("gave up after 3 attempts") != std::string::npos);
    CHECK(server.requests() == 3);
  }
}

TEST_CASE("a response above the size cap fails without reading it", "[api][io]") {
  LogCapture logs;
  net::io_context ioc;
  CannedServer server(ioc, [](const std::string&) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(10 * 1024 * 1024) + "\r\n\r\n{\"items\":[";
    return CannedReply{head, false};
  });
  auto client = make_client(ioc, test_options(server.url()), token());
  api::BindingsApi api(*client);
  auto r = run(ioc, api.list_all({}));
  REQUIRE_FALSE(r);
  INFO(logs.text());
  CHECK(r.error().kind == ErrorKind::kProtocol);
  CHECK(r.error().title == "response too large");
  CHECK(server.requests() == 1);  // permanent: not retried
}

TEST_CASE("a create whose connection drops is looked up before anything is re-sent",
          "[api][io]") {
  LogCapture logs;
  net::io_context ioc;
  int posts = 0;
  CannedServer server(ioc, [&](const std::string& head) {
    if (head.rfind("POST ", 0) == 0) {
      ++posts;
      return CannedReply{{}, true};  // read the request, close without an answer
    }
    REQUIRE(head.find("deviceId=imei%3A350266800610993") != std::string::npos);
    return CannedReply{http_response(200, page_json(kItem))};
  });
  auto client = make_client(ioc, test_options(server.url()), token());
  api::BindingsApi api(*client);
  const core::Secret pw("Pw-local-Xy9!Correct-Horse-Battery");
  auto r = run(ioc, api.create(*core::DeviceId::parse("imei:350266800610993"), pw));
  REQUIRE(r);
  CHECK(r->adopted);
  CHECK(r->binding.id == "224ecc46-291d-482b-993f-c8b508adb0da");
  CHECK(posts == 1);
  check_no_secrets(logs, {kToken, pw.reveal()});
}

TEST_CASE("a 503 with an HTTP-date Retry-After is retried after the pause", "[api][io]") {
  net::io_context ioc;
  int calls = 0;
  CannedServer server(ioc, [&](const std::string&) {
    if (++calls == 1) {
      return CannedReply{http_response(503, R"({"title":"Service Unavailable"})",
                                       "application/problem+json",
                                       "Retry-After: Thu, 01 Jan 1970 00:00:00 GMT\r\n")};
    }
    return CannedReply{http_response(200, page_json(kItem))};
  });
  auto client = make_client(ioc, test_options(server.url()), token());
  api::BindingsApi api(*client);
  auto r = run(ioc, api.list_all({}));
  REQUIRE(r);
  CHECK(r->bindings.size() == 1);
  CHECK(client->stats().rate_limited == 1);
  CHECK(calls == 2);
}

// sync.rateLimit: auto against a server whose first `refused` requests answer 429 (with
// `retry_after` as its Retry-After header, when set); `gets` GETs at once. The policy starts
// at 1000/s with a burst of 8, so that the first 8 requests are all on their way before the
// first answer comes back.
struct AdaptiveRun {
  api::TrafficStats stats;
  double rate = 0;
  std::vector<double> rates;  // what on_rate reported, in order
  int ok = 0;
  std::string log;
};
AdaptiveRun adaptive_run(int refused, const std::string& retry_after, int gets) {
  LogCapture logs;
  net::io_context ioc;
  int seen = 0;
  // The refused requests are answered only once all of them have arrived: they were all on
  // their way before the first 429 came back, however slowly (a sanitizer build) they went.
  const auto gate = std::make_shared<ReplyGate>(ioc);
  CannedServer server(ioc, [&](const std::string&) {
    if (++seen <= refused) {
      const std::string header = retry_after.empty() ? "" : "Retry-After: " + retry_after + "\r\n";
      CannedReply reply{http_response(429, R"({"title":"Too Many Requests"})",
                                      "application/problem+json", header)};
      reply.gate = gate;
      if (seen == refused) gate->open();
      return reply;
    }
    return CannedReply{http_response(200, kItem)};
  });
  AdaptiveRun out;
  auto o = test_options(server.url());
  core::AdaptiveRatePolicy p;
  p.max = 5000;
  p.initial = 1000;
  o.adaptive = p;
  o.burst = 8;
  o.on_rate = [&out](double r) { out.rates.push_back(r); };
  auto client = make_client(ioc, o, token());
  api::BindingsApi api(*client);
  std::vector<net::awaitable<void>> tasks;
  int failed = 0;
  for (int i = 0; i < gets; ++i) tasks.push_back(get_once(&api, kItemId, &out.ok, &failed));
  run(ioc, when_all(std::move(tasks)));
  CHECK(failed == 0);  // every call got its answer in the end
  CHECK(out.ok == gets);
  out.stats = client->stats();
  out.rate = client->rate();
  out.log = logs.text();
  check_no_secrets(logs, {kToken});
  return out;
}

TEST_CASE("rateLimit auto: a 429 without Retry-After cuts the rate and pauses no other call",
          "[api][io]") {
  const auto r = adaptive_run(1, "", 8);
  CHECK(r.stats.rate_limited == 1);
  CHECK(r.stats.rate_cuts == 1);
  REQUIRE_FALSE(r.rates.empty());
  CHECK(r.rates.front() == 1000);             // reported at the start
  CHECK(r.rate < 600);                         // cut to half, then a few clean answers
  CHECK(r.log.find("cutting the rate") != std::string::npos);
  CHECK(r.log.find("pausing all requests") == std::string::npos);
}

TEST_CASE("rateLimit auto: a 429 with Retry-After pauses every call and also cuts the rate",
          "[api][io]") {
  const auto r = adaptive_run(1, "1", 3);
  CHECK(r.stats.rate_cuts == 1);
  CHECK(r.rate < 600);
  CHECK(r.log.find("pausing all requests ms=1000") != std::string::npos);
}

TEST_CASE("rateLimit auto: 429s to the 8 requests in flight at the first one are one cut",
          "[api][io]") {
  const auto r = adaptive_run(8, "", 16);
  CHECK(r.stats.rate_limited == 8);
  CHECK(r.stats.rate_cuts == 1);
  // One cut to half. The clean answers after it add a fifth of the gap to the cut point a
  // second, spread over the answers of a second: 0.2/s each.
  CHECK(r.rate >= 500);
  CHECK(r.rate < 520);
}

TEST_CASE("HTTPS verifies the server against the configured CA", "[api][io]") {
  LogCapture logs;
  TempDir dir;
  make_test_pki(dir.path());
  Sim sim({"--token", kToken, "--seed", "3", "--tls-cert", (dir / "server.pem").string(),
           "--tls-key", (dir / "server.key").string()});
  REQUIRE(sim.url().rfind("https://", 0) == 0);
  net::io_context ioc;
  auto o = test_options(sim.url());
  auto list = [&] {
    auto client = make_client(ioc, o, token());
    api::BindingsApi api(*client);
    return run(ioc, api.list_all({}));
  };
  SECTION("the test CA succeeds") {
    o.http.ca_file = (dir / "ca.pem").string();
    auto r = list();
    REQUIRE(r);
    CHECK(r->bindings.size() == 3);
  }
  SECTION("a wrong CA fails with a clear TLS error") {
    o.http.ca_file = (dir / "other-ca.pem").string();
    auto r = list();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kTls);
    CHECK_FALSE(r.error().transient());
    CHECK(r.error().detail.find("certificate verify failed") != std::string::npos);
  }
  SECTION("the system store does not know the test CA") {
    auto r = list();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kTls);
  }
  SECTION("a CA file that does not load is a configuration error") {
    o.http.ca_file = (dir / "missing-ca.pem").string();
    auto r = list();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kConfig);
    CHECK(r.error().detail.find("missing-ca.pem") != std::string::npos);
  }
  SECTION("a host name the certificate does not name fails") {
    o.base_url = "https://localhost:" + std::to_string(sim.port());
    o.http.ca_file = (dir / "ca.pem").string();
    auto r = list();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kTls);
  }
  check_no_secrets(logs, {kToken});
}

TEST_CASE("HTTPS_PROXY tunnels through CONNECT and NO_PROXY bypasses it", "[api][io]") {
  TempDir dir;
  make_test_pki(dir.path());
  Sim sim({"--token", kToken, "--seed", "3", "--tls-cert", (dir / "server.pem").string(),
           "--tls-key", (dir / "server.key").string()});
  net::io_context ioc;
  ConnectProxy proxy(ioc);
  const std::string proxy_url = "http://127.0.0.1:" + std::to_string(proxy.port());
  ::setenv("HTTPS_PROXY", proxy_url.c_str(), 1);
  ::unsetenv("https_proxy");
  ::unsetenv("no_proxy");
  const bool bypass = GENERATE(false, true);
  if (bypass) {
    ::setenv("NO_PROXY", "localhost,127.0.0.1", 1);
  } else {
    ::unsetenv("NO_PROXY");
  }
  auto o = test_options(sim.url());
  o.http.ca_file = (dir / "ca.pem").string();
  api::apply_proxy_environment(o.http);
  ::unsetenv("HTTPS_PROXY");
  ::unsetenv("NO_PROXY");
  CHECK(o.http.proxy == proxy_url);
  auto client = make_client(ioc, o, token());
  api::BindingsApi api(*client);
  auto r = run(ioc, api.list_all({}));
  REQUIRE(r);
  CHECK(r->bindings.size() == 3);
  if (bypass) {
    CHECK(proxy.targets().empty());
  } else {
    CHECK(proxy.targets() == std::vector<std::string>{"127.0.0.1:" + std::to_string(sim.port())});
  }
}

TEST_CASE("requests that hang time out each on its own deadline while others complete",
          "[api][io]") {
  net::io_context ioc;
  const std::string hang = "0badc0de-0000-4000-8000-000000000000";
  const std::string good = "224ecc46-291d-482b-993f-c8b508adb0da";
  CannedServer server(ioc, [&](const std::string& head) {
    if (head.find(hang) != std::string::npos) return CannedReply{{}, false, true};
    return CannedReply{http_response(200, kItem)};
  });
  auto o = test_options(server.url());
  o.http.timeout = 400ms;
  o.backoff.max_attempts = 1;
  auto client = make_client(ioc, o, token());
  api::BindingsApi api(*client);
  Timed first;
  Timed second;
  bool stop = false;
  int ok = 0;
  int failed = 0;
  std::vector<net::awaitable<void>> tasks;
  tasks.push_back(timed_get(&api, hang, 0ms, &first));
  tasks.push_back(timed_get(&api, hang, 200ms, &second));  // its deadline comes 200 ms later
  tasks.push_back(get_until(&api, good, &stop, &ok, &failed));
  tasks.push_back(set_after(700ms, &stop));
  run(ioc, when_all(std::move(tasks)));
  for (const auto* t : {&first, &second}) {
    REQUIRE(t->result);
    REQUIRE_FALSE(*t->result);
    CHECK(t->result->error().kind == ErrorKind::kTimeout);
    // Neither closed early at the other's deadline, nor left waiting long after its own.
    CHECK(t->took >= 400ms);
    CHECK(t->took < 400ms + 1000ms);
  }
  CHECK(ok > 10);  // the others kept going meanwhile
  CHECK(failed == 0);
}

TEST_CASE("a GET on a keep-alive connection the server has closed is re-sent on a new one",
          "[api][io]") {
  net::io_context ioc;
  // Closes after every answer without saying so (no "Connection: close").
  CannedServer server(ioc, [](const std::string&) {
    return CannedReply{http_response(200, kItem), true};
  });
  auto client = make_client(ioc, test_options(server.url()), token());
  api::BindingsApi api(*client);
  for (int i = 0; i < 3; ++i) {
    auto r = run(ioc, api.get("224ecc46-291d-482b-993f-c8b508adb0da"));
    REQUIRE(r);
  }
  CHECK(server.requests() == 3);
  CHECK(server.connections() == 3);
  CHECK(client->stats().sent == 3);  // no retry at the client's level
  CHECK(client->stats().retries == 0);
}

TEST_CASE("a token answer with a NUL byte after its JSON is refused, not read up to the NUL",
          "[api][io]") {
  net::io_context ioc;
  std::string body = R"({"access_token":"tok-before-nul","token_type":"Bearer","expires_in":3600})";
  body += std::string(1, '\0') + "junk";
  CannedServer server(ioc, [&](const std::string&) { return CannedReply{http_response(200, body)}; });
  api::OAuth2Options o;
  o.token_url = server.url() + "/oauth2/token";
  o.client_id = "thingsync";
  o.client_secret = core::Secret("client-secret-for-nul-test");
  auto provider = api::make_oauth2_provider(ioc.get_executor(), o);
  auto r = run(ioc, provider->token());
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::kProtocol);
  CHECK(server.requests() == 1);
}
