#include "server.hpp"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp forgets it

#include <array>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <optional>
#include <type_traits>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "heap.hpp"
#include "http_date.hpp"
#include "service.hpp"

namespace thingsync::sim {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr auto kDrainDeadline = std::chrono::seconds(5);
// Timeouts, in ticks of the one watchdog timer (a second each): no timer per operation.
constexpr auto kTick = std::chrono::seconds(1);
constexpr std::uint64_t kIdleTicks = 120;   // to read a whole request
constexpr std::uint64_t kWriteTicks = 30;   // to write a response, or to do a TLS handshake
constexpr std::uint64_t kShutdownTicks = 2;  // TLS close_notify
constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

// One open connection, so that shutdown and the watchdog can close it.
struct Conn {
  tcp::socket* socket = nullptr;
  bool busy = false;
  std::uint64_t deadline = kNever;  ///< watchdog tick at which the connection is closed
};

struct Server {
  explicit Server(Options opts) : service(std::move(opts)) {}
  // Declared before ioc, so alive while ~io_context destroys suspended session frames.
  bool torn_down = false;
  std::unordered_set<Conn*> conns;
  // One thread runs everything (signals arrive through a pipe): no locks inside Asio.
  net::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE};
  Service service;
  tcp::acceptor acceptor{ioc};
  std::optional<ssl::context> tls;
  net::steady_timer persist_timer{ioc};
  net::steady_timer drain_deadline{ioc};
  net::steady_timer watchdog{ioc};
  HttpDate date;
  std::uint64_t tick = 0;
  bool stopping = false;
};

// The connection is closed if the next step takes more than `ticks` seconds (up to one more).
void arm(const Server& srv, Conn& conn, std::uint64_t ticks) { conn.deadline = srv.tick + ticks + 1; }

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

// Makes the response own what it borrows from the service (body, Location), for when other
// requests may run before it is written.
void own(Response& res) {
  if (res.body_ref) {
    res.body.assign(*res.body_ref);
    res.body_ref.reset();
  }
  if (!res.location_id.empty()) {
    std::string location(res.location_base);
    location.append(res.location_id);
    res.headers.emplace(res.headers.begin(), "Location", std::move(location));
    res.location_base = res.location_id = {};
  }
}

// The status line and header fields, as Beast's serializer writes them for a response built
// with the Server, Date and Content-Type fields, then the response's headers, keep_alive() and
// prepare_payload().
void write_head(std::string& head, const Response& res, unsigned version, bool keep_alive,
                std::string_view date) {
  head.clear();
  const auto status = static_cast<unsigned>(res.status);
  const char line[] = {'H', 'T', 'T', 'P', '/', static_cast<char>('0' + version / 10 % 10), '.',
                       static_cast<char>('0' + version % 10), ' ',
                       static_cast<char>('0' + status / 100 % 10),
                       static_cast<char>('0' + status / 10 % 10),
                       static_cast<char>('0' + status % 10), ' '};
  head.append(line, sizeof line);
  head.append(sv(http::obsolete_reason(static_cast<http::status>(res.status)))).append("\r\n");
  head.append("Server: thingsync-sim\r\n");
  head.append("Date: ").append(date).append("\r\n");
  if (!res.content_type.empty()) head.append("Content-Type: ").append(res.content_type).append("\r\n");
  if (!res.location_id.empty()) {
    head.append("Location: ").append(res.location_base).append(res.location_id).append("\r\n");
  }
  for (const auto& [name, value] : res.headers) head.append(name).append(": ").append(value).append("\r\n");
  if (version < 11 && keep_alive) head.append("Connection: keep-alive\r\n");
  if (version >= 11 && !keep_alive) head.append("Connection: close\r\n");
  const bool bodiless = status / 100 == 1 || status == 204 || status == 304;
  if (!bodiless) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, res.payload().size()).ptr;
    head.append("Content-Length: ").append(digits, end).append("\r\n");
  }
  head.append("\r\n");
}

// Reads one request as http::async_read does (eager parser, 64 KiB reads, the same errors),
// but parses what is already buffered without an asynchronous operation.
template <typename Stream>
net::awaitable<beast::error_code> read_request(Stream& stream, beast::flat_buffer& buffer,
                                               http::request_parser<http::string_body>& parser) {
  beast::error_code ec;
  parser.eager(true);
  while (!parser.is_done()) {
    bool read_first = buffer.size() == 0;
    for (;;) {
      if (!read_first) {
        buffer.consume(parser.put(buffer.data(), ec));
        if (ec != http::error::need_more) break;
        ec = {};
      }
      read_first = false;
      const auto size = beast::read_size(buffer, 65536);
      if (size == 0) {
        ec = http::error::buffer_overflow;
        break;
      }
      const auto n = co_await stream.async_read_some(buffer.prepare(size),
                                                     net::redirect_error(net::use_awaitable, ec));
      if (ec == net::error::eof) {
        if (parser.got_some()) {
          ec = {};
          parser.put_eof(ec);
        } else {
          ec = http::error::end_of_stream;
        }
        break;
      }
      if (ec) break;
      buffer.commit(n);
    }
    if (ec) break;
  }
  co_return ec;
}

