#include "thingsync/obs/http_server.hpp"

#include <list>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "thingsync/obs/log.hpp"

namespace thingsync::obs {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::any_io_executor ex, const std::string& host, std::uint16_t port, Handler h)
      : acceptor(ex), handler(std::move(h)) {
    const tcp::endpoint ep(net::ip::make_address(host == "localhost" ? "127.0.0.1" : host), port);
    acceptor.open(ep.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen();
  }

  net::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopped) {
      boost::system::error_code ec;
      tcp::socket sock = co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (stopped) break;
        continue;
      }
      auto it = sessions.emplace(sessions.end(), std::move(sock));
      net::co_spawn(acceptor.get_executor(), session(it), [self](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            logger("metrics")->warn("metrics connection failed: {}", x.what());
          }
        }
      });
    }
  }

  net::awaitable<void> session(std::list<beast::tcp_stream>::iterator it) {
    auto self = shared_from_this();
    beast::tcp_stream& stream = *it;
    beast::flat_buffer buffer(8192);
    for (;;) {
      boost::system::error_code ec;
      http::request_parser<http::empty_body> parser;
      parser.header_limit(8192);
      parser.body_limit(0);
      stream.expires_after(std::chrono::seconds(10));
      co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      const auto& req = parser.get();
      const std::string target(req.target());
      HttpGet get{std::string(req.method_string()), target.substr(0, target.find('?'))};
      HttpReply reply;
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        reply = {405, "text/plain; charset=utf-8", "method not allowed\n"};
      } else {
        reply = handler(get);
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
      res.set(http::field::content_type, reply.content_type);
      res.set(http::field::server, "thingsync");
      res.keep_alive(req.keep_alive());
      if (req.method() != http::verb::head) res.body() = std::move(reply.body);
      res.prepare_payload();
      stream.expires_after(std::chrono::seconds(10));
      co_await http::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
      if (ec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    if (!stopped) sessions.erase(it);
  }

  tcp::acceptor acceptor;
  Handler handler;
  std::list<beast::tcp_stream> sessions;
  bool stopped = false;
};

HttpServer::HttpServer(net::any_io_executor ex, const std::string& host, std::uint16_t port,
                       Handler handler)
    : impl_(std::make_shared<Impl>(std::move(ex), host, port, std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::start() {
  net::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        logger("metrics")->error("metrics server stopped: {}", x.what());
      }
    }
  });
}

void HttpServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  for (auto& s : impl_->sessions) s.socket().close(ec);
}

}  // namespace thingsync::obs
