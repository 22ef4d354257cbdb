#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace thingsync::api {

/// An absolute http(s) URL, split the way a client needs it. Pure value type.
struct Url {
  std::string scheme;  ///< "http" or "https", lower case
  std::string host;    ///< lower case; IPv6 literals without brackets
  std::uint16_t port = 0;
  std::string target;  ///< path and query, starts with '/'; never a fragment

  /// Parses "https://host[:port][/path][?query]". nullopt for other schemes, userinfo,
  /// bad ports or a missing host.
  static std::optional<Url> parse(std::string_view text);

  /// "https://host:port" with the port always spelled out.
  std::string origin() const;
  /// "host:port" (IPv6 in brackets), as in Host and CONNECT lines.
  std::string authority() const;
  std::string str() const { return origin() + target; }
  std::string_view path() const;  ///< target without the query
  bool tls() const { return scheme == "https"; }

  /// Scheme, host and port equal: the only place a bearer token may go.
  bool same_origin(const Url& other) const {
    return scheme == other.scheme && host == other.host && port == other.port;
  }
};

/// Resolves a link (absolute URL, "//host/...", "/path?q", "?q", or a relative path) against
/// `base` as RFC 3986 section 5.2 does. nullopt when the result is not a valid http(s) URL.
std::optional<Url> resolve_reference(const Url& base, std::string_view reference);

/// "a b&c" -> "a%20b%26c": percent-encodes all but RFC 3986 unreserved characters.
std::string url_encode(std::string_view s);
/// url_encode() appended to `out`.
void url_encode_to(std::string& out, std::string_view s);

/// True when `host` matches a NO_PROXY list ("localhost,.example.com,10.0.0.1,*").
bool no_proxy_matches(std::string_view no_proxy, std::string_view host);

/// "localhost", 127.0.0.0/8, ::1 and ::ffff:127.x.y.z: a plain http:// request there never
/// goes through a proxy, whatever https_proxy and no_proxy say (the proxy would see it, bearer
/// token included, in clear text, and reach its own loopback, not ours).
bool is_loopback_host(std::string_view host);

}  // namespace thingsync::api
