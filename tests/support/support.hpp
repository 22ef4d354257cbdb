#pragma once

// Support for tests that run the real binaries: temporary directories (temp_dir.hpp), child
// processes, the simulator, and the loopback HTTP client (http_client.hpp).
// Everything here feeds the secrets audit (artifacts.hpp): what the binaries write is recorded,
// and the secrets the tests give them are registered.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "artifacts.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

namespace thingsync::testsupport {

/// A child process with stdout and stderr captured into files (in the audit's artifacts
/// directory when there is one). Killed (SIGKILL) on destruction if still running.
class Process {
 public:
  /// `env` entries ("K=V") are added to the current environment. Registered as secrets: the
  /// values of added variables whose names say PASSWORD, SECRET, TOKEN, KEY or CRED, and the
  /// values of --token and --oauth-client (thingsync-sim's) in `argv`.
  Process(std::vector<std::string> argv, std::vector<std::string> env = {},
          std::filesystem::path cwd = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  /// Waits for the exit; nullopt when it did not exit within `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(120));
  void signal(int sig);
  bool running();
  std::string out() const;  ///< everything written to stdout so far
  std::string err() const;  ///< everything written to stderr so far
  /// Waits until stdout or stderr contains `text` (polling the capture files).
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::optional<TempDir> dir_;  ///< holds the capture files when the audit does not
  std::filesystem::path out_, err_;
};

/// thingsync-sim (THINGSYNC_SIM_PATH) on 127.0.0.1 with a free port; `--admin` is always on.
class Sim {
 public:
  explicit Sim(std::vector<std::string> args = {}, std::string token = "e2e-token");
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& token() const { return token_; }
  Process& process() { return *proc_; }

  HttpResult api(const std::string& method, const std::string& target,
                 const nlohmann::json& body = nullptr) const;
  HttpResult admin(const std::string& method, const std::string& target,
                   const nlohmann::json& body = nullptr) const;
  /// Every binding, walking the pages of GET /mqtt/bindings.
  std::vector<nlohmann::json> bindings() const;
  /// POST a binding as a user of the API would; returns its id.
  std::string create(const std::string& device_id, const std::string& password) const;

 private:
  std::string token_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Process> proc_;
};

/// A password that meets the API's policy.
inline const char* kGoodPassword = "Correct-Horse-Battery-9-Staple";

}  // namespace thingsync::testsupport
