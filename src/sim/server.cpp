#include "server.hpp"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp forgets it

#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "service.hpp"

namespace thingsync::sim {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kDrainDeadline = std::chrono::seconds(5);

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

// One open connection, so that shutdown can close the idle ones.
struct Conn {
  beast::tcp_stream* stream = nullptr;
  bool busy = false;
};

struct Server {
  explicit Server(Options opts) : service(std::move(opts)) {}
  // Declared before ioc, so alive while ~io_context destroys suspended session frames.
  bool torn_down = false;
  std::unordered_set<Conn*> conns;
  net::io_context ioc{1};
  Service service;
  tcp::acceptor acceptor{ioc};
  std::optional<ssl::context> tls;
  net::steady_timer persist_timer{ioc};
  net::steady_timer drain_deadline{ioc};
  bool stopping = false;
};

void log_crash(const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "thingsync-sim: %s failed: %s\n", what, ex.what());
  }
}

// Registers a connection for the time of its session.
class ConnGuard {
 public:
  ConnGuard(Server& srv, Conn& conn) : srv_(srv), conn_(conn) { srv_.conns.insert(&conn_); }
  ~ConnGuard() {
    if (srv_.torn_down) return;
    srv_.conns.erase(&conn_);
    if (srv_.stopping && srv_.conns.empty()) srv_.drain_deadline.cancel();
  }
  ConnGuard(const ConnGuard&) = delete;
  ConnGuard& operator=(const ConnGuard&) = delete;

 private:
  Server& srv_;
  Conn& conn_;
};

// Reads requests in a loop and answers each before reading the next, so pipelined requests
// are answered in order.
template <typename Stream>
net::awaitable<void> serve(Server& srv, Stream& stream, Conn& conn, bool tls) {
  auto& lowest = beast::get_lowest_layer(stream);
  const Options& opts = srv.service.options();
  beast::flat_buffer buffer;
  for (;;) {
    beast::error_code ec;
    http::request_parser<http::string_body> parser;
    parser.body_limit(opts.max_body);
    conn.busy = false;
    if (srv.stopping) co_return;
    lowest.expires_after(kIdleTimeout);
    co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    conn.busy = true;
    const bool too_large = ec == http::error::body_limit;
    if (ec && !too_large) co_return;
    auto& msg = parser.get();
    const auto ct = msg.find(http::field::content_type);
    const Request req{sv(msg.method_string()),
                      sv(msg.target()),
                      sv(msg[http::field::host]),
                      sv(msg[http::field::authorization]),
                      ct == msg.end() ? std::string_view() : sv(ct->value()),
                      too_large ? std::string_view() : std::string_view(msg.body()),
                      ct != msg.end(),
                      too_large};
    Response res = srv.service.handle(req, tls);
    if (res.delay.count() > 0) {
      net::steady_timer timer(lowest.get_executor(), res.delay);
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    if (res.drop) {
      srv.service.finish(res);
      lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
      lowest.close();
      co_return;
    }
    http::response<http::string_body> out{static_cast<http::status>(res.status), msg.version()};
    out.set(http::field::server, "thingsync-sim");
    if (!res.content_type.empty()) out.set(http::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) out.set(name, value);
    out.body() = std::move(res.body);
    out.keep_alive(msg.keep_alive() && !res.close && !srv.stopping);
    out.prepare_payload();
    lowest.expires_after(kWriteTimeout);
    co_await http::async_write(stream, out, net::redirect_error(net::use_awaitable, ec));
    srv.service.finish(res);
    if (ec || !out.keep_alive()) break;
  }
}

net::awaitable<void> session(Server& srv, tcp::socket socket) {
  beast::error_code ec;
  Conn conn;
  if (srv.tls) {
    ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *srv.tls);
    conn.stream = &beast::get_lowest_layer(stream);
    ConnGuard guard(srv, conn);
    beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
    co_await stream.async_handshake(ssl::stream_base::server,
                                    net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    co_await serve(srv, stream, conn, true);
    if (!beast::get_lowest_layer(stream).socket().is_open()) co_return;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(net::redirect_error(net::use_awaitable, ec));
  } else {
    beast::tcp_stream stream(std::move(socket));
    conn.stream = &stream;
    ConnGuard guard(srv, conn);
    co_await serve(srv, stream, conn, false);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
}

net::awaitable<void> accept_loop(Server& srv) {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await srv.acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (srv.stopping) co_return;
    if (ec) continue;
    socket.set_option(tcp::no_delay(true), ec);
    net::co_spawn(srv.ioc, session(srv, std::move(socket)),
                  [](std::exception_ptr e) { log_crash("session", e); });
  }
}

// Batches --data writes: at most one per persist interval.
net::awaitable<void> persist_loop(Server& srv) {
  for (;;) {
    beast::error_code ec;
    srv.persist_timer.expires_after(srv.service.options().persist_interval);
    co_await srv.persist_timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (srv.stopping) co_return;
    srv.service.persist_if_changed();
  }
}

void begin_shutdown(Server& srv) {
  srv.stopping = true;
  beast::error_code ec;
  srv.acceptor.close(ec);
  srv.persist_timer.cancel();
  for (Conn* c : srv.conns) {
    if (!c->busy) c->stream->socket().close(ec);  // busy ones close after their response
  }
  if (!srv.conns.empty()) {
    srv.drain_deadline.expires_after(kDrainDeadline);
    srv.drain_deadline.async_wait([&srv](beast::error_code e) {
      if (!e) srv.ioc.stop();
    });
  }
}

tcp::endpoint parse_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("--listen wants HOST:PORT");
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  unsigned long p = 0;
  try {
    std::size_t used = 0;
    p = std::stoul(port, &used);
    if (used != port.size() || p > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    throw std::runtime_error("--listen: bad port \"" + port + "\"");
  }
  beast::error_code ec;
  const auto addr = net::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("--listen: bad address \"" + host + "\"");
  return {addr, static_cast<unsigned short>(p)};
}

}  // namespace

