#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/config/env.hpp"
#include "thingsync/core/delete_rules.hpp"
#include "thingsync/core/diagnostic.hpp"
#include "thingsync/core/plan.hpp"
#include "thingsync/core/result.hpp"

namespace thingsync::config {

/// `api:` — where the Things API lives.
struct ApiConfig {
  std::string base_url = "https://api.kpnthings.com";  ///< validated http(s) URL, no trailing '/'
  std::chrono::milliseconds timeout{10'000};           ///< per request, > 0
  std::optional<std::filesystem::path> ca_file;        ///< extra CA bundle; TLS is always verified
  /// http:// to a host that is not loopback (api.baseUrl, auth.oauth2.tokenUrl) sends the
  /// bearer token or the client secret in clear text: refused unless this is true.
  bool allow_insecure_http = false;
};

/// `auth.oauth2:` — client-credentials grant at GRIP.
struct OAuth2Config {
  std::string token_url;  ///< validated http(s) URL
  std::string client_id;
  std::filesystem::path client_secret_file;  ///< a path, never the secret itself
  std::string audience;
};

/// `auth:` — exactly one of token_file / oauth2 is set after a successful parse.
struct AuthConfig {
  std::optional<std::filesystem::path> token_file;
  std::optional<OAuth2Config> oauth2;
};

enum class SyncMode : std::uint8_t { kReconcile, kObserve };
std::string_view to_string(SyncMode m);

/// `sync:` — how the reconciler behaves.
struct SyncConfig {
  SyncMode mode = SyncMode::kReconcile;
  std::chrono::milliseconds poll_interval{30'000};              ///< > 0
  std::chrono::milliseconds full_resync_interval{15 * 60'000};  ///< > 0
  std::chrono::milliseconds modified_since_overlap{60'000};     ///< >= 0
  bool prune = false;
  core::DeleteLimit max_deletes{core::DeleteLimit::Kind::kPercent, 5.0};
  std::uint32_t concurrency = 8;  ///< 1..1024
  double rate_limit = 10.0;       ///< requests per second, > 0, may be fractional
  /// `rateLimit: auto`: the rate adapts to the API's answers (core::AdaptiveRate), up to
  /// rate_limit_max; rate_limit is then unused.
  bool rate_limit_auto = false;
  bool rate_limit_max_given = false;  ///< written in the file (check_config warns if unused)
  double rate_limit_max = 50.0;  ///< sync.rateLimitMax, > 0; used with rateLimit: auto only
  /// A delete waits until its reason has held across full lists this long (0: at once).
  std::chrono::milliseconds delete_after{0};
  /// Weekly windows deletes may go in (empty: any time).
  std::vector<core::DeleteWindow> delete_windows;
  /// Hashes of blocked delete sets an operator approved, one per line (re-read every pass).
  std::optional<std::filesystem::path> approved_deletes_file;
};

/// Where a key's value was written in the config file (1-based).
struct Spot {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

/// The parsed config file (docs/reference.md, "Config keys"). Secrets are never held here: only the
/// paths of the files that hold them. Relative paths in the file (desiredState.path, state.path,
/// state.journalPath, auth.tokenFile, auth.oauth2.clientSecretFile, api.caFile) are resolved
/// against the directory of the config file, so a config works the same from any working
/// directory.
struct Config {
  std::string file;  ///< the config file's name as given to parse_config
  ApiConfig api;
  AuthConfig auth;
  std::filesystem::path desired_state_path;    ///< a directory or one file (required)
  std::optional<std::string> scope_client_id;  ///< lower-case UUID when set
  SyncConfig sync;
  std::filesystem::path state_path = "/var/lib/thingsync/state.json";
  /// The change journal: one JSON line per write to the API. Unset: journald only.
  std::optional<std::filesystem::path> journal_path;
  std::string metrics_listen = "127.0.0.1:9464";  ///< as written
  std::string metrics_host = "127.0.0.1";         ///< host part of metrics_listen, no brackets
  std::uint16_t metrics_port = 9464;
  /// Where the keys that name files were written ("auth.tokenFile" -> its value's spot), for
  /// the checks made after the parse (check_config).
  std::map<std::string, Spot, std::less<>> spots;
  /// Values still holding an example's placeholder ("REPLACE-ME-…"): check_config() reports
  /// them as errors.
  core::Diagnostics placeholders;
};

/// What a parse cannot see, each at its key's file:line:column:
/// - values left as an example's placeholder (errors);
/// - sync.rateLimitMax written beside a numeric sync.rateLimit, where it does nothing (a
///   warning);
/// - with `files`: the credential files (auth.tokenFile, auth.oauth2.clientSecretFile) must be
///   readable regular files, not empty, of at most 64 KiB; api.caFile must be readable; a
///   missing directory of state.path is a warning (systemd's StateDirectory= makes it).
/// Reads the credential files to check them, and keeps nothing of them.
core::Diagnostics check_config(const Config& cfg, bool files = true);

/// Parses a config file's text. `filename` is used in diagnostics and as the base for relative
/// paths. `${VAR}` is expanded in every string value through `env` (`$$` is a literal `$`).
/// Returns every error at once (warnings, if any, only come with errors).
core::Result<Config, core::Diagnostics> parse_config(std::string_view text,
                                                     std::string_view filename,
                                                     const EnvLookup& env);

/// Reads `path` and parses it; an unreadable file is one diagnostic naming it and strerror.
core::Result<Config, core::Diagnostics> load_config_file(const std::filesystem::path& path,
                                                         const EnvLookup& env);

/// A parsed http:// or https:// URL (no user info, no query or fragment).
struct HttpUrl {
  std::string scheme;  ///< "http" or "https"
  std::string host;    ///< lower case; IPv6 without brackets
  std::uint16_t port;  ///< explicit or the scheme's default
  std::string path;    ///< "" or starting with '/'
};
/// Parses `text` as an http(s) URL; the error says what is wrong with it.
core::Result<HttpUrl, std::string> parse_http_url(std::string_view text);

/// True for the hosts an http:// URL may name without api.allowInsecureHttp: "localhost" and
/// the loopback addresses 127.0.0.0/8 and ::1 (any spelling of it, and ::ffff:127.x.y.z).
/// `host` is as HttpUrl holds it: lower case, IPv6 without brackets. Names that merely
/// resolve to loopback ("ip6-localhost", "127.0.0.1.nip.io") are not loopback here.
bool is_loopback_host(std::string_view host);

/// A "host:port" listen address ("127.0.0.1:9464", "[::1]:9464", "localhost:0").
struct ListenAddress {
  std::string host;
  std::uint16_t port;
};
core::Result<ListenAddress, std::string> parse_listen_address(std::string_view text);

}  // namespace thingsync::config
