#include "thingsync/api/url.hpp"

#include <catch2/catch.hpp>

using thingsync::api::Url;
using thingsync::api::resolve_reference;

TEST_CASE("url parse splits scheme host port and target", "[api][url]") {
  auto u = Url::parse("HTTPS://API.kpnthings.com/mqtt/bindings?limit=5#frag");
  REQUIRE(u);
  CHECK(u->scheme == "https");
  CHECK(u->host == "api.kpnthings.com");
  CHECK(u->port == 443);
  CHECK(u->target == "/mqtt/bindings?limit=5");
  CHECK(u->path() == "/mqtt/bindings");
  CHECK(u->origin() == "https://api.kpnthings.com:443");

  auto local = Url::parse("http://127.0.0.1:8080");
  REQUIRE(local);
  CHECK(local->port == 8080);
  CHECK(local->target == "/");
  auto v6 = Url::parse("http://[::1]:9/x");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->authority() == "[::1]:9");

  CHECK_FALSE(Url::parse("ftp://x/"));
  CHECK_FALSE(Url::parse("https://user:pw@host/"));
  CHECK_FALSE(Url::parse("https://host:0/"));
  CHECK_FALSE(Url::parse("https://host:99999/"));
  CHECK_FALSE(Url::parse("https:///path"));
  CHECK_FALSE(Url::parse("/relative"));
}

TEST_CASE("next links resolve in absolute and relative forms", "[api][url]") {
  const auto base = *Url::parse("https://api.example:8443/v1/mqtt/bindings?limit=2");
  struct Row {
    const char* ref;
    const char* expected;
  };
  const Row rows[] = {
      {"https://api.example:8443/v1/mqtt/bindings?cursor=abc",
       "https://api.example:8443/v1/mqtt/bindings?cursor=abc"},
      {"/v1/mqtt/bindings?cursor=abc", "https://api.example:8443/v1/mqtt/bindings?cursor=abc"},
      {"?cursor=abc", "https://api.example:8443/v1/mqtt/bindings?cursor=abc"},
      {"bindings?cursor=abc", "https://api.example:8443/v1/mqtt/bindings?cursor=abc"},
      {"../mqtt/./bindings?cursor=abc", "https://api.example:8443/v1/mqtt/bindings?cursor=abc"},
      {"//other.example/x", "https://other.example:443/x"},
      {"http://api.example:8443/x", "http://api.example:8443/x"},
  };
  for (const auto& r : rows) {
    INFO(r.ref);
    auto u = resolve_reference(base, r.ref);
    REQUIRE(u);
    CHECK(u->str() == r.expected);
  }
  CHECK_FALSE(resolve_reference(base, "javascript:alert(1)"));
}

TEST_CASE("same origin compares scheme host and port", "[api][url]") {
  const auto base = *Url::parse("https://api.example/x");
  CHECK(base.same_origin(*Url::parse("https://API.EXAMPLE:443/y")));
  CHECK_FALSE(base.same_origin(*Url::parse("http://api.example/x")));
  CHECK_FALSE(base.same_origin(*Url::parse("https://api.example:444/x")));
  CHECK_FALSE(base.same_origin(*Url::parse("https://api.example.evil/x")));
}

TEST_CASE("NO_PROXY matches hosts, domain suffixes and the wildcard", "[api][url]") {
  using thingsync::api::no_proxy_matches;
  CHECK(no_proxy_matches("localhost,.corp.example", "localhost"));
  CHECK(no_proxy_matches("localhost,.corp.example", "api.corp.example"));
  CHECK(no_proxy_matches("corp.example", "api.CORP.example"));
  CHECK(no_proxy_matches("corp.example", "corp.example"));
  CHECK_FALSE(no_proxy_matches("corp.example", "notcorp.example"));
  CHECK(no_proxy_matches(" 127.0.0.1:8080 , other", "127.0.0.1"));
  CHECK(no_proxy_matches("*", "anything"));
  CHECK(no_proxy_matches("[::1]", "::1"));
  CHECK_FALSE(no_proxy_matches("", "api.kpnthings.com"));
}

TEST_CASE("loopback hosts are never proxied, in any spelling", "[api][url]") {
  using thingsync::api::is_loopback_host;
  for (const char* h : {"localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]",
                        "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"}) {
    INFO(h);
    CHECK(is_loopback_host(h));
  }
  for (const char* h : {"api.kpnthings.com", "128.0.0.1", "10.0.0.1", "::2", "localhost.evil",
                        "127.0.0.1.nip.io", ""}) {
    INFO(h);
    CHECK_FALSE(is_loopback_host(h));
  }
}

TEST_CASE("url encode escapes everything but unreserved characters", "[api][url]") {
  CHECK(thingsync::api::url_encode("a-Z_0.~") == "a-Z_0.~");
  CHECK(thingsync::api::url_encode("2025-05-01T00:00:00.000Z") == "2025-05-01T00%3A00%3A00.000Z");
  CHECK(thingsync::api::url_encode("x y&z=+/") == "x%20y%26z%3D%2B%2F");
}
