#pragma once

// Chaos suite support: the real `thingsync run` against the real thingsync-sim (restartable on
// the same port) or a hostile server, with the end state checked from both sides: the
// simulator's store (bindings, passwords, duplicates, unmanaged bindings) and the daemon's
// metrics, exit code and state file.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support.hpp"

namespace thingsync::chaos {

using testsupport::HttpResult;
using testsupport::Process;
using testsupport::Sim;
using testsupport::TempDir;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;
using Labels = std::map<std::string, std::string>;

/// Polls `cond` every `interval` until it holds or `timeout` passes; true when it held.
bool eventually(const std::function<bool()>& cond, Ms timeout, Ms interval = Ms(50));

double seconds_since(Clock::time_point t0);

/// The seed of this run's random choices: THINGSYNC_CHAOS_SEED, else a random one.
std::uint64_t chaos_seed();

/// A stream for a scenario's summary line: fixed notation, one decimal.
std::ostringstream summary();
/// Prints one "chaos: ..." line to stdout (the lead collects these).
void report(const std::ostringstream& line);

/// Device IDs "imei:35NNNNNNNNNNNNN" for n = first .. first+count-1.
std::vector<std::string> devices(int first, int count);

/// A Prometheus text exposition, parsed.
class Scrape {
 public:
  explicit Scrape(const std::string& text);
  bool empty() const { return samples_.empty(); }
  /// Sum of the samples of `name` whose labels include all of `labels` (0 when none).
  double sum(const std::string& name, const Labels& labels = {}) const;

 private:
  struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
  };
  std::vector<Sample> samples_;
};

/// A desired state: devices with the derive default, some with a literal password.
struct Desired {
  std::vector<std::string> devices;
  std::map<std::string, std::string> literal;  ///< device -> password, written as `value:`
  Desired(std::vector<std::string> d = {}, std::map<std::string, std::string> l = {})
      : devices(std::move(d)), literal(std::move(l)) {}
};

/// One line of the simulator's --request-log.
struct LoggedRequest {
  std::int64_t time_ms = 0;
  std::string method, path;
  int status = 0;
  bool dropped = false;
  bool api() const { return path.rfind("/mqtt/", 0) == 0; }
};
std::vector<LoggedRequest> read_request_log(const std::filesystem::path& file);

/// How the daemon authenticates.
struct AuthSpec {
  std::string token;            ///< auth.tokenFile holding this token
  std::string oauth_token_url;  ///< else auth.oauth2 with this tokenUrl
  std::string client_id = "chaos-client";
  std::string client_secret = "chaos-client-secret-0123456789";
  static AuthSpec token_file(std::string t) { return {.token = std::move(t)}; }
  static AuthSpec oauth2(std::string url) { return {.oauth_token_url = std::move(url)}; }
  /// The simulator flag that accepts this client.
  std::string sim_client_flag() const { return client_id + ":" + client_secret; }
};

struct SyncSpec {
  std::string timeout = "3s";  ///< api.timeout
  std::string poll = "300ms";
  std::string full_resync = "2s";
  std::string overlap = "1s";
  bool prune = false;
  std::string max_deletes = "5%";
  int concurrency = 8;
  double rate_limit = 2000;
  std::string scope_client_id;  ///< empty: no scope
};

/// A daemon installation in a temporary directory: config, fleet key, token or client secret,
/// desired state (fleet/) and state file.
class Rig {
 public:
  Rig();
  void configure(const std::string& base_url, const AuthSpec& auth, const SyncSpec& sync = {});
  /// Replaces the token file, by rename (as rotation tools do) or rewritten in place.
  void write_token(const std::string& token, bool in_place = false) const;
  /// The desired-state YAML of one file (the key file is named relative to fleet/).
  static std::string desired_yaml(const Desired& desired);
  /// Writes fleet/fleet.yaml (by rename: the daemon never sees half a file).
  void set_desired(const Desired& desired) const;
  /// The password `desired` gives `device`: its literal one, else the derived one.
  std::string password(const Desired& desired, const std::string& device) const;
  /// Every password of `desired` (to look for in logs and state files).
  std::vector<std::string> passwords(const Desired& desired) const;

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config() const { return dir_ / "config.yaml"; }
  std::filesystem::path state() const { return dir_ / "state.json"; }
  std::filesystem::path desired_dir() const { return dir_ / "fleet"; }
  std::string fleet_key_path() const { return (dir_ / "fleet-key").string(); }

