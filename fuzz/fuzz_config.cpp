// Fuzzes config loading from text: config::parse_config, plus the URL and listen-address
// parsers it validates with (fed the raw input as well: they are cheap).
// Invariants: nothing throws; a failure carries at least one error and every diagnostic points
// inside the input, in order; a success holds only values the header promises (positive
// durations, 1..1024 concurrency, exactly one auth method, a base URL that re-parses, ...).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/core/device_id.hpp"

namespace {

namespace config = thingsync::config;
constexpr std::string_view kFile = "/etc/thingsync/config.yaml";

// A fixed environment: a few set variables (one empty, one holding '$' and braces, so that a
// value is never expanded twice), the rest unset.
std::optional<std::string> env(std::string_view name) {
  if (name == "CREDENTIALS_DIRECTORY") return "/run/credentials/thingsync.service";
  if (name == "HOME") return "/home/thingsync";
  if (name == "PORT") return "9464";
  if (name == "URL") return "https://api.kpnthings.com/";
  if (name == "EMPTY") return "";
  if (name == "TRICKY") return "${HOME}$$";
  return std::nullopt;
}

void check_url(std::string_view input) {
  const auto u = config::parse_http_url(input);
  if (!u) {
    FUZZ_CHECK(!u.error().empty(), "a URL rejected without a reason");
    return;
  }
  FUZZ_CHECK(u->scheme == "http" || u->scheme == "https", u->scheme);
  FUZZ_CHECK(u->port != 0, "port 0 accepted");
  FUZZ_CHECK(!u->host.empty(), "empty host accepted");
  FUZZ_CHECK(u->path.empty() || u->path.front() == '/', u->path);
}

void check_listen(std::string_view input) {
  const auto a = config::parse_listen_address(input);
  if (!a) FUZZ_CHECK(!a.error().empty(), "a listen address rejected without a reason");
}

void check_parsed_config(const config::Config& c) {
  FUZZ_CHECK(c.file == kFile, c.file);
  FUZZ_CHECK(c.api.timeout.count() > 0, "api.timeout not positive");
  const auto base = config::parse_http_url(c.api.base_url);
  FUZZ_CHECK(base.ok(), "api.baseUrl does not re-parse: " + c.api.base_url);
  FUZZ_CHECK(c.api.base_url.back() != '/', "api.baseUrl ends in '/': " + c.api.base_url);
  FUZZ_CHECK(c.auth.token_file.has_value() != c.auth.oauth2.has_value(),
             "not exactly one of auth.tokenFile and auth.oauth2");
  if (c.auth.token_file) FUZZ_CHECK(!c.auth.token_file->empty(), "empty auth.tokenFile");
  if (c.auth.oauth2) {
    FUZZ_CHECK(config::parse_http_url(c.auth.oauth2->token_url).ok(), c.auth.oauth2->token_url);
    FUZZ_CHECK(!c.auth.oauth2->client_id.empty() && !c.auth.oauth2->audience.empty() &&
                   !c.auth.oauth2->client_secret_file.empty(),
               "an empty auth.oauth2 value");
  }
  FUZZ_CHECK(!c.desired_state_path.empty(), "empty desiredState.path");
  if (c.scope_client_id) {
    FUZZ_CHECK(thingsync::core::is_uuid(*c.scope_client_id), *c.scope_client_id);
    for (char ch : *c.scope_client_id) FUZZ_CHECK(!(ch >= 'A' && ch <= 'Z'), *c.scope_client_id);
  }
  const auto& s = c.sync;
  FUZZ_CHECK(s.poll_interval.count() > 0 && s.full_resync_interval.count() > 0 &&
                 s.modified_since_overlap.count() >= 0,
             "a sync interval out of range");
  FUZZ_CHECK(s.concurrency >= 1 && s.concurrency <= 1024, std::to_string(s.concurrency));
  FUZZ_CHECK(std::isfinite(s.rate_limit) && s.rate_limit > 0, std::to_string(s.rate_limit));
  FUZZ_CHECK(std::isfinite(s.max_deletes.value) && s.max_deletes.value >= 0,
             std::to_string(s.max_deletes.value));
  FUZZ_CHECK(!c.state_path.empty(), "empty state.path");
  const auto listen = config::parse_listen_address(c.metrics_listen);
  FUZZ_CHECK(listen && listen->port == c.metrics_port && listen->host == c.metrics_host,
             "metrics.listen does not re-parse to its host and port: " + c.metrics_listen);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = thingsync::fuzz::as_text(data, size);
  check_url(text);
  check_listen(text);

  const auto r = config::parse_config(text, kFile, env);
  if (r) {
    check_parsed_config(*r);
  } else {
    const auto& diags = r.error();
    FUZZ_CHECK(thingsync::core::has_errors(diags), "a failure without an error");
    thingsync::fuzz::check_diagnostics(diags, text, kFile,
                                       thingsync::fuzz::yaml_reads_as_utf8(text));
  }
  return 0;
}
