#include "cli/oneshot.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <unordered_set>

#include "cli/app.hpp"
#include "cli/common.hpp"
#include "thingsync/engine/plan_render.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/sys/git.hpp"
#include "thingsync/sys/zones.hpp"
#include "thingsync/core/delete_rules.hpp"

namespace thingsync::cli {

std::optional<Loaded> load_all(config::Config cfg, Access access,
                               const std::function<void(const Loaded&)>& meanwhile,
                               const std::function<void()>& give_up) {
  auto log = obs::logger("main");
  Loaded l{std::move(cfg), {}, nullptr, nullptr, {}};
  if (access == Access::kWrite) {
    auto lock = state::WriterLock::acquire(l.config.state_path, "thingsync apply");
    if (!lock) {
      log->error("{}", lock.error().message);
      return std::nullopt;
    }
    l.lock = std::move(lock.value());
  }
  auto st = state::StateStore::open(l.config.state_path, state::StateStore::random_salt());
  if (!st) {
    log->error("{}", st.error().message);
    return std::nullopt;
  }
  l.state = std::move(st.value());
  if (auto owned = l.state->claim(l.config.api.base_url, l.config.scope_client_id.value_or(""));
      !owned) {
    log->error("{}", owned.error().message);
    return std::nullopt;
  }
  // The desired state and its fingerprints; `prepared` only when it loaded without errors.
  const auto load_desired = [&l, &give_up] {
    const bool settled = engine::load_settled_checkout(l.config.desired_state_path, l.desired);
    if (settled && l.desired.ok()) {
      // The parse's many small blocks are free now: give their pages back before the plan,
      // whose peak decides the size of the machine.
      ::malloc_trim(0);
      l.prepared =
          engine::prepare_desired(l.desired.state, l.state->salt(), config::process_env());
    }
    if (give_up && (!settled || !l.desired.ok() || !l.prepared.ok())) give_up();
    return settled;
  };
  bool settled = false;
  if (meanwhile) {
    auto loading = std::async(std::launch::async, load_desired);
    meanwhile(l);
    settled = loading.get();
  } else {
    settled = load_desired();
  }
  if (!settled) return std::nullopt;
  print_diagnostics(l.desired.diagnostics);
  if (!l.desired.ok()) {
    log->error("desired state {} does not load: nothing was planned",
               l.config.desired_state_path.string());
    return std::nullopt;
  }
  print_diagnostics(l.prepared.diagnostics);
  if (!l.prepared.ok()) {
    log->error("password sources failed: nothing was planned");
    return std::nullopt;
  }
  return l;
}

engine::DevicePredicate Targets::predicate() const {
  if (!active) return {};
  auto set = std::make_shared<std::unordered_set<std::string>>();
  for (const auto& d : devices) set->insert(d.canonical());
  return [set](const core::DeviceId& d) { return set->contains(d.canonical()); };
}

std::vector<std::string> Targets::canonical() const {
  std::vector<std::string> out;
  for (const auto& d : devices) out.push_back(d.canonical());
  return out;
}

core::Result<Targets, std::string> resolve_targets(const std::vector<std::string>& ids,
                                                   const std::string& target_file,
                                                   const config::DesiredState& desired) {
  using R = core::Result<Targets, std::string>;
  Targets t;
  t.active = !ids.empty() || !target_file.empty();
  for (const auto& id : ids) {
    auto d = core::DeviceId::parse_with_reason(id);
    if (!d.id) {
      return R::failure("--target '" + id.substr(0, 100) + "' is not a device ID: " + d.reason);
    }
    t.devices.push_back(std::move(*d.id));
  }
  if (!target_file.empty()) {
    std::error_code ec;
    const auto wanted = std::filesystem::weakly_canonical(target_file, ec);
    std::optional<std::uint32_t> index;
    for (std::uint32_t i = 0; i < desired.files.size(); ++i) {
      std::error_code ec2;
      if (std::filesystem::weakly_canonical(desired.files[i], ec2) == wanted && !ec && !ec2) {
        index = i;
      }
    }
    if (!index) {
      return R::failure("--target-file " + target_file +
                        " is not a file of the desired state (desiredState.path)");
    }
    for (const auto& b : desired.bindings) {
      if (b.file == *index) t.devices.push_back(b.device.unpack());
    }
  }
  std::sort(t.devices.begin(), t.devices.end());
  t.devices.erase(std::unique(t.devices.begin(), t.devices.end()), t.devices.end());
  // An empty target set never stands for the whole fleet.
  if (t.active && t.devices.empty()) {
    return R::failure("--target-file " + target_file + " holds no binding: nothing to do");
  }
  return t;
}

core::SyncPolicy policy_of(const config::Config& c, const std::string& max_deletes_override) {
  core::SyncPolicy p{c.sync.prune, c.sync.max_deletes, std::nullopt};
  if (auto limit = core::parse_delete_limit(max_deletes_override)) p.max_deletes = *limit;
  return p;
}

namespace {

// A --target pass deletes only what the whole fleet's guard lets go: when the whole delete set
// is blocked (and not approved), so are the targets' deletes. Otherwise targeted applies in
// slices would take a set the guard blocks.
void guard_whole_fleet(Planned& p, state::StateStore& state, const engine::DeleteRules& rules,
                       std::int64_t now) {
  auto whole = std::move(*p.o.whole);
  p.o.whole.reset();
  core::DeleteTiming timing;
  timing.now_ms = now;
  timing.delete_after_ms = rules.delete_after_ms;
  timing.full_list = true;
  timing.next_window = rules.next_window;
  core::hold_deletes(whole.plan, state.tombstones(), timing);  // a copy: nothing recorded
  if (!whole.plan.guard_blocked()) return;
  const auto hash = core::blocked_deletes_hash(whole.plan);
  if (p.deletes.approved == hash) return;
  for (const auto& a : rules.approvals) {
    if (a != hash) continue;
    if (state.approval_used(a)) break;
    state.use_approval(a, now);
    p.deletes.approved = a;
    return;
  }
  auto& plan = p.o.pass.plan;
  for (auto& d : plan.deletes) plan.blocked.push_back({std::move(d), core::BlockReason::kMaxDeletes});
  plan.deletes.clear();
  plan.delete_limit = whole.plan.delete_limit;
  p.deletes.blocked_hash = hash;
  p.deletes.whole_fleet_blocked = whole.plan.blocked.size();
}

}  // namespace

boost::asio::awaitable<core::Result<Planned, std::string>> observe_and_plan(
    Loaded& l, engine::Session& session, const Targets& targets, const core::SyncPolicy& policy,
    std::vector<std::string> approvals) {
  using R = core::Result<Planned, std::string>;
  auto schedule = sys::delete_window_schedule(l.config.sync.delete_windows);
  if (!schedule) co_return R::failure("sync.deleteWindows: " + schedule.error());
  auto o = co_await engine::list_for_plan(session.bindings(), session.scope_query(),
                                          l.state->size());
  if (!o) co_return R::failure(o.error());
  co_return plan_listed(l, std::move(o.value()), targets, policy, std::move(approvals));
}

core::Result<Planned, std::string> plan_listed(Loaded& l, engine::OneShotPlan listed,
                                               const Targets& targets,
                                               const core::SyncPolicy& policy,
                                               std::vector<std::string> approvals) {
  using R = core::Result<Planned, std::string>;
  auto schedule = sys::delete_window_schedule(l.config.sync.delete_windows);
  if (!schedule) return R::failure("sync.deleteWindows: " + schedule.error());
  engine::plan_listed(listed, l.prepared, *l.state, policy, targets.predicate());
  Planned p{std::move(listed), {}};
  engine::DeleteRules rules;
  rules.delete_after_ms = l.config.sync.delete_after.count();
  rules.next_window = std::move(schedule.value());
  rules.approvals = std::move(approvals);
  rules.in_pass = targets.predicate();
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  p.deletes = engine::apply_delete_rules(p.o.pass, *l.state, rules, now);
  if (p.o.whole) guard_whole_fleet(p, *l.state, rules, now);
  return p;
}

std::optional<engine::SavedPlan> describe(const Loaded& l, const engine::OneShotPlan& o,
                                          const Targets& targets, const core::SyncPolicy& policy,
                                          const std::string& salt,
                                          std::span<const std::string> also) {
  core::Diagnostics diags;
  auto hash = engine::desired_identity(l.desired.state, salt, config::process_env(), diags);
  if (!hash) {
    print_diagnostics(diags);
    return std::nullopt;
  }
  auto s = engine::describe_plan(o.pass.plan, engine::listed_for(o.observed, o.pass.plan, also), also);
  s.salt = salt;
  s.desired_hash = std::move(*hash);
  s.api_base_url = l.config.api.base_url;
  s.scope_client_id = l.config.scope_client_id.value_or("");
  s.desired_commit = sys::git_head_commit(l.config.desired_state_path).value_or("");
  s.targets = targets.canonical();
  s.max_deletes = core::to_string(policy.max_deletes);
  return s;
}

int plan_exit_code(const core::Plan& p) {
  if (p.guard_blocked()) return kExitGuard;
  return p.empty() ? kExitOk : kExitChanges;
}

bool print_plan(const core::Plan& plan, const std::string& output) {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (output == "json") {
    std::fputs(engine::render_plan_json(plan).c_str(), stdout);
  } else if (output == "markdown") {
    engine::write_plan_markdown(stdout, plan, now);
  } else {
    engine::write_plan_text(stdout, plan, ::isatty(STDOUT_FILENO) == 1, now);
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    obs::logger("main")->error("the plan could not be written to standard output: {}",
                               std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace thingsync::cli