 private:
  TempDir dir_{"thingsync-chaos"};
  std::string key_;
};

/// Runs `thingsync <args> --config <rig config>` to its end (at most 120 s).
struct OneShot {
  int code = -1;
  std::string out, err;
};
OneShot run_thingsync(const Rig& rig, std::vector<std::string> args);

/// `thingsync run` on a rig; the metrics port comes from its start line.
class Daemon {
 public:
  explicit Daemon(const Rig& rig);
  Process& proc() { return proc_; }
  const Process& proc() const { return proc_; }
  /// /metrics, parsed; empty when it did not answer.
  Scrape scrape() const;
  double metric(const std::string& name, const Labels& labels = {}) const;
  int status(const std::string& path) const;  ///< HTTP status of a GET (0: no answer)
  bool ready() const { return status("/readyz") == 200; }
  /// Drift gauges all 0, no delete blocked, ready.
  bool settled() const;
  /// SIGTERM, then the exit code (-1: still running after `timeout`, then SIGKILLed).
  int stop(Ms timeout = std::chrono::seconds(10));
  void kill9();
  /// Lines of the log (stderr) that contain `text`.
  std::size_t log_count(const std::string& text) const;

 private:
  Process proc_;
  std::uint16_t port_ = 0;
};

/// Bindings made by someone else (portal users): thingsync must not touch them without prune
/// (nor, with a scope, those of other clients).
struct Unmanaged {
  std::map<std::string, nlohmann::json> by_id;  ///< the admin view when they were made
};
Unmanaged seed_unmanaged(const Sim& sim, const std::vector<std::string>& devices,
                         const std::string& client_id = "");

/// The simulator's store compared with the desired state.
struct SimView {
  bool reachable = false;
  std::size_t bindings = 0;           ///< everything the store holds
  std::size_t missing = 0;            ///< desired devices without a binding
  std::size_t wrong_password = 0;     ///< desired devices whose binding has another password
  std::size_t duplicated = 0;         ///< devices with more than one binding
  std::size_t extra = 0;              ///< bindings neither desired nor unmanaged
  std::size_t unmanaged_touched = 0;  ///< unmanaged bindings deleted or modified
  bool converged() const {
    return reachable && missing + wrong_password + duplicated + extra + unmanaged_touched == 0;
  }
  std::string describe() const;
};
SimView inspect(const Sim& sim, const Rig& rig, const Desired& desired, const Unmanaged& unmanaged);

/// Waits until the store matches the desired state and the daemon has settled.
bool wait_converged(const Sim& sim, const Rig& rig, const Desired& desired,
                    const Unmanaged& unmanaged, const Daemon& daemon, Ms timeout);

/// The state file after the daemon stopped, compared with the simulator's store.
struct StateView {
  std::size_t bindings = 0;    ///< fingerprint records
  std::size_t pending = 0;     ///< pending creates left behind
  std::size_t failures = 0;    ///< devices in backoff
  std::size_t dangling = 0;    ///< records whose binding id the store does not hold (same device)
  bool secrets_found = false;  ///< a desired password appears in the file
};
StateView inspect_state(const Sim& sim, const Rig& rig, const Desired& desired);

/// The daemon's side at the end: metrics agree with the store, SIGTERM exits 0, the state file
/// holds exactly the desired bindings, `thingsync plan` has nothing to do, and no secret (the
/// passwords, `tokens`) reached the log or the state file. Faults must be off (plan lists the
/// store).
void check_daemon_side(Daemon& daemon, const Sim& sim, const Rig& rig, const Desired& desired,
                       std::size_t observed, const std::vector<std::string>& tokens);

/// Whether any of `secrets` occurs in `text`.
bool contains_any(const std::string& text, const std::vector<std::string>& secrets);

}  // namespace thingsync::chaos
