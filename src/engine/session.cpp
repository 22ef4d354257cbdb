#include "thingsync/engine/session.hpp"

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {

core::Result<std::unique_ptr<Session>, std::string> Session::create(
    boost::asio::any_io_executor ex, const config::Config& config, obs::Metrics* metrics,
    std::function<void()> on_answer, std::chrono::milliseconds alive_every) {
  using R = core::Result<std::unique_ptr<Session>, std::string>;
  std::unique_ptr<Session> s(new Session());
  s->scope_client_id_ = config.scope_client_id;

  api::HttpOptions http;
  http.timeout = config.api.timeout;
  if (alive_every.count() > 0 && http.timeout > alive_every) {
    obs::logger("daemon")->warn(
        "api.timeout {} ms is longer than half of the watchdog's timeout (WatchdogSec): "
        "requests are cut at {} ms, so that a hung API does not get the daemon killed",
        http.timeout.count(), alive_every.count());
    http.timeout = alive_every;
  }
  if (config.api.ca_file) http.ca_file = config.api.ca_file->string();
  http.max_idle_per_origin = config.sync.concurrency;
  api::apply_proxy_environment(http);

  if (config.auth.token_file) {
    s->auth_ = api::make_token_file_provider(*config.auth.token_file);
  } else if (config.auth.oauth2) {
    api::OAuth2Options o;
    o.token_url = config.auth.oauth2->token_url;
    o.client_id = config.auth.oauth2->client_id;
    o.client_secret_file = config.auth.oauth2->client_secret_file;
    o.audience = config.auth.oauth2->audience;
    o.http = http;
    s->auth_ = api::make_oauth2_provider(ex, std::move(o));
  } else {
    return R::failure("config has no auth (tokenFile or oauth2)");
  }

  api::ClientOptions opts;
  opts.base_url = config.api.base_url;
  opts.http = http;
  opts.concurrency = config.sync.concurrency;
  opts.rate_limit = config.sync.rate_limit;
  if (config.sync.rate_limit_auto) {
    core::AdaptiveRatePolicy adaptive;
    adaptive.max = config.sync.rate_limit_max;
    opts.adaptive = adaptive;
  }
  if (metrics) opts.on_rate = [metrics](double rate) { metrics->set_rate_limit(rate); };
  if (alive_every.count() > 0 && on_answer) {
    opts.waiting_tick = alive_every / 2;
    opts.on_waiting = on_answer;
  }
  if (metrics || on_answer) {
    opts.on_request = [metrics, on_answer = std::move(on_answer)](const api::RequestEvent& e) {
      if (on_answer) on_answer();
      if (!metrics) return;
      metrics->api_request(e.method, e.status, std::chrono::duration<double>(e.duration).count());
      if (e.rate_limited) metrics->rate_limited();
    };
  }
  auto client = api::ApiClient::create(ex, std::move(opts), s->auth_);
  if (!client) return R::failure("api.baseUrl: " + client.error().to_string());
  s->client_ = std::move(client.value());
  s->bindings_ = std::make_unique<api::BindingsApi>(*s->client_);
  return s;
}

api::ListQuery Session::scope_query() const {
  api::ListQuery q;
  q.client_id = scope_client_id_;
  q.limit = 1000;
  q.sort = "createdAt";  // a stable order: pages do not shift while bindings change
  return q;
}

}  // namespace thingsync::engine
