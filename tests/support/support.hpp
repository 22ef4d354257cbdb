#pragma once

// Support for tests that run the real binaries: temporary directories (temp_dir.hpp), child
// processes, the simulator, and the loopback HTTP client (http_client.hpp). Everything here
// feeds the secrets audit (artifacts.hpp): what the binaries write is recorded, and the
// secrets the tests give them are registered.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
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

/// The simulator's static bearer token in the tests (`Sim`'s default).
inline const std::string kSimToken = "test-token";

/// thingsync-sim (THINGSYNC_SIM_PATH) as a child process on 127.0.0.1, and calls to it.
/// Started as `--listen 127.0.0.1:PORT [--admin] [--token TOKEN] ARGS...`: the first run on a
/// free port, later runs (start()) on the same one. Stopped on destruction (terminate()).
class Sim {
 public:
  enum class Admin { kOn, kOff };
  /// `token`: the static bearer token, empty for none (OAuth2 clients only); a --token in
  /// `args` takes its place. `admin`: the admin interface under /_sim/ (--admin), also on
  /// when `args` hold --admin.
  explicit Sim(std::vector<std::string> args = {}, std::string token = kSimToken,
               Admin admin = Admin::kOn);
  ~Sim();
  Sim(const Sim&) = delete;
  Sim& operator=(const Sim&) = delete;

  std::uint16_t port() const { return port_; }
  /// "http://127.0.0.1:PORT", or https with --tls-cert.
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
  /// The bearer token API calls carry ("" for none).
  const std::string& token() const { return token_; }
  /// Another bearer token for the API calls from now on (one the sim issued, say).
  void set_token(std::string token) { token_ = std::move(token); }
  /// The current run's first stdout line, "listening on http://127.0.0.1:PORT".
  const std::string& first_line() const { return first_line_; }
  /// The current run.
  Process& process() { return *runs_.back(); }

  /// A new run on the same port with the same arguments (use --data to keep the store).
  void start();
  /// SIGKILL, then waits for the exit; throws when it did not exit within 10 s.
  void kill();
  /// SIGTERM and waits (bounded); the exit code, or -1 when it had to be killed.
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(15));

  /// An API call: with the bearer token (when there is one), and Content-Type
  /// application/json for a body unless `headers` name one.
  HttpResult call(const std::string& method, const std::string& target,
                  const std::string& body = {}, HttpHeaders headers = {}) const;
  HttpResult get(const std::string& target) const { return call("GET", target); }
  HttpResult del(const std::string& target) const { return call("DELETE", target); }
  HttpResult post(const std::string& target, const nlohmann::json& body) const {
    return call("POST", target, body.dump());
  }
  HttpResult put(const std::string& target, const nlohmann::json& body) const {
    return call("PUT", target, body.dump());
  }
  /// An admin call (no token).
  HttpResult admin(const std::string& method, const std::string& target,
                   const nlohmann::json& body = nullptr) const;

  /// Follows the `next` links from `first` (a path) and returns every item; throws on a page
  /// that is not 200. `pages`: how many pages that took.
  std::vector<nlohmann::json> walk(const std::string& first, int* pages = nullptr) const;
  /// POST a binding as a user of the API would; returns its id (throws unless 201).
  std::string create(const std::string& device_id, const std::string& password) const;

  /// PUT /_sim/faults; throws unless the simulator accepted them.
  void set_faults(const nlohmann::json& faults) const;
  /// Every fault off (the command-line ones too).
  void clear_faults() const;
  /// Requests of `method` the current run counted, of one status or ("") of any; -1 when the
  /// counters did not answer.
  int count(const std::string& method, const std::string& status = "") const;
  /// OAuth2 tokens the current run issued (-1: no answer).
  int tokens_issued() const;
  /// POST /oauth2/token with client credentials; the access token ("" on failure).
  std::string fetch_token(const std::string& client_id, const std::string& secret,
                          const std::string& audience) const;

 private:
  std::vector<std::string> args_;
  std::string token_;
  std::uint16_t port_ = 0;
  std::string scheme_ = "http";
  std::string first_line_;
  std::vector<std::unique_ptr<Process>> runs_;  // every run, kept for its logs
};

/// A password that meets the API's policy.
inline const std::string kGoodPassword = "Correct-Horse-Battery-9-Staple";

}  // namespace thingsync::testsupport
