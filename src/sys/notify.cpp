#include "thingsync/sys/notify.hpp"

#include <time.h>

#include <cstdlib>
#include <string>

#include <systemd/sd-daemon.h>

namespace thingsync::sys {

Notifier::Notifier() {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  enabled_ = sock != nullptr && *sock != '\0';
  std::uint64_t usec = 0;
  // unset_environment=0: children (there are none) would see it; we keep it for re-reads.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_ = std::chrono::microseconds(usec / 2);
  }
}

void Notifier::send(std::string_view message) {
  if (!enabled_) return;
  const std::string m(message);
  sd_notify(0, m.c_str());
}

void Notifier::ready() { send("READY=1"); }

void Notifier::reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void Notifier::reloaded() { send("READY=1"); }

void Notifier::stopping() { send("STOPPING=1"); }

void Notifier::status(std::string_view line) {
  std::string s = "STATUS=";
  for (const char c : line) s.push_back(c == '\n' ? ' ' : c);
  send(s);
}

void Notifier::watchdog() { send("WATCHDOG=1"); }

}  // namespace thingsync::sys