int run_server(Options opts) {
  const auto endpoint = parse_listen(opts.listen);
  Server srv(std::move(opts));
  const Options& o = srv.service.options();

  std::string error;
  if (!srv.service.load_data(error)) {
    std::fprintf(stderr, "thingsync-sim: %s\n", error.c_str());
    return 1;
  }
  if (o.seed > 0) {
    srv.service.store().seed(o.seed, std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  }
  if (o.tls_cert || o.tls_key) {
    if (!o.tls_cert || !o.tls_key) throw std::runtime_error("--tls-cert and --tls-key go together");
    srv.tls.emplace(ssl::context::tls_server);
    srv.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
    srv.tls->use_certificate_chain_file(*o.tls_cert);
    srv.tls->use_private_key_file(*o.tls_key, ssl::context::pem);
  }

  srv.acceptor.open(endpoint.protocol());
  srv.acceptor.set_option(net::socket_base::reuse_address(true));
  srv.acceptor.bind(endpoint);
  srv.acceptor.listen(net::socket_base::max_listen_connections);
  const auto bound = srv.acceptor.local_endpoint();
  const std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                   : bound.address().to_string();
  std::printf("listening on %s://%s:%u\n", srv.tls ? "https" : "http", host.c_str(),
              static_cast<unsigned>(bound.port()));
  std::fflush(stdout);

  net::signal_set signals(srv.ioc, SIGINT, SIGTERM);
  signals.async_wait([&srv](beast::error_code ec, int) {
    if (!ec) begin_shutdown(srv);
  });
  net::co_spawn(srv.ioc, accept_loop(srv), [](std::exception_ptr e) { log_crash("accept", e); });
  if (o.data_file) {
    net::co_spawn(srv.ioc, persist_loop(srv), [](std::exception_ptr e) { log_crash("persist", e); });
  }
  srv.ioc.run();
  srv.torn_down = true;
  srv.service.persist_if_changed();
  return 0;
}

}  // namespace thingsync::sim
