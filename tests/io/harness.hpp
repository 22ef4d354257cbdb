#pragma once

// Helpers for cross-process tests: a canned-reply HTTP server, a CONNECT proxy, log capture
// (plain Asio only: Beast stays in the client under test); the thingsync-sim child process,
// temporary directories and the loopback HTTP client come from tests/support.
#include <utility>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace thingsync::test {

namespace net = boost::asio;

/// Runs `ioc` until `done` is set (by a co_spawn completion handler). Servers in the same
/// io_context keep it busy, so it runs until that coroutine is done: a flag, not a future, so
/// that each handler costs no lock (the api bench runs on this).
inline void run_until(net::io_context& ioc, const bool& done) {
  while (!done && ioc.run_one() > 0) {
  }
  ioc.restart();
  if (!done) throw std::runtime_error("the io_context ran out of work before the coroutine ended");
}

/// Runs one coroutine to completion on a fresh io_context and returns its value (rethrows its
/// exception).
template <class T>
T run(net::io_context& ioc, net::awaitable<T> aw) {
  std::optional<T> value;
  std::exception_ptr error;
  bool done = false;
  net::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) value.emplace(std::move(v));
    done = true;
  });
  run_until(ioc, done);
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

inline void run(net::io_context& ioc, net::awaitable<void> aw) {
  std::exception_ptr error;
  bool done = false;
  net::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  run_until(ioc, done);
  if (error) std::rethrow_exception(error);
}

/// Runs the tasks concurrently and returns when all are done (rethrows the first exception).
inline net::awaitable<void> when_all(std::vector<net::awaitable<void>> tasks) {
  auto ex = co_await net::this_coro::executor;
  auto left = std::make_shared<std::size_t>(tasks.size());
  auto done = std::make_shared<net::steady_timer>(ex, std::chrono::steady_clock::time_point::max());
  auto error = std::make_shared<std::exception_ptr>();
  for (auto& t : tasks) {
    net::co_spawn(ex, std::move(t), [left, done, error](std::exception_ptr e) {
      if (e && !*error) *error = e;
      if (--*left == 0) done->cancel();
    });
  }
  if (*left > 0) {
    boost::system::error_code ec;
    co_await done->async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  if (*error) std::rethrow_exception(*error);
}

using testsupport::Sim;
using testsupport::TempDir;
using testsupport::write_file;

/// The sim's --request-log as parsed JSON lines.
std::vector<nlohmann::json> read_request_log(const std::filesystem::path& file);
/// "2025-09-01T23:00:00.123Z" -> ms since the epoch.
std::int64_t log_time_ms(const nlohmann::json& line);

/// Routes every module logger to an in-memory sink at trace level for its lifetime.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  std::string text() const;

 private:
  std::shared_ptr<std::ostringstream> out_;
};

/// Holds canned replies back until it is opened: for answers that must not come back before
/// every request of a burst has arrived, however slowly the client sends them.
class ReplyGate {
 public:
  explicit ReplyGate(net::io_context& ioc)
      : timer_(ioc, net::steady_timer::time_point::max()) {}
  void open() {
    open_ = true;
    timer_.cancel();
  }
  bool is_open() const { return open_; }
  net::steady_timer& timer() { return timer_; }

 private:
  net::steady_timer timer_;
  bool open_ = false;
};

/// What a canned server does with one request: a raw HTTP response to write, or nothing.
struct CannedReply {
  std::string raw;                ///< written as is
  bool close_after = false;       ///< close the connection after writing
  bool never_answer = false;      ///< keep the connection open and say nothing
  std::shared_ptr<ReplyGate> gate;  ///< when set: written once the gate is open
};

/// An HTTP/1.1 server on 127.0.0.1:0 in the test's io_context, answering from a function.
class CannedServer {
 public:
  using Handler = std::function<CannedReply(const std::string& request_head)>;
  CannedServer(net::io_context& ioc, Handler handler);
  ~CannedServer();
  std::uint16_t port() const;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int connections() const;
  int requests() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// "HTTP/1.1 <status> X\r\nContent-Type: …\r\nContent-Length: …\r\n\r\n<body>"
std::string http_response(int status, const std::string& body,
                          const std::string& content_type = "application/json",
                          const std::string& extra_headers = {});

/// A CONNECT proxy on 127.0.0.1:0 in the test's io_context that relays bytes both ways.
class ConnectProxy {
 public:
  explicit ConnectProxy(net::io_context& ioc);
  ~ConnectProxy();
  std::uint16_t port() const;
  std::vector<std::string> targets() const;  ///< "host:port" of each CONNECT seen

  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// A CA and a server certificate for 127.0.0.1 made with the openssl CLI in `dir`:
/// ca.pem, server.pem, server.key, and other-ca.pem (a CA that signed nothing here).
void make_test_pki(const std::filesystem::path& dir);

}  // namespace thingsync::test
