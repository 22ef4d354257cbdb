// thingsync-sim: a local simulator of the Things MQTT Bindings API (see docs/simulator.md).
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "server.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/duration.hpp"

namespace {

using thingsync::sim::Options;

std::chrono::milliseconds duration_arg(const std::string& flag, const std::string& text) {
  const auto d = thingsync::core::parse_duration(text);
  if (!d) throw CLI::ValidationError(flag, "not a duration (use ms, s, m, h): " + text);
  return *d;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"thingsync-sim: a local simulator of the KPN Things MQTT Bindings API"};
  app.set_version_flag("--version", "thingsync-sim 0.1.0");
  std::string token_lifetime, latency, next_links = "absolute", duplicates = "allow";
  std::vector<std::string> oauth_clients;
  double rate_limit = 0, fail_rate = 0, drop_after_create = 0, fail_after_commit = 0;
  std::uint64_t random_seed = 0;

  app.add_option("--listen", o.listen, "HOST:PORT to listen on; port 0 picks a free port")
      ->capture_default_str();
  app.add_option("--token", o.token, "static bearer token accepted on /mqtt/*");
  app.add_option("--oauth-client", oauth_clients,
                 "CLIENT_ID:SECRET accepted by POST /oauth2/token (repeatable)");
  app.add_option("--token-lifetime", token_lifetime, "lifetime of issued tokens (default 1h)");
  app.add_option("--rate-limit", rate_limit, "requests per second on /mqtt/* before 429")
      ->check(CLI::NonNegativeNumber);
  int rate_limit_retry_after = 1;
  app.add_option("--rate-limit-retry-after", rate_limit_retry_after,
                 "1: a 429 of --rate-limit says Retry-After; 0: it says nothing")
      ->check(CLI::Range(0, 1))
      ->capture_default_str();
  app.add_option("--fail-rate", fail_rate, "probability of a random 500/503 on /mqtt/*")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--latency", latency, "delay added to each API response, e.g. 20ms");
  app.add_option("--drop-after-create", drop_after_create,
                 "probability that a create closes the connection without an answer")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fail-after-commit", fail_after_commit,
                 "probability that a committed write answers 502 or 504, as a gateway may")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--duplicates", duplicates,
                 "whether a second binding for one device is accepted or answered 409")
      ->check(CLI::IsMember({"allow", "reject"}))
      ->capture_default_str();
  app.add_option("--page-size", o.page_size, "default list page size")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--max-page-size", o.max_page_size, "largest limit accepted")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max-body", o.max_body, "largest request body in bytes (413 above)")
      ->capture_default_str();
  app.add_option("--next-links", next_links, "form of next/prev links")
      ->check(CLI::IsMember({"absolute", "relative"}))
      ->capture_default_str();
  app.add_option("--data", o.data_file, "persist the store in this JSON file");
  app.add_option("--seed", o.seed, "preload N generated bindings");
  app.add_option("--random-seed", random_seed, "seed for ids, tokens and faults (reproducible)");
  app.add_option("--client-id", o.client_id, "clientId (UUID) owning devices created by the API")
      ->capture_default_str();
  app.add_flag("--admin", o.admin, "enable the admin interface under /_sim/");
  app.add_option("--request-log", o.request_log, "append one JSON line per API request");
  app.add_option("--tls-cert", o.tls_cert, "PEM certificate chain: serve HTTPS");
  app.add_option("--tls-key", o.tls_key, "PEM private key for --tls-cert");

  try {
    app.parse(argc, argv);
    if (!token_lifetime.empty()) o.token_lifetime = duration_arg("--token-lifetime", token_lifetime);
    if (o.token_lifetime.count() <= 0) {
      throw CLI::ValidationError("--token-lifetime", "must be positive");
    }
    if (!latency.empty()) o.faults.latency_ms = duration_arg("--latency", latency).count();
    for (const auto& c : oauth_clients) {
      const auto colon = c.find(':');
      if (colon == std::string::npos || colon == 0) {
        throw CLI::ValidationError("--oauth-client", "expected CLIENT_ID:SECRET");
      }
      o.oauth_clients[c.substr(0, colon)] = c.substr(colon + 1);
    }
    if (!thingsync::core::is_uuid(o.client_id)) {
      throw CLI::ValidationError("--client-id", "must be a UUID");
    }
    if (o.page_size > o.max_page_size) {
      throw CLI::ValidationError("--page-size", "larger than --max-page-size");
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 64;
  }
  o.faults.rate_limit = rate_limit;
  o.faults.rate_limit_retry_after = rate_limit_retry_after != 0;
  o.faults.fail_rate = fail_rate;
  o.faults.drop_after_create = drop_after_create;
  o.faults.fail_after_commit = fail_after_commit;
  o.faults.duplicates = *thingsync::sim::parse_duplicates(duplicates);  // checked by IsMember
  o.relative_next_links = next_links == "relative";
  if (app.count("--random-seed") > 0) o.random_seed = random_seed;
  if (!o.token && o.oauth_clients.empty()) {
    std::fprintf(stderr,
                 "thingsync-sim: no --token and no --oauth-client: any bearer token is "
                 "accepted\n");
  }
  try {
    return thingsync::sim::run_server(std::move(o));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thingsync-sim: %s\n", e.what());
    return 1;
  }
}
