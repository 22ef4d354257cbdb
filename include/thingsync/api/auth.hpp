#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "thingsync/api/error.hpp"
#include "thingsync/api/http.hpp"
#include "thingsync/core/result.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::api {

/// Where bearer tokens come from. All methods run on the io_context thread.
class TokenProvider {
 public:
  virtual ~TokenProvider() = default;
  /// A token to send now, fetched or re-read when needed. Errors: kConfig (unreadable file,
  /// refused credentials) is permanent; kTransport/kTimeout/kServer are worth a retry.
  virtual net::awaitable<core::Result<core::Secret, ApiError>> token() = 0;
  /// The token token() would give now, when that needs no waiting (no fetch in flight or
  /// due); nullptr: call token(). Saves a coroutine and a copy per request. The pointer is
  /// valid until the next call of any method.
  virtual const core::Secret* ready_token() { return nullptr; }
  /// The server answered 401 to `rejected`: the next token() must not return it again
  /// without checking (re-read the file, fetch a new token).
  virtual void invalidate(const core::Secret& rejected) = 0;
  /// SIGHUP: forget cached state so that the next token() re-reads files.
  virtual void reload() {}
  /// A stop's grace ran out: a token request in flight is cut off (it fails), none is started.
  virtual void stop() {}
};

/// Always the same token (tests, `--token`).
std::shared_ptr<TokenProvider> make_static_token_provider(core::Secret token);

/// auth.tokenFile: the file's content, whitespace trimmed. The file is stat()ed on every
/// token() call and re-read when its mtime, size or inode changed (rotation without restart).
std::shared_ptr<TokenProvider> make_token_file_provider(std::filesystem::path file);

/// auth.oauth2: client-credentials grant (RFC 6749 4.4) with the form fields grant_type,
/// client_id, client_secret, audience.
struct OAuth2Options {
  std::string token_url;                     ///< https://…; its origin gets only the secret
  std::string client_id;
  std::filesystem::path client_secret_file;  ///< re-read on reload(); takes precedence
  core::Secret client_secret;                ///< used when client_secret_file is empty
  std::string audience;                      ///< omitted from the form when empty
  /// Refresh this long before expiry (at most a fifth of the token's lifetime).
  std::chrono::seconds refresh_margin{60};
  HttpOptions http;                          ///< timeout, CA, proxy for the token endpoint
};

/// Caches the token until shortly before `expires_in`; concurrent callers share one fetch
/// (single flight); invalidate() makes the next call fetch a new token.
std::shared_ptr<TokenProvider> make_oauth2_provider(net::any_io_executor ex, OAuth2Options options);

}  // namespace thingsync::api
