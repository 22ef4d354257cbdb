#include "thingsync/config/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "echo.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/duration.hpp"
#include "thingsync/sys/secret_file.hpp"
#include "thingsync/sys/zones.hpp"
#include "yaml_tree.hpp"

namespace thingsync::config {
namespace {

using detail::Checker;
using detail::kNone;
using detail::YNode;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool parse_port(std::string_view s, std::uint16_t& port) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

bool valid_reg_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == '~';
  });
}

bool valid_ipv6(std::string_view host) {
  return !host.empty() && host.find(':') != std::string_view::npos &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
                  c == ':' || c == '.';
         });
}

// Splits "host:port" / "[v6]:port" into its parts; `why` says what is wrong.
bool split_host_port(std::string_view text, std::string& host, std::string_view& port,
                     std::string& why) {
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      why = "unterminated '[' in IPv6 address";
      return false;
    }
    host = std::string(text.substr(1, close - 1));
    if (!valid_ipv6(host)) {
      why = "'" + detail::echo(host) + "' is not an IPv6 address";
      return false;
    }
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      why = "unexpected text after ']'";
      return false;
    }
    port = rest.empty() ? std::string_view{} : rest.substr(1);
    if (rest.size() == 1) port = ":";  // "host:" with an empty port
    return true;
  }
  const std::size_t colon = text.rfind(':');
  host = std::string(text.substr(0, colon));
  port = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (colon != std::string_view::npos && port.empty()) port = ":";
  if (host.find(':') != std::string::npos) {
    why = "an IPv6 address must be written in brackets, as [::1]";
    return false;
  }
  if (!valid_reg_name(host)) {
    why = host.empty() ? "the host is missing"
                       : "'" + detail::echo(host) + "' is not a valid host name";
    return false;
  }
  return true;
}

class ConfigParser {
 public:
  ConfigParser(Checker& c, const EnvLookup& env, Config& cfg) : c_(c), env_(env), cfg_(cfg) {}

  void run() {
    const auto& t = c_.tree();
    const std::uint32_t root = t.root();
    if (root == kNone || t[root].kind == YNode::Kind::kNull) {
      c_.error_at(1, 1, "the config file is empty: desiredState.path and auth are required");
      return;
    }
    if (!c_.expect_map(root, "the config file", "with sections api, auth, desiredState, ...")) {
      return;
    }
    bool have_desired = false;
    bool have_auth = false;
    c_.for_each_key(root, "the config file",
                    {"api", "auth", "desiredState", "scope", "sync", "state", "metrics"},
                    [&](std::string_view key, std::uint32_t v) {
                      if (key == "api") api(v);
                      if (key == "auth") have_auth = auth(v);
                      if (key == "desiredState") have_desired = desired_state(v);
                      if (key == "scope") scope(v);
                      if (key == "sync") sync(v);
                      if (key == "state") state(v);
                      if (key == "metrics") metrics(v);
                    });
    if (!have_desired && !seen_desired_) {
      c_.error(root, "missing required key 'desiredState' (with 'path': a directory or file)");
    }
    if (!have_auth && !seen_auth_) {
      c_.error(root, "missing required key 'auth' (with 'tokenFile' or 'oauth2')");
    }
    find_placeholders(root, "");
    // After the whole file: api.allowInsecureHttp may come after the URLs it allows.
    if (!cfg_.api.allow_insecure_http) {
      for (const auto& u : clear_text_urls_) {
        c_.error(u.node, u.what + ": '" + u.url + "' would send " + u.exposes +
                             " in clear text: use https://, or set api.allowInsecureHttp: true "
                             "(http:// is allowed without it only to loopback: 127.0.0.0/8, ::1, "
                             "localhost)");
      }
    }
  }

