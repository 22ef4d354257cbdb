#include "thingsync/api/url.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace thingsync::api {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

// RFC 3986 5.2.4: removes "." and ".." segments.
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  const bool absolute = !path.empty() && path.front() == '/';
  if (absolute) i = 1;
  bool trailing_slash = false;
  while (i <= path.size()) {
    const auto j = std::min(path.find('/', i), path.size());
    const auto seg = path.substr(i, j - i);
    trailing_slash = false;
    if (seg == ".") {
      trailing_slash = true;
    } else if (seg == "..") {
      if (!out.empty()) out.pop_back();
      trailing_slash = true;
    } else {
      out.push_back(seg);
    }
    i = j + 1;
  }
  std::string result = absolute ? "/" : "";
  for (std::size_t k = 0; k < out.size(); ++k) {
    if (k) result += '/';
    result += out[k];
  }
  if (trailing_slash && (result.empty() || result.back() != '/')) result += '/';
  return result;
}

}  // namespace

std::optional<Url> Url::parse(std::string_view text) {
  const auto colon = text.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  Url u;
  u.scheme = lower(text.substr(0, colon));
  if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
  text.remove_prefix(colon + 3);
  if (auto hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
  const auto end = std::min(text.find_first_of("/?"), text.size());
  std::string_view authority = text.substr(0, end);
  std::string_view rest = text.substr(end);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = lower(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port_text = after.substr(1);
    }
  } else {
    const auto c = authority.rfind(':');
    if (c != std::string_view::npos) {
      port_text = authority.substr(c + 1);
      authority = authority.substr(0, c);
    }
    u.host = lower(authority);
  }
  if (u.host.empty()) return std::nullopt;
  u.port = u.tls() ? 443 : 80;
  if (!port_text.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || p == 0 || p > 65535) {
      return std::nullopt;
    }
    u.port = static_cast<std::uint16_t>(p);
  }
  // The leading '/' goes in first: insert(0, "/") makes GCC 12 at -O3 raise a false -Wrestrict
  // in basic_string::_M_replace (a known GCC 12 bug).
  if (rest.empty() || rest.front() == '?') u.target = '/';
  u.target += rest;
  return u;
}

std::string Url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::origin() const { return scheme + "://" + authority(); }

std::string_view Url::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::optional<Url> resolve_reference(const Url& base, std::string_view ref) {
  if (auto hash = ref.find('#'); hash != std::string_view::npos) ref = ref.substr(0, hash);
  // A scheme is letters/digits/+-. before the first ':' that comes before any '/', '?'.
  const auto colon = ref.find(':');
  if (colon != std::string_view::npos && colon < ref.find_first_of("/?")) {
    return Url::parse(ref);  // absolute; rejected if not http(s)
  }
  if (ref.substr(0, 2) == "//") return Url::parse(base.scheme + ":" + std::string(ref));
  Url out = base;
  const auto q = ref.find('?');
  const std::string_view ref_path = ref.substr(0, q);
  const std::string_view ref_query = q == std::string_view::npos ? "" : ref.substr(q);
  if (ref_path.empty()) {
    // Same path; a new query, or (empty reference) the base itself.
    out.target = std::string(base.path()) +
                 std::string(ref_query.empty() ? base.target.substr(base.path().size())
                                               : std::string(ref_query));
    return out;
  }
  std::string merged;
  if (ref_path.front() == '/') {
    merged = std::string(ref_path);
  } else {
    const auto bp = base.path();
    merged = std::string(bp.substr(0, bp.rfind('/') + 1)) + std::string(ref_path);
  }
  // As in Url::parse: the leading '/' first, not insert(0, "/") (GCC 12 -O3 -Wrestrict).
  const std::string path = remove_dot_segments(merged);
  out.target.clear();
  if (path.empty() || path.front() != '/') out.target = '/';
  out.target += path;
  out.target += ref_query;
  return out;
}

void url_encode_to(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto unreserved = [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
  };
  // Binding ids (UUIDs) need no escaping: one copy.
  if (std::all_of(s.begin(), s.end(), unreserved)) {
    out.append(s);
    return;
  }
  for (unsigned char c : s) {
    if (unreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

std::string url_encode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  url_encode_to(out, s);
  return out;
}

bool is_loopback_host(std::string_view host_in) {
  std::string host = lower(host_in);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "localhost.") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host_in) {
  const std::string host = lower(host_in);
  std::size_t i = 0;
  while (i <= no_proxy.size()) {
    const auto j = std::min(no_proxy.find(',', i), no_proxy.size());
    std::string entry = lower(no_proxy.substr(i, j - i));
    i = j + 1;
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (entry.empty()) continue;
    if (entry == "*") return true;
    // Drop a ":port" suffix (but not from a bare IPv6 address).
    if (auto c = entry.rfind(':'); c != std::string::npos && entry.find(':') == c) {
      entry.resize(c);
    }
    if (!entry.empty() && entry.front() == '[' && entry.back() == ']') {
      entry = entry.substr(1, entry.size() - 2);
    }
    if (entry.front() == '.') entry.erase(0, 1);
    if (entry.starts_with("*.")) entry.erase(0, 2);
    if (host == entry) return true;
    if (host.size() > entry.size() && host.ends_with(entry) &&
        host[host.size() - entry.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

}  // namespace thingsync::api
