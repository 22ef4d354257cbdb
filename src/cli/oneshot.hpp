#pragma once

// What plan, apply, diff and export share: the loading of their inputs, the targets of a
// pass, the observation and plan of one pass on an io_context.

#include <utility>  // before Asio: Boost 1.74 forgets it

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "cli/commands.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/core/result.hpp"
#include "thingsync/engine/desired.hpp"
#include "thingsync/engine/pass.hpp"
#include "thingsync/engine/saved_plan.hpp"
#include "thingsync/engine/session.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/state/writer_lock.hpp"

namespace thingsync::cli {

struct Loaded {
  config::Config config;
  config::LoadResult desired;
  std::unique_ptr<state::WriterLock> lock;  // apply: the one writer of the state file
  std::unique_ptr<state::StateStore> state;
  engine::PreparedDesired prepared;
};

enum class Access : std::uint8_t { kRead, kWrite };

/// Desired state (with every password source resolved) and state file (locked for a writer,
/// bound to the config's API), or nothing, with the errors printed. With `meanwhile`, the
/// desired state is loaded on another thread while `meanwhile` runs on this one (the remote
/// list: the two do not depend on each other); it runs once the state file is open and may
/// read the Loaded's config and state, nothing else. When the desired state fails to load (or
/// a password source fails), `give_up` is called on the loading thread: it should make
/// `meanwhile` end soon (cut the list), since nothing will be planned.
std::optional<Loaded> load_all(config::Config cfg, Access access,
                               const std::function<void(const Loaded&)>& meanwhile = {},
                               const std::function<void()>& give_up = {});

/// The devices a pass is limited to (`--target`, `--target-file`). Inactive: the whole fleet;
/// active with no device: nothing at all (an empty target file never means "everything").
struct Targets {
  bool active = false;
  std::vector<core::DeviceId> devices;  ///< sorted, each once

  engine::DevicePredicate predicate() const;
  std::vector<std::string> canonical() const;
};
/// From `--target` (any spelling of a device ID) and `--target-file` (the devices of that file
/// of the desired state). The error names the bad argument.
core::Result<Targets, std::string> resolve_targets(const std::vector<std::string>& ids,
                                                   const std::string& target_file,
                                                   const config::DesiredState& desired);

/// sync.prune and sync.maxDeletes, or `--max-deletes` when given (validated by the caller).
core::SyncPolicy policy_of(const config::Config& c, const std::string& max_deletes_override);

/// A one-shot pass's plan, and what the delete rules made of its deletes.
struct Planned {
  engine::OneShotPlan o;
  engine::DeleteOutcome deletes;
};
/// The full list in scope and the plan on it, for the targets; then the delete rules (grace,
/// windows, `approvals` of a blocked set), which record their tombstones in the state.
boost::asio::awaitable<core::Result<Planned, std::string>> observe_and_plan(
    Loaded& l, engine::Session& session, const Targets& targets, const core::SyncPolicy& policy,
    std::vector<std::string> approvals = {});

/// observe_and_plan() on a list already made (engine::list_for_plan, say while the desired
/// state loaded): the plan, then the delete rules.
core::Result<Planned, std::string> plan_listed(Loaded& l, engine::OneShotPlan listed,
                                               const Targets& targets,
                                               const core::SyncPolicy& policy,
                                               std::vector<std::string> approvals = {});

/// What a saved plan records of this one (engine::describe_plan plus the API, the scope, the
/// desired state's identity under `salt` and its commit, the targets and the delete limit).
/// nullopt, with the diagnostics printed, when a password source fails.
std::optional<engine::SavedPlan> describe(const Loaded& l, const engine::OneShotPlan& o,
                                          const Targets& targets, const core::SyncPolicy& policy,
                                          const std::string& salt,
                                          std::span<const std::string> also = {});

/// Runs `aw` on `ioc` to its end.
template <typename T>
T run_on(boost::asio::io_context& ioc, boost::asio::awaitable<T> aw) {
  auto f = boost::asio::co_spawn(ioc, std::move(aw), boost::asio::use_future);
  ioc.run();
  return f.get();
}

/// plan's exit code: 3 when the guard blocked deletes, 2 for changes, 0 for none.
int plan_exit_code(const core::Plan& p);

/// The plan as `--output` asks: text (colour on a terminal), json or markdown.
/// False, with an error logged, when standard output did not take it all (a full disk, a
/// closed pipe): a CI job must not read a cut plan as a whole one.
bool print_plan(const core::Plan& plan, const std::string& output);

}  // namespace thingsync::cli
