#pragma once

// The real daemon in an e2e test: started on a Fleet, watched through its metrics, its
// /readyz and its log, and the sim's bindings as the daemon left them.

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fleet.hpp"
#include "thingsync/core/device_id.hpp"

namespace thingsync::e2e {

/// A systemd notify socket (NOTIFY_SOCKET) the test receives the daemon's messages on.
class NotifySocket {
 public:
  NotifySocket() : path_((dir_.path() / "notify").string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  /// For the daemon's environment.
  std::string env() const { return "NOTIFY_SOCKET=" + path_; }
  /// Receives until everything received holds `what` (false after 10 s without a message).
  bool receive_until(const std::string& what) {
    char buf[4096];
    while (seen_.find(what) == std::string::npos) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      seen_.append(buf, static_cast<std::size_t>(n)).push_back('\n');
    }
    return true;
  }
  /// The next message, or nullopt when none comes within 10 s.
  std::optional<std::string> next() {
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    std::string m(buf, static_cast<std::size_t>(n));
    seen_.append(m).push_back('\n');
    return m;
  }
  /// Everything received so far, taking what is queued without waiting.
  const std::string& received() {
    char buf[4096];
    for (;;) {
      const auto n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      seen_.append(buf, static_cast<std::size_t>(n)).push_back('\n');
    }
    return seen_;
  }

 private:
  testsupport::TempDir dir_{"thingsync-notify"};
  std::string path_;
  int fd_ = -1;
  std::string seen_;
};

// Polls `cond` until it holds or `timeout` passes: the daemon works on its own schedule, and
// the only events a test can see are its effects (sim state, metrics, logs).
template <typename F>
bool eventually(F cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return cond();
}

class Daemon {
 public:
  /// `prefix`: a command that runs thingsync (`unshare …`), before its argv.
  Daemon(const Fleet& fleet, std::vector<std::string> env = {},
         std::vector<std::string> prefix = {})
      : proc_(command(prefix, fleet), std::move(env)) {
    REQUIRE(proc_.wait_for_output("metrics=http://", std::chrono::seconds(30)));
    const auto err = proc_.err();
    const std::string marker = "metrics=http://127.0.0.1:";
    const auto pos = err.find(marker);
    REQUIRE(pos != std::string::npos);
    port_ = static_cast<std::uint16_t>(std::stoi(err.substr(pos + marker.size())));
  }
  Process& proc() { return proc_; }
  testsupport::HttpResult get(const std::string& path) const {
    return testsupport::http(port_, "GET", path);
  }
  double metric(const std::string& series) const {
    const auto text = get("/metrics").body;
    const auto pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return -1;
    return std::stod(text.substr(pos + series.size() + 2));
  }
  bool ready() const { return get("/readyz").status == 200; }

 private:
  static std::vector<std::string> command(std::vector<std::string> prefix, const Fleet& fleet) {
    prefix.insert(prefix.end(), {THINGSYNC_PATH, "run", "--config", fleet.config().string()});
    return prefix;
  }

  Process proc_;
  std::uint16_t port_ = 0;
};

inline std::map<std::string, std::string> passwords(const Sim& sim) {
  std::map<std::string, std::string> out;
  const auto all = sim.admin("GET", "/_sim/bindings").json();
  for (const auto& b : all["items"]) {
    out[thingsync::core::DeviceId::parse(b["deviceId"].get<std::string>())->canonical()] =
        b["password"].get<std::string>();
  }
  return out;
}


}  // namespace thingsync::e2e
