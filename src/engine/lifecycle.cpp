#include "lifecycle.hpp"

#include <csignal>


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
      grace_timer_(ioc) {}

void Lifecycle::start() { wait_signal(); }

void Lifecycle::alive() {
  const auto interval = notifier_.watchdog_interval();
  if (!interval || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  // Pings at most twice an interval: a busy pass calls this for every answer.
  if (now - last_ping_ < *interval / 2) return;
  last_ping_ = now;
  notifier_.watchdog();
}

void Lifecycle::finished() {
  finished_ = true;
  signals_.cancel();
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

}  // namespace thingsync::engine