 private:
  bool string(std::uint32_t v, std::string_view what, std::string& out) {
    return c_.expect_scalar(v, what) && c_.expand(v, env_, out);
  }
  bool nonempty_string(std::uint32_t v, std::string_view what, std::string& out) {
    if (!string(v, what, out)) return false;
    if (out.empty()) {
      c_.error(v, std::string(what) + " must not be empty");
      return false;
    }
    return true;
  }
  bool path(std::uint32_t v, std::string_view what, std::string& out) {
    if (!c_.expect_scalar(v, what) || !c_.expand_path(v, what, env_, out)) return false;
    cfg_.spots[std::string(what)] = {c_.tree()[v].line, c_.tree()[v].column};
    return true;
  }
  // `exposes`: the secret that travels to this URL ("the API token").
  bool url(std::uint32_t v, std::string_view what, std::string_view exposes, std::string& out) {
    if (!nonempty_string(v, what, out)) return false;
    auto parsed = parse_http_url(out);
    if (!parsed) {
      c_.error(v, std::string(what) + ": '" + detail::echo(out) +
                      "' is not a valid URL: " + parsed.error());
      return false;
    }
    if (parsed->scheme == "http" && !is_loopback_host(parsed->host)) {
      clear_text_urls_.push_back({v, std::string(what), std::string(exposes), out});
    }
    return true;
  }
  void duration(std::uint32_t v, std::string_view what, bool allow_zero,
                std::chrono::milliseconds& out) {
    std::string s;
    if (!string(v, what, s)) return;
    const auto d = core::parse_duration(s);
    if (!d) {
      c_.error(v, std::string(what) + ": '" + detail::echo(s) +
                      "' is not a duration (a whole number with ms, s, m or h, as 30s or 15m)");
      return;
    }
    if (!allow_zero && d->count() == 0) {
      c_.error(v, std::string(what) + " must be greater than 0");
      return;
    }
    out = *d;
  }
  void boolean(std::uint32_t v, std::string_view what, bool& out) {
    std::string s;
    if (!string(v, what, s)) return;
    const std::string l = lowered(s);
    if (l == "true" || l == "yes" || l == "on") {
      out = true;
    } else if (l == "false" || l == "no" || l == "off") {
      out = false;
    } else {
      c_.error(v,
               std::string(what) + ": '" + detail::echo(s) + "' is not a boolean (true or false)");
    }
  }
  bool number(std::string_view s, double& out) {
    if (s.empty() || s.front() == '+') return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
  }
  // Marks a required key as present even when its value was wrong, so that a bad value is not
  // also reported as missing.
  void api(std::uint32_t m) {
    if (!c_.expect_map(m, "api")) return;
    c_.for_each_key(m, "api", {"baseUrl", "timeout", "allowInsecureHttp", "caFile"},
                    [&](std::string_view k, std::uint32_t v) {
                      if (k == "baseUrl") {
                        std::string s;
                        if (url(v, "api.baseUrl", "the API token", s)) {
                          while (!s.empty() && s.back() == '/') s.pop_back();
                          cfg_.api.base_url = s;
                        }
                      }
                      if (k == "timeout") duration(v, "api.timeout", false, cfg_.api.timeout);
                      if (k == "allowInsecureHttp") {
                        boolean(v, "api.allowInsecureHttp", cfg_.api.allow_insecure_http);
                      }
                      if (k == "caFile") {
                        std::string s;
                        if (path(v, "api.caFile", s)) cfg_.api.ca_file = s;
                      }
                    });
  }
  bool auth(std::uint32_t m) {
    seen_auth_ = true;
    if (!c_.expect_map(m, "auth", "with tokenFile or oauth2")) return false;
    bool token_key = false;
    bool oauth_key = false;
    const bool known = c_.for_each_key(m, "auth", {"tokenFile", "oauth2"},
                                       [&](std::string_view k, std::uint32_t v) {
                                         if (k == "tokenFile") {
                                           token_key = true;
                                           std::string s;
                                           if (path(v, "auth.tokenFile", s))
                                             cfg_.auth.token_file = s;
                                         }
                                         if (k == "oauth2") {
                                           oauth_key = true;
                                           oauth2(v);
                                         }
                                       });
    if (token_key && oauth_key) {
      c_.error(m, "auth: set exactly one of 'tokenFile' and 'oauth2', not both");
    } else if (!token_key && !oauth_key && known) {
      c_.error(m, "auth: set exactly one of 'tokenFile' and 'oauth2'");
    }
    return true;
  }
  void oauth2(std::uint32_t m) {
    if (!c_.expect_map(m, "auth.oauth2", "with tokenUrl, clientId, clientSecretFile, audience")) {
      return;
    }
    OAuth2Config o;
    bool url_ok = false, id_ok = false, secret_ok = false, aud_ok = false;
    bool url_k = false, id_k = false, secret_k = false, aud_k = false;
    const bool known =
        c_.for_each_key(m, "auth.oauth2", {"tokenUrl", "clientId", "clientSecretFile", "audience"},
                        [&](std::string_view k, std::uint32_t v) {
                          if (k == "tokenUrl") {
                            url_k = true;
                            url_ok = url(v, "auth.oauth2.tokenUrl", "the client secret",
                                         o.token_url);
                          }
                          if (k == "clientId") {
                            id_k = true;
                            id_ok = nonempty_string(v, "auth.oauth2.clientId", o.client_id);
                          }
                          if (k == "clientSecretFile") {
                            secret_k = true;
                            std::string s;
                            secret_ok = path(v, "auth.oauth2.clientSecretFile", s);
                            o.client_secret_file = s;
                          }
                          if (k == "audience") {
                            aud_k = true;
                            aud_ok = nonempty_string(v, "auth.oauth2.audience", o.audience);
                          }
                        });
    const std::pair<bool, const char*> required[] = {{url_k, "tokenUrl"},
                                                     {id_k, "clientId"},
                                                     {secret_k, "clientSecretFile"},
                                                     {aud_k, "audience"}};
    for (const auto& [present, name] : required) {
      if (!present && known)
        c_.error(m, std::string("auth.oauth2: missing required key '") + name + "'");
    }
    if (url_ok && id_ok && secret_ok && aud_ok) cfg_.auth.oauth2 = std::move(o);
  }
  bool desired_state(std::uint32_t m) {
    seen_desired_ = true;
    if (!c_.expect_map(m, "desiredState", "with path")) return false;
    bool has_path = false;
    const bool known =
        c_.for_each_key(m, "desiredState", {"path"}, [&](std::string_view, std::uint32_t v) {
          has_path = true;
          std::string s;
          if (path(v, "desiredState.path", s)) cfg_.desired_state_path = s;
        });
    if (!has_path && known) c_.error(m, "desiredState: missing required key 'path'");
    return true;
  }
  void scope(std::uint32_t m) {
    if (m != kNone && c_.tree()[m].kind == YNode::Kind::kNull) return;  // "scope:" alone
    if (!c_.expect_map(m, "scope", "with clientId")) return;
    c_.for_each_key(m, "scope", {"clientId"}, [&](std::string_view, std::uint32_t v) {
      std::string s;
      if (!string(v, "scope.clientId", s)) return;
      if (!core::is_uuid(s)) {
        c_.error(v,
                 "scope.clientId: '" + detail::echo(s) + "' is not a UUID (8-4-4-4-12 hex digits)");
        return;
      }
      cfg_.scope_client_id = lowered(s);
    });
  }
  void sync(std::uint32_t m) {
    if (!c_.expect_map(m, "sync")) return;
    auto& s = cfg_.sync;
    c_.for_each_key(m, "sync",
                    {"mode", "pollInterval", "fullResyncInterval", "modifiedSinceOverlap", "prune",
                     "maxDeletes", "concurrency", "rateLimit", "rateLimitMax", "deleteAfter",
                     "deleteWindows", "approvedDeletesFile"},
                    [&](std::string_view k, std::uint32_t v) {
                      if (k == "mode") mode(v);
                      if (k == "pollInterval")
                        duration(v, "sync.pollInterval", false, s.poll_interval);
                      if (k == "fullResyncInterval") {
                        duration(v, "sync.fullResyncInterval", false, s.full_resync_interval);
                      }
                      if (k == "modifiedSinceOverlap") {
                        duration(v, "sync.modifiedSinceOverlap", true, s.modified_since_overlap);
                      }
                      if (k == "prune") boolean(v, "sync.prune", s.prune);
                      if (k == "maxDeletes") max_deletes(v);
                      if (k == "concurrency") concurrency(v);
                      if (k == "rateLimit") rate_limit(v);
                      if (k == "rateLimitMax") rate_limit_max(v);
                      if (k == "deleteAfter") duration(v, "sync.deleteAfter", true, s.delete_after);
                      if (k == "deleteWindows") delete_windows(v);
                      if (k == "approvedDeletesFile") {
                        std::string p;
                        if (path(v, "sync.approvedDeletesFile", p)) s.approved_deletes_file = p;
                      }
                    });
  }
  void delete_windows(std::uint32_t v) {
    const auto& t = c_.tree();
    if (t[v].kind == YNode::Kind::kNull) return;
    if (t[v].kind != YNode::Kind::kSeq) {
      c_.error(v, "sync.deleteWindows must be a list of windows, as "
                  "['Mon-Fri 09:00-17:00 Europe/Amsterdam']");
      return;
    }
    t.for_each_item(v, [&](std::uint32_t item) {
      std::string text;
      if (!string(item, "sync.deleteWindows", text)) return;
      std::string why;
      auto w = core::parse_delete_window(text, why);
      if (!w) {
        c_.error(item, "sync.deleteWindows: '" + detail::echo(text) + "': " + why);
        return;
      }
      // The zone must be in the tz database: a window that cannot be placed in time would
      // otherwise let deletes go at any time.
      if (auto known = sys::delete_window_schedule({*w}); !known) {
        c_.error(item, "sync.deleteWindows: '" + detail::echo(text) + "': " + known.error());
        return;
      }
      cfg_.sync.delete_windows.push_back(std::move(*w));
      if (!cfg_.spots.contains("sync.deleteWindows")) {
        cfg_.spots["sync.deleteWindows"] = {t[item].line, t[item].column};
      }
    });
  }
  void mode(std::uint32_t v) {
    std::string s;
    if (!string(v, "sync.mode", s)) return;
    if (s == "reconcile") {
      cfg_.sync.mode = SyncMode::kReconcile;
    } else if (s == "observe") {
      cfg_.sync.mode = SyncMode::kObserve;
    } else {
      c_.error(v, "sync.mode: '" + detail::echo(s) + "' is not a mode (reconcile or observe)");
    }
  }
  void max_deletes(std::uint32_t v) {
    std::string s;
    if (!string(v, "sync.maxDeletes", s)) return;
    const std::string hint = "sync.maxDeletes: '" + detail::echo(s) +
                             "' is not a count (0 or more) or a percentage (0% to 100%)";
    const auto limit = core::parse_delete_limit(s);
    if (!limit) {
      c_.error(v, hint);
      return;
    }
    cfg_.sync.max_deletes = *limit;
  }
  void concurrency(std::uint32_t v) {
    std::string s;
    if (!string(v, "sync.concurrency", s)) return;
    double x = 0;
    if (!number(s, x) || x < 1 || x > 1024 || x != std::floor(x)) {
      c_.error(v,
               "sync.concurrency: '" + detail::echo(s) + "' is not a whole number from 1 to 1024");
      return;
    }
    cfg_.sync.concurrency = static_cast<std::uint32_t>(x);
  }
  void rate_limit(std::uint32_t v) {
    std::string s;
    if (!string(v, "sync.rateLimit", s)) return;
    cfg_.sync.rate_limit_auto = s == "auto";
    if (!cfg_.sync.rate_limit_auto) {
      rate(v, "sync.rateLimit", s, "as 10 or 0.5, or auto", cfg_.sync.rate_limit);
    }
  }
  void rate_limit_max(std::uint32_t v) {
    std::string s;
    if (!string(v, "sync.rateLimitMax", s)) return;
    rate(v, "sync.rateLimitMax", s, "as 50 or 0.5", cfg_.sync.rate_limit_max);
    cfg_.sync.rate_limit_max_given = true;
    cfg_.spots["sync.rateLimitMax"] = {c_.tree()[v].line, c_.tree()[v].column};
  }
  // A number of requests per second, > 0.
  void rate(std::uint32_t v, std::string_view key, const std::string& s, std::string_view example,
            double& out) {
    double x = 0;
    if (!number(s, x) || x <= 0) {
      c_.error(v, std::string(key) + ": '" + detail::echo(s) +
                      "' is not a positive number of requests per second (" + std::string(example) +
                      ")");
      return;
    }
    out = x;
  }
  void state(std::uint32_t m) {
    if (!c_.expect_map(m, "state", "with path")) return;
    c_.for_each_key(m, "state", {"path", "journalPath"}, [&](std::string_view k, std::uint32_t v) {
      std::string s;
      if (k == "journalPath") {
        if (path(v, "state.journalPath", s)) cfg_.journal_path = s;
      } else if (path(v, "state.path", s)) {
        cfg_.state_path = s;
      }
    });
  }
  void metrics(std::uint32_t m) {
    if (!c_.expect_map(m, "metrics", "with listen")) return;
    c_.for_each_key(m, "metrics", {"listen"}, [&](std::string_view, std::uint32_t v) {
      std::string s;
      if (!nonempty_string(v, "metrics.listen", s)) return;
      auto a = parse_listen_address(s);
      if (!a) {
        c_.error(v, "metrics.listen: '" + detail::echo(s) + "' is not host:port: " + a.error());
        return;
      }
      cfg_.metrics_listen = s;
      cfg_.metrics_host = a->host;
      cfg_.metrics_port = a->port;
    });
  }

