#include "harness.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include "thingsync/core/time.hpp"
#include "thingsync/obs/log.hpp"

namespace thingsync::test {

using tcp = net::ip::tcp;
using boost::system::error_code;

std::vector<nlohmann::json> read_request_log(const std::filesystem::path& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    // A last line without its newline is still being written by the sim: not read yet.
    if (in.eof()) break;
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

std::int64_t log_time_ms(const nlohmann::json& line) {
  return core::parse_iso8601_ms(line.at("time").get<std::string>()).value();
}

LogCapture::LogCapture() : out_(std::make_shared<std::ostringstream>()) {
  obs::set_sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(*out_),
                obs::LogOptions{spdlog::level::trace, obs::LogFormat::kText});
}
LogCapture::~LogCapture() { obs::setup_logging(obs::LogOptions{spdlog::level::warn}); }
std::string LogCapture::text() const { return out_->str(); }

// ---- canned server ----------------------------------------------------------------------

struct CannedServer::State {
  explicit State(net::io_context& ioc) : acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {}
  tcp::acceptor acceptor;
  Handler handler;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  int connections = 0;
  int requests = 0;
};

namespace {

// Reads one request head (and discards its body); false at EOF.
net::awaitable<std::optional<std::string>> read_request(tcp::socket& s, std::string& buf) {
  error_code ec;
  const auto n = co_await net::async_read_until(s, net::dynamic_buffer(buf), "\r\n\r\n",
                                                net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return std::nullopt;
  std::string head = buf.substr(0, n);
  buf.erase(0, n);
  std::size_t length = 0;
  for (std::size_t pos = 0; (pos = head.find("\r\n", pos)) != std::string::npos;) {
    pos += 2;
    if (head.compare(pos, 15, "Content-Length:") == 0 || head.compare(pos, 15, "content-length:") == 0) {
      length = std::stoul(head.substr(pos + 15));
    }
  }
  if (buf.size() < length) {
    co_await net::async_read(s, net::dynamic_buffer(buf), net::transfer_exactly(length - buf.size()),
                             net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return std::nullopt;
  }
  buf.erase(0, length);
  co_return head;
}

net::awaitable<void> serve_canned(std::shared_ptr<CannedServer::State> st,
                                  std::shared_ptr<tcp::socket> s) {
  std::string buf;
  for (;;) {
    auto head = co_await read_request(*s, buf);
    if (!head) co_return;
    ++st->requests;
    const CannedReply reply = st->handler(*head);
    if (reply.never_answer) {
      char byte;
      error_code ec;
      co_await s->async_read_some(net::buffer(&byte, 1), net::redirect_error(net::use_awaitable, ec));
      co_return;
    }
    error_code ec;
    while (reply.gate && !reply.gate->is_open()) {
      co_await reply.gate->timer().async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    co_await net::async_write(*s, net::buffer(reply.raw), net::redirect_error(net::use_awaitable, ec));
    if (ec || reply.close_after) {
      s->close(ec);
      co_return;
    }
  }
}

net::awaitable<void> accept_canned(std::shared_ptr<CannedServer::State> st) {
  for (;;) {
    auto s = std::make_shared<tcp::socket>(st->acceptor.get_executor());
    error_code ec;
    co_await st->acceptor.async_accept(*s, net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    ++st->connections;
    st->sockets.push_back(s);
    net::co_spawn(st->acceptor.get_executor(), serve_canned(st, s), net::detached);
  }
}

}  // namespace

CannedServer::CannedServer(net::io_context& ioc, Handler handler)
    : state_(std::make_shared<State>(ioc)) {
  state_->handler = std::move(handler);
  net::co_spawn(ioc, accept_canned(state_), net::detached);
}
CannedServer::~CannedServer() {
  error_code ec;
  state_->acceptor.close(ec);
  for (auto& s : state_->sockets) s->close(ec);
}
std::uint16_t CannedServer::port() const { return state_->acceptor.local_endpoint().port(); }
int CannedServer::connections() const { return state_->connections; }
int CannedServer::requests() const { return state_->requests; }

std::string http_response(int status, const std::string& body, const std::string& content_type,
                          const std::string& extra_headers) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" +
         body;
}

// ---- CONNECT proxy ------------------------------------------------------------------------

struct ConnectProxy::State {
  explicit State(net::io_context& ioc) : acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {}
  tcp::acceptor acceptor;
  std::vector<std::string> targets;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
};

namespace {

net::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
  std::array<char, 16384> buf;
  for (;;) {
    error_code ec;
    const auto n = co_await from->async_read_some(net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
    if (ec) break;
    co_await net::async_write(*to, net::buffer(buf.data(), n), net::redirect_error(net::use_awaitable, ec));
    if (ec) break;
  }
  error_code ignored;
  to->shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<void> serve_proxy(std::shared_ptr<ConnectProxy::State> st,
                                 std::shared_ptr<tcp::socket> client) {
  std::string buf;
  auto head = co_await read_request(*client, buf);
  if (!head || head->rfind("CONNECT ", 0) != 0) co_return;
  const auto target = head->substr(8, head->find(' ', 8) - 8);
  st->targets.push_back(target);
  const auto colon = target.rfind(':');
  auto upstream = std::make_shared<tcp::socket>(client->get_executor());
  st->sockets.push_back(upstream);
  error_code ec;
  co_await upstream->async_connect(
      tcp::endpoint(net::ip::make_address(target.substr(0, colon)),
                    static_cast<std::uint16_t>(std::stoi(target.substr(colon + 1)))),
      net::redirect_error(net::use_awaitable, ec));
  const std::string answer = ec ? "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
                                : "HTTP/1.1 200 Connection established\r\n\r\n";
  co_await net::async_write(*client, net::buffer(answer), net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return;
  net::co_spawn(client->get_executor(), pump(client, upstream), net::detached);
  net::co_spawn(client->get_executor(), pump(upstream, client), net::detached);
}

net::awaitable<void> accept_proxy(std::shared_ptr<ConnectProxy::State> st) {
  for (;;) {
    auto s = std::make_shared<tcp::socket>(st->acceptor.get_executor());
    error_code ec;
    co_await st->acceptor.async_accept(*s, net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    st->sockets.push_back(s);
    net::co_spawn(st->acceptor.get_executor(), serve_proxy(st, s), net::detached);
  }
}

}  // namespace

ConnectProxy::ConnectProxy(net::io_context& ioc) : state_(std::make_shared<State>(ioc)) {
  net::co_spawn(ioc, accept_proxy(state_), net::detached);
}
ConnectProxy::~ConnectProxy() {
  error_code ec;
  state_->acceptor.close(ec);
  for (auto& s : state_->sockets) s->close(ec);
}
std::uint16_t ConnectProxy::port() const { return state_->acceptor.local_endpoint().port(); }
std::vector<std::string> ConnectProxy::targets() const { return state_->targets; }

void make_test_pki(const std::filesystem::path& dir) {
  const std::string d = dir.string();
  const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  write_file(dir / "ext.cnf", "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  const std::string cmd =
      "cd '" + d + "' && openssl req -x509" + key + "-keyout ca.key -out ca.pem -days 2 " +
      "-subj /CN=thingsync-test-ca && openssl req" + key +
      "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && openssl x509 -req -in "
      "server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile "
      "ext.cnf && openssl req -x509" + key +
      "-keyout other.key -out other-ca.pem -days 2 -subj /CN=other-ca) >/dev/null 2>&1";
  if (std::system(("(" + cmd).c_str()) != 0) throw std::runtime_error("openssl failed in " + d);
}

}  // namespace thingsync::test
