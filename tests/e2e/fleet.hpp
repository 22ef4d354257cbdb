#pragma once

// An e2e fleet: a temporary directory with a config pointing at a thingsync-sim, a desired
// state, a fleet key and a state file; runs the real thingsync binary against it.

#include <map>
#include <string>
#include <vector>

#include "support.hpp"

namespace thingsync::e2e {

using testsupport::Process;
using testsupport::Sim;
using testsupport::TempDir;

struct FleetOptions {
  bool prune = false;
  std::string max_deletes = "5%";
  int concurrency = 8;
  std::string rate_limit = "2000";        ///< sync.rateLimit: a number or "auto"
  std::string extra_sync;                 ///< more YAML lines under sync:
  std::string state_path = "state.json";  ///< state.path, relative to the fleet directory
  std::string journal_path;               ///< state.journalPath (relative too); empty: none
  std::string base_url;                   ///< api.baseUrl; empty: the sim's
  std::string api_timeout = "5s";         ///< api.timeout
  std::string scope_client_id;            ///< scope.clientId; empty: none
};

class Fleet {
 public:
  Fleet(const Sim& sim, FleetOptions options = {});

  /// Writes the desired state: every device with the derive default, except those in
  /// `literal` (device → password, written as `value:`).
  void set_desired(const std::vector<std::string>& devices,
                   const std::map<std::string, std::string>& literal = {});
  /// The password thingsync derives for `device` with this fleet's key (registered as a
  /// secret for the audit, as write_file() registers every password set_desired() gives).
  std::string derived(const std::string& device) const;

  struct Run {
    int code = -1;
    std::string out, err;
  };
  /// Runs `thingsync <args> --config <config>` to its end; the state file, the journal and
  /// an export it leaves are recorded for the audit.
  Run run(std::vector<std::string> args) const;
  Run apply() const { return run({"apply", "--yes"}); }
  Run plan_json() const { return run({"plan", "--output", "json"}); }

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config() const { return dir_ / "config.yaml"; }
  std::filesystem::path state() const { return dir_ / state_path_; }
  std::filesystem::path desired_dir() const { return dir_ / "fleet"; }

 private:
  void record_outputs(const std::vector<std::string>& args) const;

  const Sim& sim_;
  TempDir dir_{"thingsync-e2e"};
  std::string key_;
  std::string state_path_;
};

/// Every binding the sim holds: canonical device ID → the passwords of its bindings (one entry
/// per binding, "" when it has none).
std::map<std::string, std::vector<std::string>> remote_passwords(const Sim& sim);

/// Writes (POST/PUT/DELETE) the sim counted since its counters were last reset.
int writes(const Sim& sim);
/// Requests of one method the sim counted.
int requests(const Sim& sim, const std::string& method);
void reset_counters(const Sim& sim);

/// Device IDs "imei:35000000000NNNN" for n = first .. first+count-1.
std::vector<std::string> imeis(int first, int count);

/// The id of the (first) binding the sim holds for `device` (fails the test when none).
std::string binding_of(const Sim& sim, const std::string& device);
/// A portal user sets another password on binding `id` (and says who they are).
void portal_edit(const Sim& sim, const std::string& id, const std::string& device,
                 const std::string& who = "alice@example.com");

}  // namespace thingsync::e2e