  // Every value that still holds an example's "REPLACE-ME…" (the production example ships
  // with them): the key's place and name.
  void find_placeholders(std::uint32_t node, const std::string& key) {
    const auto& t = c_.tree();
    const YNode& n = t[node];
    if (n.kind == YNode::Kind::kMap) {
      t.for_each_pair(node, [&](std::uint32_t k, std::uint32_t v) {
        find_placeholders(v, key.empty() ? t[k].text : key + "." + t[k].text);
      });
    } else if (n.kind == YNode::Kind::kSeq) {
      std::size_t i = 0;
      t.for_each_item(node, [&](std::uint32_t item) {
        find_placeholders(item, key + "[" + std::to_string(i++) + "]");
      });
    } else if (n.kind == YNode::Kind::kScalar && lowered(n.text).find("replace-me") != std::string::npos) {
      cfg_.placeholders.push_back({c_.file(), n.line, n.column, core::Severity::kError,
                                   key + ": '" + detail::echo(n.text) +
                                       "' is a placeholder of the example config: put in the "
                                       "real value"});
    }
  }

  // An http:// URL to a host that is not loopback, refused unless api.allowInsecureHttp.
  struct ClearTextUrl {
    std::uint32_t node;
    std::string what;
    std::string exposes;
    std::string url;
  };