// Reads requests in a loop and answers each before reading the next, so pipelined requests
// are answered in order.
template <typename Stream>
net::awaitable<void> serve(Server& srv, Stream& stream, Conn& conn, bool tls) {
  constexpr bool kPlain = std::is_same_v<Stream, tcp::socket>;
  tcp::socket& socket = *conn.socket;
  const Options& opts = srv.service.options();
  beast::flat_buffer buffer;
  std::string head;     // status line and fields of the response being written
  std::string pending;  // what the socket did not take at once
  for (;;) {
    beast::error_code ec;
    http::request_parser<http::string_body> parser;
    parser.body_limit(opts.max_body);
    conn.busy = false;
    if (srv.stopping) co_return;
    arm(srv, conn, kIdleTicks);
    ec = co_await read_request(stream, buffer, parser);
    conn.busy = true;
    conn.deadline = kNever;  // handling and injected latency are not timed
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
    // Read before the request is handled, so that a list holds every change made before its
    // Date: clients may take the Date as the server's time of the list. It is the clock that
    // gives the timestamps too (which never goes back, even if the wall clock does). One
    // server, one clock; a node whose clock is wrong is what the admin's stamped modifiedAt
    // is for.
    const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    const auto date = std::max<std::int64_t>(wall_ms, srv.service.store().clock()) / 1000;
    Response res = srv.service.handle(req, tls);
    populate_heap_growth();
    if (res.delay.count() > 0) {
      own(res);
      net::steady_timer timer(socket.get_executor(), res.delay);
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    if (res.drop) {
      srv.service.finish(res);
      socket.shutdown(tcp::socket::shutdown_both, ec);
      socket.close(ec);
      co_return;
    }
    const bool keep_alive = msg.keep_alive() && !res.close && !srv.stopping;
    write_head(head, res, msg.version(), keep_alive, srv.date.format(date));
    const std::string_view body = res.payload();
    arm(srv, conn, kWriteTicks);
    if constexpr (kPlain) {
      // Most answers fit in the socket buffer: one sendmsg, no asynchronous operation.
      const std::array<net::const_buffer, 2> parts{net::buffer(head), net::buffer(body.data(), body.size())};
      std::size_t sent = socket.write_some(parts, ec);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        ec = {};
        sent = 0;
      }
      if (!ec && sent < head.size() + body.size()) {
        pending.clear();
        if (sent < head.size()) {
          pending.append(head, sent);
          pending.append(body);
        } else {
          pending.append(body.substr(sent - head.size()));
        }
        co_await net::async_write(socket, net::buffer(pending),
                                  net::redirect_error(net::use_awaitable, ec));
      }
    } else {
      head.append(body);
      co_await net::async_write(stream, net::buffer(head), net::redirect_error(net::use_awaitable, ec));
    }
    srv.service.finish(res);
    if (ec || !keep_alive) break;
  }
}

net::awaitable<void> session(Server& srv, tcp::socket socket) {
  beast::error_code ec;
  Conn conn;
  if (srv.tls) {
    ssl::stream<tcp::socket> stream(std::move(socket), *srv.tls);
    conn.socket = &stream.next_layer();
    ConnGuard guard(srv, conn);
    arm(srv, conn, kWriteTicks);
    co_await stream.async_handshake(ssl::stream_base::server,
                                    net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    co_await serve(srv, stream, conn, true);
    if (!stream.next_layer().is_open()) co_return;
    arm(srv, conn, kShutdownTicks);
    co_await stream.async_shutdown(net::redirect_error(net::use_awaitable, ec));
  } else {
    conn.socket = &socket;
    ConnGuard guard(srv, conn);
    socket.non_blocking(true, ec);  // for the direct writes in serve()
    co_await serve(srv, socket, conn, false);
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }
}

// Closes connections whose deadline has passed (idle, or too slow to read or write).
net::awaitable<void> watchdog_loop(Server& srv) {
  for (;;) {
    beast::error_code ec;
    srv.watchdog.expires_after(kTick);
    co_await srv.watchdog.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (srv.stopping) co_return;
    ++srv.tick;
    for (Conn* c : srv.conns) {
      if (c->deadline > srv.tick) continue;
      c->deadline = kNever;
      c->socket->close(ec);
    }
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
  srv.watchdog.cancel();
  for (Conn* c : srv.conns) {
    if (!c->busy) c->socket->close(ec);  // busy ones close after their response
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
  tune_heap_growth();
  Server srv(std::move(opts));
  const Options& o = srv.service.options();

  std::string error;
  if (!srv.service.load_data(error)) {
    std::fprintf(stderr, "thingsync-sim: %s\n", error.c_str());
    return 1;
  }
  if (o.seed > 0) {
    srv.service.store().seed(o.seed,
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count(),
                             populate_heap_growth);
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
  net::co_spawn(srv.ioc, watchdog_loop(srv), [](std::exception_ptr e) { log_crash("watchdog", e); });
  if (o.data_file) {
    net::co_spawn(srv.ioc, persist_loop(srv), [](std::exception_ptr e) { log_crash("persist", e); });
  }
  srv.ioc.run();
  srv.torn_down = true;
  srv.service.persist_if_changed();
  return 0;
}

}  // namespace thingsync::sim
