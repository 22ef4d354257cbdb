#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace thingsync::sys {

/// The systemd notify protocol (sd_notify(3)): READY, RELOADING, STOPPING, STATUS, WATCHDOG.
/// Without $NOTIFY_SOCKET every call is a no-op, so the daemon runs the same outside systemd.
class Notifier {
 public:
  Notifier();
  bool enabled() const { return enabled_; }

  void ready();
  /// RELOADING=1 with MONOTONIC_USEC, as systemd 253+ wants for Type=notify-reload.
  void reloading();
  /// READY=1 again after a reload.
  void reloaded();
  void stopping();
  /// STATUS=<one line>; newlines are replaced so the line stays one.
  void status(std::string_view line);
  void watchdog();
  /// Half of $WATCHDOG_USEC (the ping interval) when systemd asked for pings, else nullopt.
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_; }

 private:
  void send(std::string_view message);
  bool enabled_ = false;
  std::optional<std::chrono::microseconds> watchdog_;
};

}  // namespace thingsync::sys