  Checker& c_;
  const EnvLookup& env_;
  Config& cfg_;
  std::vector<ClearTextUrl> clear_text_urls_;
  bool seen_desired_ = false;
  bool seen_auth_ = false;
};

}  // namespace

std::string_view to_string(SyncMode m) { return m == SyncMode::kObserve ? "observe" : "reconcile"; }

core::Result<HttpUrl, std::string> parse_http_url(std::string_view text) {
  using R = core::Result<HttpUrl, std::string>;
  HttpUrl u;
  const std::size_t sep = text.find("://");
  if (sep == std::string_view::npos) return R::failure("expected http:// or https://");
  u.scheme = lowered(text.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https") {
    return R::failure("the scheme must be http or https, not '" + detail::echo(u.scheme) + "'");
  }
  std::string_view rest = text.substr(sep + 3);
  const std::size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  const std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return R::failure("user info (user@) is not allowed; credentials go in auth");
  }
  if (tail.find('#') != std::string_view::npos) return R::failure("a fragment (#) is not allowed");
  if (tail.find_first_of(" \t") != std::string_view::npos) {
    return R::failure("spaces are not allowed");
  }
  std::string why;
  std::string_view port;
  if (!split_host_port(authority, u.host, port, why)) return R::failure(why);
  u.host = lowered(u.host);
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port.empty() && !parse_port(port, u.port)) {
    return R::failure("the port must be a number from 1 to 65535");
  }
  if (u.port == 0) return R::failure("the port must be a number from 1 to 65535");
  u.path = std::string(tail);
  if (!u.path.empty() && u.path.front() == '?') u.path.insert(0, "/");
  return u;
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  const std::string text(host);  // inet_pton wants a C string
  unsigned char v4[4] = {};  // network order: the first octet first
  if (::inet_pton(AF_INET, text.c_str(), v4) == 1) return v4[0] == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0) return true;
  // ::ffff:127.x.y.z, an IPv4 loopback address in IPv6 form.
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(v6.s6_addr, kMapped, sizeof kMapped) == 0 && v6.s6_addr[12] == 127;
}

