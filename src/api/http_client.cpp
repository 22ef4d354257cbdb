// The only Beast translation unit of the api module: connections, TLS, proxy, timeouts.
#include "thingsync/api/http.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "fail.hpp"
#include "log.hpp"

namespace thingsync::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kAwait = net::use_awaitable;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

bool idempotent(std::string_view method) {
  return method == "GET" || method == "PUT" || method == "DELETE" || method == "HEAD";
}

detail::Fail<HttpFailure> failure(ErrorKind kind, Sent sent, std::string title,
                                  std::string detail) {
  HttpFailure f;
  f.error.kind = kind;
  f.error.title = std::move(title);
  f.error.detail = std::move(detail);
  f.sent = sent;
  return {std::move(f)};
}

// One keep-alive connection: plain TCP or TLS over TCP, possibly tunnelled through a proxy.
struct Connection {
  std::string origin;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool reused = false;

  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *plain; }
  void close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }
  // The peer closed (or sent junk on) an idle connection: reusing it would fail.
  bool looks_dead() {
    auto& sock = lowest().socket();
    if (!sock.is_open()) return true;
    char byte;
    const auto n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
};

}  // namespace

std::optional<std::string_view> HttpResponse::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

void apply_proxy_environment(HttpOptions& opts) {
  auto env = [](const char* lower, const char* upper) -> std::string {
    if (const char* v = std::getenv(lower); v && *v) return v;
    if (const char* v = std::getenv(upper); v && *v) return v;
    return {};
  };
  if (opts.proxy.empty()) opts.proxy = env("https_proxy", "HTTPS_PROXY");
  if (opts.no_proxy.empty()) opts.no_proxy = env("no_proxy", "NO_PROXY");
}

struct HttpClient::Impl {
  Impl(net::any_io_executor ex, HttpOptions opts)
      : ex_(std::move(ex)), opts_(std::move(opts)), ctx_(ssl::context::tls_client) {
    ctx_.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_min_proto_version(ctx_.native_handle(), TLS1_2_VERSION);
    if (opts_.ca_file.empty()) {
      ctx_.set_default_verify_paths();
    } else {
      beast::error_code ec;
      ctx_.load_verify_file(opts_.ca_file, ec);
      if (ec) ca_error_ = "cannot load CA file " + opts_.ca_file + ": " + ec.message();
    }
    if (!opts_.proxy.empty()) {
      proxy_ = Url::parse(opts_.proxy.find("://") == std::string::npos ? "http://" + opts_.proxy
                                                                        : opts_.proxy);
      if (!proxy_ || proxy_->tls()) {
        proxy_error_ = "unsupported proxy URL (want http://host:port)";
        proxy_.reset();
      }
    }
  }

  net::awaitable<core::Result<HttpResponse, HttpFailure>> send(HttpRequest req);
  net::awaitable<core::Result<std::unique_ptr<Connection>, HttpFailure>> connect(
      const Url& url, Clock::time_point deadline);
  net::awaitable<core::Result<tcp::resolver::results_type, HttpFailure>> resolve(
      std::string host, std::uint16_t port, Clock::time_point deadline);
  template <class Stream>
  net::awaitable<core::Result<HttpResponse, HttpFailure>> exchange(
      Stream& stream, Connection& conn, const HttpRequest& req, Clock::time_point deadline);

  std::unique_ptr<Connection> take_idle(const std::string& origin) {
    auto it = idle_.find(origin);
    if (it == idle_.end()) return nullptr;
    auto& pool = it->second;
    while (!pool.empty()) {
      auto conn = std::move(pool.back());
      pool.pop_back();
      if (!conn->looks_dead()) {
        conn->reused = true;
        return conn;
      }
      conn->close();
    }
    return nullptr;
  }
  void give_back(std::unique_ptr<Connection> conn) {
    auto& pool = idle_[conn->origin];
    if (stopped_ || pool.size() >= opts_.max_idle_per_origin) {
      conn->close();
      return;
    }
    pool.push_back(std::move(conn));
  }

  net::any_io_executor ex_;
  HttpOptions opts_;
  ssl::context ctx_;
  std::string ca_error_;
  std::optional<Url> proxy_;
  std::string proxy_error_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
  std::unordered_set<Connection*> busy_;
  std::size_t opened_ = 0;
  bool stopped_ = false;
};

namespace {

// Cancels a resolver when the deadline passes. The state is shared with the timer's handler,
// which may run after the coroutine has moved on.
struct ResolveState {
  explicit ResolveState(const net::any_io_executor& ex) : resolver(ex), timer(ex) {}
  tcp::resolver resolver;
  net::steady_timer timer;
  bool timed_out = false;
};

std::string tls_error_text(SSL* ssl, const beast::error_code& ec) {
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  return ec.message();
}

}  // namespace

