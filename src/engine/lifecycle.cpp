#include "lifecycle.hpp"

#include <csignal>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {
namespace net = boost::asio;

Lifecycle::Lifecycle(net::io_context& ioc, sys::Notifier& notifier,
                     std::chrono::milliseconds grace, Hooks hooks)
    : ioc_(ioc),
      notifier_(notifier),
      grace_(grace),
      hooks_(std::move(hooks)),
      signals_(ioc, SIGINT, SIGTERM, SIGHUP),
      watchdog_timer_(ioc),
      grace_timer_(ioc) {}

void Lifecycle::start() {
  wait_signal();
  if (notifier_.watchdog_interval()) {
    net::co_spawn(ioc_, watchdog_loop(), crash_handler("watchdog"));
  }
}

void Lifecycle::finished() {
  finished_ = true;
  signals_.cancel();
  watchdog_timer_.cancel();
  grace_timer_.cancel();
}

std::function<void(std::exception_ptr)> Lifecycle::crash_handler(const char* what) {
  return [this, what](std::exception_ptr e) {
    if (!e) return;
    auto log = obs::logger("daemon");
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log->critical("{} crashed: {}; exiting", what, x.what());
    } catch (...) {
      log->critical("{} crashed; exiting", what);
    }
    exit_code_ = 1;
    stopping_ = true;
    finished();
    ioc_.stop();
  };
}

void Lifecycle::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      obs::logger("daemon")->info("SIGHUP: reloading the desired state, password files and token");
      hooks_.reload();
      wait_signal();
      return;
    }
    begin_stop(sig);
  });
}

void Lifecycle::begin_stop(int sig) {
  if (stopping_) return;
  obs::logger("daemon")->info("signal {}: stopping (in-flight requests get {} ms)", sig,
                              grace_.count());
  stopping_ = true;
  notifier_.stopping();
  hooks_.stop();
  // Requests still running after the grace period are abandoned.
  grace_timer_.expires_after(grace_);
  grace_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finished_) return;
    obs::logger("daemon")->warn("abandoning requests still in flight");
    hooks_.abandon();
  });
}

net::awaitable<void> Lifecycle::watchdog_loop() {
  while (!finished_) {
    notifier_.watchdog();  // from the event loop itself: a stuck loop stops the pings
    watchdog_timer_.expires_after(*notifier_.watchdog_interval());
    boost::system::error_code ec;
    co_await watchdog_timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

}  // namespace thingsync::engine
