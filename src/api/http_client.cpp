// The only Beast translation unit of the api module: connections, TLS, proxy, timeouts.
#include "thingsync/api/http.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <type_traits>

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "fail.hpp"
#include "log.hpp"
#include "wipe.hpp"

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
// Beast's tcp_stream is used to connect (its timeouts cover connect, CONNECT and the TLS
// handshake); exchanges run on the bare socket under HttpClient's deadline sweep instead of
// tcp_stream's timer per read and write.
struct Connection {
  std::size_t pool = 0;  // index into HttpClient::Impl::pools_
  std::unique_ptr<tcp::socket> plain;
  std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  // The request head being sent; its capacity is kept between requests. It holds the bearer
  // token while a request goes out: wiped once written, and when the connection goes.
  std::string head;
  Clock::time_point deadline{};
  Clock::time_point idle_since{};
  std::size_t busy_index = 0;  // position in HttpClient::Impl::busy_ while busy
  bool reused = false;
  bool timed_out = false;  // the deadline sweep closed it

  Connection() = default;
  ~Connection() { detail::wipe(head); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  tcp::socket& socket() { return tls ? tls->next_layer().socket() : *plain; }
  void close() {
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }
  // The peer closed (or sent junk on) an idle connection: reusing it would fail.
  bool looks_dead() {
    auto& sock = socket();
    if (!sock.is_open()) return true;
    char byte;
    const auto n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
};

// Beast's parser straight into an HttpResponse: no basic_fields (one allocation per header)
// in between.
class ResponseParser final : public http::basic_parser<false> {
 public:
  explicit ResponseParser(HttpResponse& out) : out_(out) {}

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
    out_.status = code;
    out_.headers.reserve(8);
  }
  void on_field_impl(http::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    out_.headers.push_back({std::string(name), std::string(value)});
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    // The parser has checked the announced length against body_limit already.
    if (length) out_.body.reserve(static_cast<std::size_t>(*length));
  }
  std::size_t on_body_impl(beast::string_view data, beast::error_code&) override {
    out_.body.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data,
                                 beast::error_code&) override {
    out_.body.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  HttpResponse& out_;
};

// "host" or "[v6]", then ":port" unless it is the scheme's default: the Host header.
void append_host(std::string& out, const Url& url) {
  const bool v6 = url.host.find(':') != std::string::npos;
  if (v6) out += '[';
  out += url.host;
  if (v6) out += ']';
  if (url.port != (url.tls() ? 443 : 80)) {
    char digits[8];
    const auto end = std::to_chars(digits, digits + sizeof digits, url.port).ptr;
    out.append(":").append(digits, end);
  }
}

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
      : ex_(std::move(ex)), opts_(std::move(opts)), sweep_(ex_) {
    // A CA file that was named is checked at once; the system's store (its bundle is parsed
    // whole: ~1 MB of heap) is loaded with the first https connection, and never for an
    // http:// API such as a local simulator.
    if (!opts_.ca_file.empty()) tls_context();
    if (!opts_.proxy.empty()) {
      proxy_ = Url::parse(opts_.proxy.find("://") == std::string::npos ? "http://" + opts_.proxy
                                                                        : opts_.proxy);
      if (!proxy_ || proxy_->tls()) {
        proxy_error_ = "unsupported proxy URL (want http://host:port)";
        proxy_.reset();
      }
    }
  }

  net::awaitable<core::Result<HttpResponse, HttpFailure>> send(const HttpRequest& req);
  net::awaitable<core::Result<std::unique_ptr<Connection>, HttpFailure>> connect(
      const Url& url, Clock::time_point deadline);
  net::awaitable<core::Result<tcp::resolver::results_type, HttpFailure>> resolve(
      std::string host, std::uint16_t port, Clock::time_point deadline);
  template <class Stream>
  net::awaitable<core::Result<HttpResponse, HttpFailure>> exchange(Stream& stream, Connection& conn,
                                                                   const HttpRequest& req);
  void write_head(std::string& out, const HttpRequest& req) const;

  // Idle connections per origin; a client talks to one or two origins, so a short vector.
  struct Pool {
    std::string scheme;
    std::string host;
    std::uint16_t port = 0;
    std::vector<std::unique_ptr<Connection>> idle;
  };
  std::size_t pool_for(const Url& url) {
    for (std::size_t i = 0; i < pools_.size(); ++i) {
      const auto& p = pools_[i];
      if (p.port == url.port && p.host == url.host && p.scheme == url.scheme) return i;
    }
    pools_.push_back(Pool{url.scheme, url.host, url.port, {}});
    return pools_.size() - 1;
  }

  // A connection idle for less than this is reused without asking the kernel whether the peer
  // closed it (a syscall per request otherwise): servers close idle keep-alive connections
  // after seconds. A GET/PUT/DELETE that hits one anyway is re-sent on another connection.
  static constexpr auto kTrustIdleFor = std::chrono::seconds(1);

  // `check`: peek at every candidate (a POST must not go out on a connection the peer closed).
  std::unique_ptr<Connection> take_idle(std::size_t pool, bool check, Clock::time_point now) {
    auto& idle = pools_[pool].idle;
    while (!idle.empty()) {
      auto conn = std::move(idle.back());
      idle.pop_back();
      const bool peek = check || now - conn->idle_since >= kTrustIdleFor;
      if (!peek || !conn->looks_dead()) {
        conn->reused = true;
        return conn;
      }
      conn->close();
    }
    return nullptr;
  }
  void give_back(std::unique_ptr<Connection> conn, Clock::time_point now) {
    auto& idle = pools_[conn->pool].idle;
    if (stopped_ || idle.size() >= opts_.max_idle_per_origin) {
      conn->close();
      return;
    }
    conn->idle_since = now;
    idle.push_back(std::move(conn));
  }

  // Deadlines of exchanges in progress: one timer for the whole client, armed at the earliest
  // deadline, closes the connections whose deadline has passed. Cheaper than arming and
  // cancelling a timer per read and write; cancelled when nothing is in flight, so that an
  // idle client leaves its io_context without work.
  void begin_busy(Connection& conn, Clock::time_point deadline) {
    conn.deadline = deadline;
    conn.timed_out = false;
    conn.busy_index = busy_.size();
    busy_.push_back(&conn);
    if (!sweep_armed_ || deadline < sweep_at_) arm_sweep(deadline);
  }
  void end_busy(Connection& conn) {
    Connection* last = busy_.back();
    busy_[conn.busy_index] = last;
    last->busy_index = conn.busy_index;
    busy_.pop_back();
    if (busy_.empty() && sweep_armed_) {
      sweep_armed_ = false;
      ++sweep_generation_;
      sweep_.cancel();
    }
  }
  // A connection in busy_ for the lifetime of this object.
  struct Busy {
    Busy(Impl& impl, Connection& conn, Clock::time_point deadline) : impl_(impl), conn_(conn) {
      impl_.begin_busy(conn_, deadline);
    }
    ~Busy() { impl_.end_busy(conn_); }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;
    Impl& impl_;
    Connection& conn_;
  };
  void arm_sweep(Clock::time_point at) {
    sweep_armed_ = true;
    sweep_at_ = at;
    sweep_.expires_at(at);
    sweep_.async_wait([this, alive = std::weak_ptr<void>(alive_),
                       generation = ++sweep_generation_](const beast::error_code& ec) {
      if (ec || alive.expired() || generation != sweep_generation_) return;
      sweep();
    });
  }
  void sweep() {
    sweep_armed_ = false;
    const auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto* conn : busy_) {
      if (conn->timed_out) continue;
      if (conn->deadline <= now) {
        conn->timed_out = true;
        conn->close();  // its exchange fails at once and reports kTimeout
      } else {
        next = std::min(next, conn->deadline);
      }
    }
    if (next != Clock::time_point::max()) arm_sweep(next);
  }

