#include "thingsync/sys/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "temp_dir.hpp"

using thingsync::sys::Notifier;
using thingsync::testsupport::TempDir;

namespace {

// A datagram socket standing in for systemd's notify socket.
struct NotifySocket {
  int fd = -1;
  TempDir dir{"thingsync-notify"};
  NotifySocket() {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto path = (dir.path() / "notify.sock").string();
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd);
  }
  std::string receive() {
    char buf[4096];
    const auto n = ::recv(fd, buf, sizeof buf, 0);  // blocks until the datagram is there
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }
};

}  // namespace

TEST_CASE("the notifier sends READY, RELOADING with MONOTONIC_USEC, STATUS and STOPPING",
          "[sys][notify]") {
  NotifySocket sock;
  Notifier n;
  REQUIRE(n.enabled());
  n.ready();
  CHECK(sock.receive() == "READY=1");
  n.reloading();
  const auto reloading = sock.receive();
  CHECK(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
  CHECK(std::stoll(reloading.substr(reloading.find('=', 12) + 1)) > 0);
  n.status("desired=3 observed=2\ndrift=1");
  CHECK(sock.receive() == "STATUS=desired=3 observed=2 drift=1");
  n.stopping();
  CHECK(sock.receive() == "STOPPING=1");
}

TEST_CASE("the watchdog interval is half of WATCHDOG_USEC", "[sys][notify]") {
  NotifySocket sock;
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  Notifier n;
  REQUIRE(n.watchdog_interval());
  CHECK(n.watchdog_interval()->count() == 2'000'000);
  n.watchdog();
  CHECK(sock.receive() == "WATCHDOG=1");
}

TEST_CASE("without NOTIFY_SOCKET the notifier is a no-op", "[sys][notify]") {
  ::unsetenv("NOTIFY_SOCKET");
  Notifier n;
  CHECK_FALSE(n.enabled());
  CHECK_FALSE(n.watchdog_interval());
  n.ready();  // must not crash or block
}