core::Result<ListenAddress, std::string> parse_listen_address(std::string_view text) {
  using R = core::Result<ListenAddress, std::string>;
  ListenAddress a;
  std::string why;
  std::string_view port;
  if (!split_host_port(text, a.host, port, why)) return R::failure(why);
  if (port.empty()) return R::failure("the port is missing");
  if (!parse_port(port, a.port)) return R::failure("the port must be a number from 0 to 65535");
  return a;
}

core::Result<Config, core::Diagnostics> parse_config(std::string_view text,
                                                     std::string_view filename,
                                                     const EnvLookup& env) {
  const std::string file(filename);
  core::Diagnostics diags;
  detail::YTree tree;
  Config cfg;
  cfg.file = file;
  cfg.state_path = "/var/lib/thingsync/state.json";
  if (detail::parse_yaml(text, file, 0, tree, diags)) {
    Checker checker(file, tree, diags, text, 0);
    ConfigParser(checker, env, cfg).run();
  }
  if (core::has_errors(diags)) {
    // Every error at once: placeholders left in are among them.
    diags.insert(diags.end(), cfg.placeholders.begin(), cfg.placeholders.end());
    core::sort_diagnostics(diags);
    return core::Result<Config, core::Diagnostics>::failure(std::move(diags));
  }
  return cfg;
}