  // The TLS client context, made on first use; null (and ca_error_ says why) when its CA
  // certificates do not load.
  ssl::context* tls_context() {
    if (ctx_ || !ca_error_.empty()) return ctx_ ? &*ctx_ : nullptr;
    auto& ctx = ctx_.emplace(ssl::context::tls_client);
    ctx.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (opts_.ca_file.empty()) {
      ctx.set_default_verify_paths(ec);
      if (ec) ca_error_ = "cannot load the system's CA certificates: " + ec.message();
    } else {
      ctx.load_verify_file(opts_.ca_file, ec);
      if (ec) ca_error_ = "cannot load CA file " + opts_.ca_file + ": " + ec.message();
    }
    if (!ca_error_.empty()) ctx_.reset();
    return ctx_ ? &*ctx_ : nullptr;
  }

  net::any_io_executor ex_;
  HttpOptions opts_;
  std::optional<ssl::context> ctx_;
  std::string ca_error_;
  std::optional<Url> proxy_;
  std::string proxy_error_;
  std::vector<Pool> pools_;
  std::vector<Connection*> busy_;
  net::steady_timer sweep_;
  Clock::time_point sweep_at_{};
  std::uint64_t sweep_generation_ = 0;
  bool sweep_armed_ = false;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // expires with this object
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
  // Plain http:// to loopback never goes through a proxy: the proxy would see the request,
  // bearer token included, in clear text (and reach its own loopback, not ours). https:// is
  // end to end through CONNECT, as NO_PROXY says.
  const bool via_proxy = proxy_ && !(url.scheme == "http" && is_loopback_host(url.host)) &&
                         !no_proxy_matches(opts_.no_proxy, url.host);
  const Url& hop = via_proxy ? *proxy_ : url;
  auto endpoints = co_await resolve(hop.host, hop.port, deadline);
  if (!endpoints) co_return detail::fail(endpoints.error());

