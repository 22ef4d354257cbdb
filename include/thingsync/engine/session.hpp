#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "thingsync/api/bindings.hpp"
#include "thingsync/api/client.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/core/result.hpp"
#include "thingsync/obs/metrics.hpp"

namespace thingsync::engine {

/// The API side of one command or daemon: the token provider, the client (with its shared
/// rate limit and concurrency) and the bindings operations, built from the config file.
class Session {
 public:
  /// `metrics` may be null; it must outlive the session. `on_answer`, when set, is called for
  /// every answer the API gives (the daemon's sign of progress for the watchdog). With
  /// `alive_every` > 0 (half the watchdog's timeout), it is also called that often while a
  /// call waits (a backoff, a Retry-After pause), and no request may take longer than that
  /// (api.timeout is cut to it, with a warning), so a hung API never starves the watchdog.
  static core::Result<std::unique_ptr<Session>, std::string> create(
      boost::asio::any_io_executor ex, const config::Config& config, obs::Metrics* metrics,
      std::function<void()> on_answer = {},
      std::chrono::milliseconds alive_every = std::chrono::milliseconds(0));

  api::ApiClient& client() { return *client_; }
  api::BindingsApi& bindings() { return *bindings_; }
  api::TokenProvider& auth() { return *auth_; }
  /// The list query of everything in scope (scope.clientId, large pages, oldest first).
  api::ListQuery scope_query() const;

 private:
  Session() = default;
  std::shared_ptr<api::TokenProvider> auth_;
  std::unique_ptr<api::ApiClient> client_;
  std::unique_ptr<api::BindingsApi> bindings_;
  std::optional<std::string> scope_client_id_;
};

}  // namespace thingsync::engine