core::Diagnostics check_config(const Config& cfg, bool files) {
  core::Diagnostics out = cfg.placeholders;
  const auto at = [&](std::string_view key, core::Severity severity, std::string message) {
    const auto spot = cfg.spots.find(key);
    const Spot s = spot == cfg.spots.end() ? Spot{} : spot->second;
    out.push_back({cfg.file, s.line, s.column, severity, std::string(key) + ": " + message});
  };
  if (cfg.sync.rate_limit_max_given && !cfg.sync.rate_limit_auto) {
    at("sync.rateLimitMax", core::Severity::kWarning,
       "has no effect unless sync.rateLimit is auto: the rate is sync.rateLimit");
  }
  if (!files) {
    core::sort_diagnostics(out);
    return out;
  }
  // A token or a client secret is a line of a few hundred bytes; a file far larger is not one.
  constexpr std::size_t kMaxCredentialFileBytes = std::size_t{64} << 10;
  const auto credential = [&](std::string_view key, const std::filesystem::path& file) {
    auto text = sys::read_secret_file(file.string(), "file " + detail::echo_path(file.string()),
                                      kMaxCredentialFileBytes);
    if (!text) {
      at(key, core::Severity::kError, text.error());
    } else if (text->reveal().find_first_not_of(" \t\r\n") == std::string::npos) {
      at(key, core::Severity::kError, "file " + detail::echo_path(file.string()) + " is empty");
    }
  };
  if (cfg.auth.token_file) credential("auth.tokenFile", *cfg.auth.token_file);
  if (cfg.auth.oauth2) {
    credential("auth.oauth2.clientSecretFile", cfg.auth.oauth2->client_secret_file);
  }
  if (cfg.api.ca_file && ::access(cfg.api.ca_file->c_str(), R_OK) != 0) {
    at("api.caFile", core::Severity::kError,
       "cannot read " + detail::echo_path(cfg.api.ca_file->string()) + ": " +
           std::strerror(errno));
  }
  std::error_code ec;
  const auto dir = cfg.state_path.parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
    at("state.path", core::Severity::kWarning,
       "directory " + detail::echo_path(dir.string()) +
           " does not exist: the state cannot be saved until it does (under systemd, "
           "StateDirectory= makes it)");
  }
  core::sort_diagnostics(out);
  return out;
}

core::Result<Config, core::Diagnostics> load_config_file(const std::filesystem::path& path,
                                                         const EnvLookup& env) {
  std::string text;
  std::string why;
  if (!detail::read_file(path.string(), text, why)) {
    return core::Result<Config, core::Diagnostics>::failure(core::Diagnostics{
        {path.string(), 0, 0, core::Severity::kError, "cannot read config file: " + why}});
  }
  return parse_config(text, path.string(), env);
}

}  // namespace thingsync::config
