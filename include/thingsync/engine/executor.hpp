#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "thingsync/api/bindings.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/env.hpp"
#include "thingsync/core/plan.hpp"
#include "thingsync/engine/change_journal.hpp"
#include "thingsync/engine/desired.hpp"
#include "thingsync/obs/metrics.hpp"
#include "thingsync/state/state_store.hpp"

namespace thingsync::engine {

struct Progress {
  std::size_t done = 0;
  std::size_t total = 0;
  std::size_t failed = 0;
};

struct ExecOptions {
  std::uint32_t concurrency = 8;  ///< devices worked on at once (the client bounds requests too)
  /// Creates journaled as pending with one fsync before they start.
  std::size_t journal_batch = 512;
  /// Buffered state records are flushed at least this often.
  std::chrono::milliseconds flush_interval{1000};
  config::EnvLookup env = config::process_env();
  std::function<std::int64_t()> now_ms;              ///< wall clock, ms since epoch
  std::function<void(const Progress&)> on_progress;  ///< after each device, on the io thread
  obs::Metrics* metrics = nullptr;
  /// Devices pending from an earlier run whose create may have happened: looked up first.
  std::vector<core::DeviceId> unresolved_pending;
  const bool* stop = nullptr;  ///< set to stop starting new devices (SIGTERM)
  /// Writes only on fresh evidence. Unless the plan's observation is a full list made in this
  /// pass, each write first looks at what it acts on: a delete GETs its binding (gone or
  /// moved to another device: not sent) and, for a duplicate, the binding kept for the device
  /// (not live: nothing deleted); an update GETs its binding (moved to another device: not
  /// sent, for the PUT would move it back and take that device's login); a create looks the
  /// device up (bound meanwhile, in the portal say: adopted, not created twice).
  bool look_first = true;
  /// scope.clientId, when set. The bindings a create makes belong to the API key's client, and
  /// a list in scope would never show them if that is another client: every full pass would
  /// create every device again. So the first create of a run is made alone and then looked for
  /// in scope; if it is not there, no other create is sent (ExecReport::scope_error).
  std::optional<std::string> scope_client_id;
  /// Set: creates are not sent, each failing with this reason (a scope found wrong earlier).
  std::string refuse_creates;
  /// After each write sent to the API (POST, PUT, DELETE), with its outcome, on the io
  /// thread: the change journal (ChangeJournal::hook). Lookups and GETs are not writes.
  std::function<void(WriteRecord)> on_write;
};

struct OpFailure {
  core::DeviceId device;
  obs::Action action;
  std::string error;  ///< ApiError::to_string(): status, title, detail; never a secret
  bool permanent = false;
};

struct ExecReport {
  std::size_t created = 0;
  std::size_t updated = 0;
  std::size_t deleted = 0;
  std::size_t adopted = 0;  ///< creates that found the device already bound
  std::size_t failed = 0;
  std::vector<OpFailure> failures;
  /// Devices skipped because an earlier permanent failure's backoff has not run out.
  struct Waiting {
    std::string device;               ///< canonical
    std::int64_t next_attempt_ms = 0;  ///< wall clock, ms since the epoch
  };
  std::vector<Waiting> waiting;
  /// What the API now holds, so that a daemon can update its observed state without a list.
  std::vector<core::RemoteBinding> written_bindings;  ///< created, adopted or updated
  std::vector<std::string> deleted_ids;
  /// Bindings a look found other than planned on (moved to another device), or that a create
  /// adopted: to be merged into the observed state, so that the next plan is made on what is
  /// there (and an adopted binding is never created again, whatever its PUT gave).
  std::vector<core::RemoteBinding> seen_bindings;
  /// Bindings a write or a look found gone (404): to be forgotten by the observed state.
  std::vector<std::string> gone_ids;
  /// What the pass saw differs from what it planned on (a kept binding gone, an update's
  /// binding gone): plan again on what is known now.
  bool replan = false;
  std::string state_error;  ///< the state file could not be written (the run must fail)
  /// A create landed outside scope.clientId (ExecOptions::scope_client_id): the config is
  /// wrong, and no further create was sent.
  std::string scope_error;
  bool stopped = false;     ///< ExecOptions::stop ended the run early
};

/// Carries out a plan: at most `concurrency` devices at once, each device's operations in
/// order (an update and the deletes of its duplicates never overlap), a failed device never
/// blocking the others. Creates are journaled as pending before they are sent (one fsync per
/// batch; a create whose pending record could not be made durable is not sent); every outcome is recorded in `state` (fingerprints of applied passwords, failure
/// backoff) and flushed at least every flush_interval and at the end.
boost::asio::awaitable<ExecReport> execute_plan(const core::Plan& plan,
                                                const config::DesiredState& desired,
                                                const PreparedDesired& prepared,
                                                state::StateStore& state, api::Bindings& api,
                                                ExecOptions options);

/// Pending creates of an earlier pass or run (journaled before their POST, outcome unknown):
/// those whose device a complete list shows (`listed` says so) happened and are resolved in
/// `state`; the others are returned, to be looked up by device right before their create
/// (ExecOptions::unresolved_pending). Call it after a complete list only.
std::vector<core::DeviceId> resolve_pending_creates(
    state::StateStore& state, const std::function<bool(const core::DeviceId&)>& listed);

}  // namespace thingsync::engine
