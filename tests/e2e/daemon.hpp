#pragma once

// The real daemon in an e2e test: started on a Fleet, watched through its metrics, its
// /readyz and its log, and the sim's bindings as the daemon left them.

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "fleet.hpp"
#include "thingsync/core/device_id.hpp"

namespace thingsync::e2e {

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
  Daemon(const Fleet& fleet, std::vector<std::string> env = {})
      : proc_({THINGSYNC_PATH, "run", "--config", fleet.config().string()}, std::move(env)) {
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
