#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

namespace thingsync::obs {

struct HttpGet {
  std::string method;
  std::string path;  ///< without the query string
};

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// A small HTTP/1.1 server for /metrics, /healthz and /readyz: keep-alive, one coroutine per
/// connection on the caller's io_context, bodies ignored, 8 KiB header limit, 10 s idle timeout.
/// Not thread-safe: create, start and stop it on the io_context thread.
class HttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpGet&)>;

  /// Binds host:port (port 0: any free port). Throws std::system_error when it cannot.
  HttpServer(boost::asio::any_io_executor ex, const std::string& host, std::uint16_t port,
             Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  void start();
  /// Stops accepting and closes open connections.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace thingsync::obs
