// The simulator's HTTP/1.1 framing, byte for byte, over raw sockets: status lines, the fields
// it writes, keep-alive and close, HTTP/1.0, chunked request bodies, and responses too large
// for the socket buffer.
#include <time.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "common.hpp"

using simtest::HttpConnection;
using simtest::HttpResult;
using simtest::kGoodPassword;
using simtest::Sim;
using simtest::unique_imei;

namespace {

std::string request(const std::string& method, const std::string& target,
                    const std::string& extra = {}, const std::string& body = {},
                    const std::string& version = "HTTP/1.1") {
  std::string r = method + " " + target + " " + version + "\r\nHost: 127.0.0.1\r\n" +
                  "Authorization: Bearer test-token\r\n" + extra;
  if (!body.empty()) {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return r + "\r\n" + body;
}

std::string create_body() {
  return R"({"deviceId":")" + unique_imei() + R"(","password":")" + kGoodPassword + R"("})";
}

// The "Date: ...\r\n" line of a response head, which the expected heads take from the real one
// (its value is checked in its own test). Empty when there is none.
std::string date_line(const std::string& head) {
  const auto at = head.find("\r\nDate: ");
  if (at == std::string::npos) return {};
  return head.substr(at + 2, head.find("\r\n", at + 2) - at);
}

// Seconds since the epoch of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); -1 when the
// text is anything else.
std::int64_t imf_fixdate(const std::string& text) {
  tm parts{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (text.size() != 29 || end == nullptr || *end != '\0') return -1;
  return ::timegm(&parts);
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("responses carry a status line, Server, Content-Type and Content-Length", "[sim][http]") {
  Sim sim;
  HttpConnection c(sim.port());
  c.send(request("POST", "/mqtt/bindings", {}, create_body()));
  const auto created = c.response();
  const auto id_at = created.body.find(R"("id":")");
  REQUIRE(id_at != std::string::npos);
  const std::string id = created.body.substr(id_at + 6, 36);
  REQUIRE_FALSE(date_line(created.head).empty());
  CHECK(created.head == "HTTP/1.1 201 Created\r\nServer: thingsync-sim\r\n" +
                            date_line(created.head) +
                            "Content-Type: application/json\r\nLocation: /mqtt/bindings/" +
                            id + "\r\nContent-Length: " + std::to_string(created.body.size()) +
                            "\r\n\r\n");

  // The same connection stays open for the next requests.
  c.send(request("GET", "/mqtt/bindings/" + id));
  const auto got = c.response();
  CHECK(got.head == "HTTP/1.1 200 OK\r\nServer: thingsync-sim\r\n" + date_line(got.head) +
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(got.body.size()) + "\r\n\r\n");
  CHECK(got.body == created.body);

  c.send(request("DELETE", "/mqtt/bindings/" + id));
  const auto deleted = c.response();
  CHECK(deleted.head == "HTTP/1.1 204 No Content\r\nServer: thingsync-sim\r\n" +
                            date_line(deleted.head) + "\r\n");

  c.send(request("GET", "/mqtt/bindings/" + id));
  const auto gone = c.response();
  CHECK(gone.head.rfind("HTTP/1.1 404 Not Found\r\nServer: thingsync-sim\r\n" +
                            date_line(gone.head) + "Content-Type: application/problem+json\r\n",
                        0) == 0);
  CHECK(gone.body.find(R"("status":404)") != std::string::npos);

  c.send(request("PATCH", "/mqtt/bindings"));
  const auto patch = c.response();
  CHECK(patch.head.find("\r\nAllow: GET, POST\r\n") != std::string::npos);
  CHECK(patch.head.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
}

TEST_CASE("Connection: close is answered with Connection: close and a closed connection",
          "[sim][http]") {
  Sim sim;
  HttpConnection c(sim.port());
  c.send(request("GET", "/mqtt/bindings?limit=1", "Connection: close\r\n"));
  const auto r = c.response();
  CHECK(r.head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(r.head.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(c.closed());
}

TEST_CASE("HTTP/1.0 gets HTTP/1.0 answers, kept alive only when asked", "[sim][http]") {
  Sim sim;
  {
    HttpConnection c(sim.port());
    c.send(request("GET", "/mqtt/bindings?limit=1", {}, {}, "HTTP/1.0"));
    const auto r = c.response();
    CHECK(r.head.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(r.head.find("Connection") == std::string::npos);
    CHECK(c.closed());
  }
  HttpConnection c(sim.port());
  c.send(request("GET", "/mqtt/bindings?limit=1", "Connection: keep-alive\r\n", {}, "HTTP/1.0"));
  const auto r = c.response();
  CHECK(r.head.find("\r\nConnection: keep-alive\r\n") != std::string::npos);
  c.send(request("GET", "/mqtt/bindings?limit=1", "Connection: keep-alive\r\n", {}, "HTTP/1.0"));
  CHECK(c.response().head.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
}

TEST_CASE("a chunked request body is read whole", "[sim][http]") {
  Sim sim;
  HttpConnection c(sim.port());
  const std::string body = create_body();
  const std::string first = body.substr(0, 10), rest = body.substr(10);
  auto hex = [](std::size_t n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return std::string(buf);
  };
  c.send("POST /mqtt/bindings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
         hex(first.size()) + "\r\n" + first + "\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the rest in another segment
  c.send(hex(rest.size()) + "\r\n" + rest + "\r\n0\r\n\r\n");
  CHECK(c.response().head.rfind("HTTP/1.1 201 Created\r\n", 0) == 0);
}

TEST_CASE("a request that is not HTTP closes the connection without an answer", "[sim][http]") {
  Sim sim;
  HttpConnection c(sim.port());
  c.send("NOT HTTP AT ALL\r\n\r\n");
  CHECK(c.closed());
  // The simulator still serves others.
  HttpConnection d(sim.port());
  d.send(request("GET", "/mqtt/bindings?limit=1"));
  CHECK(d.response().head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("a response larger than the socket buffer arrives whole to a slow reader",
          "[sim][http]") {
  Sim sim({"--seed", "20000", "--max-page-size", "20000"});
  // A small receive buffer and a late first read: the simulator cannot hand the ~6 MB page to
  // the kernel at once (a socket buffers 4 MB at most) and has to finish it asynchronously,
  // then go on with the pipelined request.
  HttpConnection c(sim.port(), {.receive_buffer = 4096});
  c.send(request("GET", "/mqtt/bindings?limit=20000") + request("GET", "/mqtt/bindings?limit=2"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto big = c.response();
  REQUIRE(big.head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(big.body.size() > 4200000);
  const auto items = nlohmann::json::parse(big.body).at("items");
  CHECK(items.size() == 20000);
  const auto small = c.response();
  REQUIRE(small.head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(nlohmann::json::parse(small.body).at("items").size() == 2);
}

TEST_CASE("a body over --max-body is 413 and the connection is closed", "[sim][http]") {
  Sim sim({"--max-body", "100"});
  HttpConnection c(sim.port());
  c.send(request("POST", "/mqtt/bindings", {}, std::string(200, ' ') + create_body()));
  const auto r = c.response();
  CHECK(r.head.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0) == 0);
  CHECK(r.head.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(c.closed());
}

TEST_CASE("keep-alive connections served side by side answer pipelined and split requests in order",
          "[sim][http]") {
  // With more than one connection open the simulator lets the others run before it reads
  // the next request of a connection; requests already buffered must still be answered at
  // once, and a request split across segments must still be read whole.
  Sim sim({"--seed", "3"});
  HttpConnection a(sim.port());
  HttpConnection b(sim.port());
  HttpConnection c(sim.port());
  const auto limit = [](int n) { return request("GET", "/mqtt/bindings?limit=" + std::to_string(n)); };
  const auto items = [](const HttpResult& r) {
    REQUIRE(r.head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    return nlohmann::json::parse(r.body).at("items").size();
  };
  for (int round = 0; round < 20; ++round) {
    const std::string split = limit(2);
    a.send(limit(1) + limit(3) + split.substr(0, 20));  // two whole requests and a part
    b.send(limit(2));
    c.send(request("GET", "/mqtt/nothing"));
    CHECK(items(a.response()) == 1);
    CHECK(items(a.response()) == 3);
    CHECK(items(b.response()) == 2);
    CHECK(c.response().head.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    a.send(split.substr(20));
    CHECK(items(a.response()) == 2);
  }
}

TEST_CASE("every response carries a Date header from the simulator's wall clock", "[sim][http]") {
  Sim sim({"--admin", "--max-body", "300", "--oauth-client", "app:secret"});
  const std::string form = "grant_type=password";
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"list", request("GET", "/mqtt/bindings?limit=1")},
      {"create", request("POST", "/mqtt/bindings", {}, create_body())},
      {"404", request("GET", "/mqtt/bindings/224ecc46-291d-482b-993f-c8b508adb0da")},
      {"400", request("GET", "/mqtt/bindings?nope=1")},
      {"405", request("PATCH", "/mqtt/bindings")},
      {"401", "GET /mqtt/bindings HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"token 400", "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    "application/x-www-form-urlencoded\r\nContent-Length: " +
                        std::to_string(form.size()) + "\r\n\r\n" + form},
      {"admin", "GET /_sim/faults HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"admin 404", "GET /_sim/nothing HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"413", request("POST", "/mqtt/bindings", {}, std::string(400, ' ') + create_body())},
  };
  for (const auto& [what, raw] : requests) {
    INFO(what);
    HttpConnection c(sim.port());
    const auto before = unix_now();
    c.send(raw);
    const auto r = c.response();
    const auto after = unix_now();
    REQUIRE_FALSE(r.head.empty());
    const std::string line = date_line(r.head);
    REQUIRE(line.size() > 8);
    const std::string value = line.substr(6, line.size() - 8);
    INFO(value);
    const auto at = imf_fixdate(value);
    CHECK(at >= before);
    CHECK(at <= after);
  }
  // A rate-limited answer too (the gateway's 429, before authentication).
  REQUIRE(sim.admin("PUT", "/_sim/faults", {{"rateLimit", 1}}).status == 200);
  int limited = 0;
  for (int i = 0; i < 5 && limited == 0; ++i) {
    const auto r = sim.get("/mqtt/bindings?limit=1");
    if (r.status != 429) continue;
    ++limited;
    CHECK(imf_fixdate(r.header("date")) > 0);
  }
  CHECK(limited == 1);
}