net::awaitable<core::Result<tcp::resolver::results_type, HttpFailure>> HttpClient::Impl::resolve(
    std::string host, std::uint16_t port, Clock::time_point deadline) {
  auto state = std::make_shared<ResolveState>(ex_);
  state->timer.expires_at(deadline);
  state->timer.async_wait([state](const beast::error_code& ec) {
    if (!ec) {
      state->timed_out = true;
      state->resolver.cancel();
    }
  });
  beast::error_code ec;
  auto results = co_await state->resolver.async_resolve(
      host, std::to_string(port), net::redirect_error(kAwait, ec));
  state->timer.cancel();
  if (state->timed_out) {
    co_return failure(ErrorKind::kTimeout, Sent::kNo, "timeout", "resolving " + host + " timed out");
  }
  if (ec) {
    co_return failure(ErrorKind::kTransport, Sent::kNo, "cannot resolve host",
                      host + ": " + ec.message());
  }
  co_return results;
}

net::awaitable<core::Result<std::unique_ptr<Connection>, HttpFailure>> HttpClient::Impl::connect(
    const Url& url, Clock::time_point deadline) {
  const bool via_proxy = proxy_ && !no_proxy_matches(opts_.no_proxy, url.host);
  const Url& hop = via_proxy ? *proxy_ : url;
  auto endpoints = co_await resolve(hop.host, hop.port, deadline);
  if (!endpoints) co_return detail::fail(endpoints.error());

  auto conn = std::make_unique<Connection>();
  conn->origin = url.origin();
  auto tcp_stream = std::make_unique<beast::tcp_stream>(ex_);
  beast::error_code ec;
  tcp_stream->expires_at(deadline);
  co_await tcp_stream->async_connect(*endpoints, net::redirect_error(kAwait, ec));
  if (ec == beast::error::timeout) {
    co_return failure(ErrorKind::kTimeout, Sent::kNo, "timeout",
                      "connecting to " + hop.authority() + " timed out");
  }
  if (ec) {
    co_return failure(ErrorKind::kTransport, Sent::kNo, "connect failed",
                      hop.authority() + ": " + ec.message());
  }
  tcp_stream->socket().set_option(tcp::no_delay(true), ec);
  ++opened_;

  if (via_proxy) {
    http::request<http::empty_body> creq{http::verb::connect, url.authority(), 11};
    creq.set(http::field::host, url.authority());
    creq.set(http::field::user_agent, opts_.user_agent);
    tcp_stream->expires_at(deadline);
    co_await http::async_write(*tcp_stream, creq, net::redirect_error(kAwait, ec));
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // a 2xx answer to CONNECT has no body: the tunnel starts right after
    if (!ec) {
      co_await http::async_read(*tcp_stream, conn->buffer, parser, net::redirect_error(kAwait, ec));
    }
    if (ec) {
      co_return failure(ec == beast::error::timeout ? ErrorKind::kTimeout : ErrorKind::kTransport,
                        Sent::kNo, "proxy failed",
                        "CONNECT " + url.authority() + " via " + hop.authority() + ": " +
                            ec.message());
    }
    const auto status = parser.get().result_int();
    if (status / 100 != 2 || conn->buffer.size() != 0) {
      co_return failure(ErrorKind::kConfig, Sent::kNo, "proxy refused the tunnel",
                        "CONNECT " + url.authority() + " via " + hop.authority() + ": HTTP " +
                            std::to_string(status));
    }
  }

  if (!url.tls()) {
    conn->plain = std::move(tcp_stream);
    co_return conn;
  }
  conn->tls = std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(*tcp_stream), ctx_);
  SSL* ssl_handle = conn->tls->native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_literal(url.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl_handle, url.host.c_str());  // SNI: not for IP literals
    X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
  }
  conn->tls->next_layer().expires_at(deadline);
  co_await conn->tls->async_handshake(ssl::stream_base::client, net::redirect_error(kAwait, ec));
  if (ec == beast::error::timeout) {
    co_return failure(ErrorKind::kTimeout, Sent::kNo, "timeout",
                      "TLS handshake with " + url.authority() + " timed out");
  }
  if (ec) {
    co_return failure(ErrorKind::kTls, Sent::kNo, "TLS handshake failed",
                      url.authority() + ": " + tls_error_text(ssl_handle, ec));
  }
  co_return conn;
}