  auto conn = std::make_unique<Connection>();
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
    conn->plain = std::make_unique<tcp::socket>(tcp_stream->release_socket());
    // exchange() tries to write without suspending first.
    conn->plain->non_blocking(true, ec);
    co_return conn;
  }
  ssl::context* ctx = tls_context();
  if (!ctx) co_return failure(ErrorKind::kConfig, Sent::kNo, "TLS setup", ca_error_);
  conn->tls = std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(*tcp_stream), *ctx);
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
  conn->tls->next_layer().expires_never();  // from here on the deadline sweep applies
  co_return conn;
}

void HttpClient::Impl::write_head(std::string& out, const HttpRequest& req) const {
  // Room for all of it first: an append that grows the string would free a buffer holding
  // part of the token without wiping it. kFixed covers the literal text, the brackets and
  // port of the host and the digits of the length.
  constexpr std::size_t kFixed = 160;
  std::size_t size = kFixed + req.method.size() + req.url.target.size() + req.url.host.size() +
                     opts_.user_agent.size() + req.content_type.size();
  for (const auto& h : req.headers) size += h.name.size() + h.value.size() + 4;
  if (req.bearer) size += req.bearer->reveal().size();
  detail::wipe(out);
  out.reserve(size);
  out.append(req.method).append(" ").append(req.url.target).append(" HTTP/1.1\r\nHost: ");
  append_host(out, req.url);
  out.append("\r\nUser-Agent: ").append(opts_.user_agent).append("\r\n");
  for (const auto& h : req.headers) out.append(h.name).append(": ").append(h.value).append("\r\n");
  if (req.bearer) out.append("Authorization: Bearer ").append(req.bearer->reveal()).append("\r\n");
  if (!req.content_type.empty()) {
    out.append("Content-Type: ").append(req.content_type).append("\r\n");
  }
  // As Beast's prepare_payload(): a length for any body, and 0 for an empty POST/PUT/OPTIONS.
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "OPTIONS") {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, req.body.size()).ptr;
    out.append("Content-Length: ").append(digits, end).append("\r\n");
  }
  out.append("\r\n");
}

template <class Stream>
net::awaitable<core::Result<HttpResponse, HttpFailure>> HttpClient::Impl::exchange(
    Stream& stream, Connection& conn, const HttpRequest& req) {
  auto where = [&req] { return req.method + " " + req.url.origin() + std::string(req.url.path()); };
  write_head(conn.head, req);
  const std::array<net::const_buffer, 2> out{net::buffer(conn.head), net::buffer(req.body)};
  const std::size_t total = conn.head.size() + req.body.size();
  beast::error_code ec;
  std::size_t written = 0;
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    // A request almost always fits the socket's send buffer: write it without suspending.
    written = stream.write_some(out, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) ec = {};
  }
  if (!ec && written < total) {
    beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(out);
    rest.consume(written);
    co_await net::async_write(stream, rest, net::redirect_error(kAwait, ec));
  }
  detail::wipe(conn.head);  // sent or failed: the token is not needed here any more
  if (ec) {
    if (conn.timed_out) {
      co_return failure(ErrorKind::kTimeout, Sent::kMaybe, "timeout",
                        where() + ": not sent within " + std::to_string(opts_.timeout.count()) +
                            "ms");
    }
    co_return failure(ErrorKind::kTransport, Sent::kMaybe, "connection lost while sending",
                      where() + ": " + ec.message());
  }

  HttpResponse res;
  ResponseParser parser(res);
  parser.eager(true);
  // An announced oversized body fails with the header, before a byte of it is read.
  parser.body_limit(opts_.max_response_bytes);
  auto& buffer = conn.buffer;
  constexpr std::size_t kReadSize = 64 * 1024;
  for (;;) {
    if (buffer.size() > 0) {
      buffer.consume(parser.put(buffer.data(), ec));
      if (ec == http::error::need_more) {
        ec = {};
      } else if (ec || parser.is_done()) {
        break;
      }
    }
    // The answer is rarely there the moment the request has left. Reading now would cost a
    // recv() that fails with EAGAIN; first let the handlers already queued (other connections'
    // answers) run, which gives the server that time.
    if (!parser.got_some()) co_await net::post(ex_, kAwait);
    std::size_t n = 0;
    n = co_await stream.async_read_some(buffer.prepare(kReadSize), net::redirect_error(kAwait, ec));
    buffer.commit(n);
    if (ec == net::error::eof) {
      // As Beast's read: the end of a body that runs until close, or a cut-off message.
      ec = {};
      if (parser.got_some()) {
        parser.put_eof(ec);
      } else {
        ec = http::error::end_of_stream;
      }
      break;
    }
    if (ec) break;
  }
  // An answer that was complete when the deadline passed still counts.
  const bool complete = !ec && parser.is_done();
  if (!complete && conn.timed_out) {
    co_return failure(ErrorKind::kTimeout, Sent::kYes, "timeout",
                      where() + ": no complete answer within " +
                          std::to_string(opts_.timeout.count()) + "ms");
  }
  if (ec == http::error::body_limit) {
    co_return failure(ErrorKind::kProtocol, Sent::kYes, "response too large",
                      where() + ": body exceeds " + std::to_string(opts_.max_response_bytes) +
                          " bytes");
  }
  if (ec) {
    // Nothing came back at all: the server may have dropped the request unread.
    const Sent sent = parser.got_some() ? Sent::kYes : Sent::kMaybe;
    co_return failure(ErrorKind::kTransport, sent, "connection lost while waiting for the answer",
                      where() + ": " + ec.message());
  }
  // Bytes after the answer were not asked for: such a connection is not reused.
  if (!parser.keep_alive() || buffer.size() > 0) conn.close();
  co_return res;
}

