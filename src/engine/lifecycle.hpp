#pragma once

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <chrono>
#include <exception>
#include <functional>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "thingsync/sys/notify.hpp"

namespace thingsync::engine {

/// The daemon's life as a process: signals (SIGHUP reloads, SIGTERM/SIGINT stop), the systemd
/// watchdog, the grace period for requests in flight at a stop, and the end of the process when
/// a loop crashes. Not thread-safe (the event loop's).
class Lifecycle {
 public:
  struct Hooks {
    std::function<void()> reload;   ///< SIGHUP
    std::function<void()> stop;     ///< the first SIGTERM/SIGINT, after stopping() is set
    std::function<void()> abandon;  ///< the grace period ran out with requests in flight
  };
  Lifecycle(boost::asio::io_context& ioc, sys::Notifier& notifier,
            std::chrono::milliseconds grace, Hooks hooks);

  /// Starts waiting for signals.
  void start();
  /// The daemon made progress (a loop turn, an API answer, a device done): pings the systemd
  /// watchdog when one is due. The watchdog is fed by progress only, never by a timer of its
  /// own, so a loop that is stuck stops the pings and systemd restarts the process.
  void alive();
  /// How often alive() must come at least (half of WatchdogSec), when systemd watches.
  std::optional<std::chrono::microseconds> watchdog_interval() const {
    return notifier_.watchdog_interval();
  }
  /// Everything is done: the signal wait and every timer are cancelled, so the event loop ends.
  void finished();

  /// Set once a stop was asked for; the passes read it to start nothing new.
  const bool& stopping() const { return stopping_; }
  /// A completion handler for a spawned loop: an exception that escapes it ends the process
  /// with exit code 1 (systemd restarts it), for a daemon that goes on pinging the watchdog
  /// without reconciling is worse than none.
  std::function<void(std::exception_ptr)> crash_handler(const char* what);
  int exit_code() const { return exit_code_; }
  /// The stop did not go as it should (the state could not be saved): exit 1.
  void failed() { exit_code_ = 1; }

 private:
  void wait_signal();
  void begin_stop(int sig);

  boost::asio::io_context& ioc_;
  sys::Notifier& notifier_;
  std::chrono::milliseconds grace_;
  Hooks hooks_;
  boost::asio::signal_set signals_;
  std::chrono::steady_clock::time_point last_ping_{};
  boost::asio::steady_timer grace_timer_;
  bool stopping_ = false;
  bool finished_ = false;
  int exit_code_ = 0;
};

}  // namespace thingsync::engine
