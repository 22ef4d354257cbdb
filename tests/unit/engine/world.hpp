#pragma once

// One thingsync installation against FakeApi, for the engine's unit tests: a desired state,
// a state store on a MemoryMedium (only synced bytes survive a crash), and the two ways a
// pass is driven: the one-shot pass of `plan`/`apply`, and the daemon's observer with its
// full and device-scoped passes.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "fake_api.hpp"
#include "thingsync/engine/observer.hpp"
#include "thingsync/engine/pass.hpp"
#include "thingsync/state/medium.hpp"
#include "thingsync/state/state_store.hpp"

namespace thingsync::testing {

/// A strong password for device number n ("Pw-…"): what the desired state says.
std::string password(int n);

class World {
 public:
  World();

  FakeApi api;
  std::shared_ptr<state::MemoryMedium> medium = std::make_shared<state::MemoryMedium>();
  std::unique_ptr<state::StateStore> state;
  core::SyncPolicy policy{true, {core::DeleteLimit::Kind::kCount, 10}};

  /// The desired state: these devices with these passwords (literal sources).
  void want(const std::vector<std::pair<std::string, std::string>>& bindings);
  /// A restart: the state store opened again on what is durable (after a crash, only that).
  void restart(bool crash = false);

  /// `thingsync apply`: one pass on a full list of its own. Returns its plan.
  engine::PassPlan apply();
  /// `thingsync plan`: the plan only.
  engine::PassPlan plan();

  /// The daemon's observation and passes (the Reconciler's composition of them).
  engine::Observer& observer() { return *observer_; }
  /// The daemon's start: a full list, then a full pass on it.
  void start() {
    REQUIRE(full_list());
    full_pass();
  }
  bool full_list();  ///< false: it failed
  bool poll();       ///< true: something changed
  engine::Observer::Outcome poll_outcome();
  engine::PassPlan full_pass();  ///< fresh when a full list came right before
  engine::PassPlan devices_pass(const std::vector<std::string>& devices);
  /// Moves the daemon's steady clock (the API's clock is api.now_ms).
  void advance_local(std::int64_t ms) { local_ms_ += ms; }

  engine::ExecReport last_report;
  /// Every write the executor reported (ExecOptions::on_write), in order.
  std::vector<engine::WriteRecord> writes;

  /// Every desired device has exactly one binding, with its desired password, and there is
  /// nothing else (prune). Fails the test with a description when not.
  void check_converged() const;

 private:
  engine::PassPlan execute(engine::PassPlan pass, std::vector<core::DeviceId> unresolved);

  std::vector<std::pair<std::string, std::string>> wanted_;
  config::DesiredState desired_;
  engine::PreparedDesired prepared_;
  std::int64_t local_ms_ = 0;
  std::unique_ptr<engine::Observer> observer_;
};

}  // namespace thingsync::testing