net::awaitable<core::Result<HttpResponse, HttpFailure>> HttpClient::Impl::send(
    const HttpRequest& req) {
  if (stopped_) co_return failure(ErrorKind::kCancelled, Sent::kNo, "client stopped", "");
  if (!ca_error_.empty() && req.url.tls()) {
    co_return failure(ErrorKind::kConfig, Sent::kNo, "TLS setup", ca_error_);
  }
  if (!proxy_error_.empty()) {
    co_return failure(ErrorKind::kConfig, Sent::kNo, "proxy setup", proxy_error_);
  }
  const auto started = Clock::now();
  const auto deadline = started + opts_.timeout;
  const std::size_t pool = pool_for(req.url);
  for (int round = 0;; ++round) {
    auto conn = take_idle(pool, round > 0 || !idempotent(req.method), started);
    if (!conn) {
      auto fresh = co_await connect(req.url, deadline);
      if (!fresh) co_return detail::fail(fresh.error());
      conn = std::move(fresh.value());
      conn->pool = pool;
      if (stopped_) {
        conn->close();
        co_return failure(ErrorKind::kCancelled, Sent::kNo, "client stopped", "");
      }
    }
    // Not a ?: of two co_awaits: GCC 12 destroys the temporaries of such an expression twice.
    core::Result<HttpResponse, HttpFailure> result = detail::fail(HttpFailure{});
    {
      Busy busy(*this, *conn, deadline);
      if (conn->tls) {
        result = co_await exchange(*conn->tls, *conn, req);
      } else {
        result = co_await exchange(*conn->plain, *conn, req);
      }
    }
    if (result) {
      if (conn->socket().is_open()) give_back(std::move(conn), started);
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
                           req.url.origin());
      continue;
    }
    co_return std::move(result);
  }
}

HttpClient::HttpClient(net::any_io_executor ex, HttpOptions options)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(options))) {}
HttpClient::~HttpClient() { shutdown(); }

net::awaitable<core::Result<HttpResponse, HttpFailure>> HttpClient::send(HttpRequest request) {
  const detail::WipeOnExit wipe_body(request.body);  // this copy's body may hold a secret
  auto result = co_await impl_->send(request);       // this frame keeps the request alive
  co_return result;
}

net::awaitable<core::Result<HttpResponse, HttpFailure>> HttpClient::send_borrowed(
    const HttpRequest& request) {
  return impl_->send(request);
}

void HttpClient::shutdown() {
  impl_->stopped_ = true;
  for (auto& pool : impl_->pools_) {
    for (auto& c : pool.idle) c->close();
    pool.idle.clear();
  }
  for (auto* c : impl_->busy_) c->close();
  impl_->sweep_armed_ = false;
  ++impl_->sweep_generation_;
  impl_->sweep_.cancel();
}

const HttpOptions& HttpClient::options() const { return impl_->opts_; }
std::size_t HttpClient::connections_opened() const { return impl_->opened_; }

}  // namespace thingsync::api