template <class Stream>
net::awaitable<core::Result<HttpResponse, HttpFailure>> HttpClient::Impl::exchange(
    Stream& stream, Connection& conn, const HttpRequest& req, Clock::time_point deadline) {
  http::request<http::string_body> msg;
  msg.method(http::string_to_verb(req.method));
  if (msg.method() == http::verb::unknown) msg.method_string(req.method);
  msg.target(req.url.target);
  msg.version(11);
  const bool default_port = req.url.port == (req.url.tls() ? 443 : 80);
  msg.set(http::field::host, default_port ? req.url.host : req.url.authority());
  msg.set(http::field::user_agent, opts_.user_agent);
  for (const auto& h : req.headers) msg.set(h.name, h.value);
  if (req.bearer) msg.set(http::field::authorization, "Bearer " + req.bearer->reveal());
  if (!req.content_type.empty()) msg.set(http::field::content_type, req.content_type);
  msg.body() = req.body;
  msg.keep_alive(true);
  msg.prepare_payload();

  auto& lowest = conn.lowest();
  beast::error_code ec;
  lowest.expires_at(deadline);
  co_await http::async_write(stream, msg, net::redirect_error(kAwait, ec));
  const std::string where = req.method + " " + req.url.origin() + std::string(req.url.path());
  if (ec) {
    const bool timeout = ec == beast::error::timeout;
    co_return failure(timeout ? ErrorKind::kTimeout : ErrorKind::kTransport, Sent::kMaybe,
                      timeout ? "timeout" : "connection lost while sending",
                      where + ": " + ec.message());
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(opts_.max_response_bytes);
  lowest.expires_at(deadline);
  // Header first, so that an announced oversized body fails before a byte of it is read.
  co_await http::async_read_header(stream, conn.buffer, parser, net::redirect_error(kAwait, ec));
  if (!ec && parser.content_length() && *parser.content_length() > opts_.max_response_bytes) {
    ec = http::error::body_limit;
  }
  if (!ec && !parser.is_done()) {
    co_await http::async_read(stream, conn.buffer, parser, net::redirect_error(kAwait, ec));
  }
  if (ec == http::error::body_limit) {
    co_return failure(ErrorKind::kProtocol, Sent::kYes, "response too large",
                      where + ": body exceeds " + std::to_string(opts_.max_response_bytes) +
                          " bytes");
  }
  if (ec == beast::error::timeout) {
    co_return failure(ErrorKind::kTimeout, Sent::kYes, "timeout",
                      where + ": no complete answer within " +
                          std::to_string(opts_.timeout.count()) + "ms");
  }
  if (ec) {
    // Nothing came back at all: the server may have dropped the request unread.
    const Sent sent = parser.got_some() ? Sent::kYes : Sent::kMaybe;
    co_return failure(ErrorKind::kTransport, sent, "connection lost while waiting for the answer",
                      where + ": " + ec.message());
  }
  auto res = parser.release();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  out.body = std::move(res.body());
  if (!res.keep_alive()) conn.close();
  co_return out;
}

net::awaitable<core::Result<HttpResponse, HttpFailure>> HttpClient::Impl::send(HttpRequest req) {
  if (stopped_) co_return failure(ErrorKind::kCancelled, Sent::kNo, "client stopped", "");
  if (!ca_error_.empty()) co_return failure(ErrorKind::kConfig, Sent::kNo, "TLS setup", ca_error_);
  if (!proxy_error_.empty()) {
    co_return failure(ErrorKind::kConfig, Sent::kNo, "proxy setup", proxy_error_);
  }
  const auto deadline = Clock::now() + opts_.timeout;
  const std::string origin = req.url.origin();
  for (int round = 0;; ++round) {
    auto conn = take_idle(origin);
    if (!conn) {
      auto fresh = co_await connect(req.url, deadline);
      if (!fresh) co_return detail::fail(fresh.error());
      conn = std::move(fresh.value());
      if (stopped_) {
        conn->close();
        co_return failure(ErrorKind::kCancelled, Sent::kNo, "client stopped", "");
      }
    }
    Connection* raw = conn.get();
    busy_.insert(raw);
    // Not a ?: of two co_awaits: GCC 12 destroys the temporaries of such an expression twice.
    core::Result<HttpResponse, HttpFailure> result = detail::fail(HttpFailure{});
    if (conn->tls) {
      result = co_await exchange(*conn->tls, *conn, req, deadline);
    } else {
      result = co_await exchange(*conn->plain, *conn, req, deadline);
    }
    busy_.erase(raw);
    if (result) {
      if (conn->lowest().socket().is_open()) give_back(std::move(conn));
      co_return std::move(result);
    }
    conn->close();
    if (stopped_) co_return failure(ErrorKind::kCancelled, result.error().sent, "client stopped", "");
    // A keep-alive connection the server closed just as we reused it: nothing was processed
    // if nothing came back. Safe to repeat only for idempotent methods.
    const bool stale = conn->reused && result.error().error.kind == ErrorKind::kTransport &&
                       result.error().sent == Sent::kMaybe;
    if (stale && round == 0 && idempotent(req.method)) {
      detail::log()->debug("retrying on a fresh connection after a stale keep-alive origin={}",
                           origin);
      continue;
    }
    co_return std::move(result);
  }
}

HttpClient::HttpClient(net::any_io_executor ex, HttpOptions options)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(options))) {}
HttpClient::~HttpClient() { shutdown(); }

net::awaitable<core::Result<HttpResponse, HttpFailure>> HttpClient::send(HttpRequest request) {
  return impl_->send(std::move(request));
}

void HttpClient::shutdown() {
  impl_->stopped_ = true;
  for (auto& [origin, pool] : impl_->idle_) {
    for (auto& c : pool) c->close();
  }
  impl_->idle_.clear();
  for (auto* c : impl_->busy_) c->close();
}

const HttpOptions& HttpClient::options() const { return impl_->opts_; }
std::size_t HttpClient::connections_opened() const { return impl_->opened_; }

}  // namespace thingsync::api
