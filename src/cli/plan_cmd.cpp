// thingsync plan: one observation, one plan, nothing written to the API.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <boost/asio/post.hpp>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/oneshot.hpp"
#include "thingsync/obs/log.hpp"

namespace thingsync::cli {
namespace {

// Written beside the target, then renamed over it: a reader never sees half a plan.
bool write_saved_plan(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      obs::logger("main")->error("cannot write the saved plan {}: {}", tmp, std::strerror(errno));
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    obs::logger("main")->error("cannot write the saved plan {}: {}", path, std::strerror(errno));
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

int run_plan(const CommandOptions& opts) {
  auto log = obs::logger("main");
  if (!opts.max_deletes.empty() && !core::parse_delete_limit(opts.max_deletes)) {
    std::fprintf(stderr, "plan: --max-deletes '%s' is not a count or a percentage\n",
                 opts.max_deletes.substr(0, 100).c_str());
    return kExitUsage;
  }
  auto cfg = load_config_or_report(opts.config_file);
  if (!cfg) return kExitError;
  // A --target that is no device ID is a usage error before anything is read.
  if (auto ids = resolve_targets(opts.targets, {}, {}); !ids) {
    std::fprintf(stderr, "plan: %s\n", ids.error().c_str());
    return kExitUsage;
  }
  // The remote is listed while the desired state loads: neither needs the other. A desired
  // state that does not load cuts the list: nothing will be planned.
  boost::asio::io_context ioc;
  std::unique_ptr<engine::Session> session;
  std::optional<core::Result<engine::OneShotPlan, std::string>> listed;
  auto l = load_all(std::move(*cfg), Access::kRead, [&](const Loaded& loading) {
    auto s = engine::Session::create(ioc.get_executor(), loading.config, nullptr);
    if (!s) {
      listed = core::Result<engine::OneShotPlan, std::string>::failure(s.error());
      return;
    }
    session = std::move(s.value());
    listed = run_on(ioc, engine::list_for_plan(session->bindings(), session->scope_query(),
                                               loading.state->size()));
  }, [&ioc, &session] {
    boost::asio::post(ioc, [&session] {
      if (!session) return;
      session->client().stop();
      session->auth().stop();
    });
  });
  if (!l) return kExitError;
  auto targets = resolve_targets(opts.targets, opts.target_file, l->desired.state);
  if (!targets) {
    std::fprintf(stderr, "plan: %s\n", targets.error().c_str());
    return kExitUsage;
  }
  if (!listed->ok()) {
    log->error("{}", listed->error());
    return kExitError;
  }
  if (opts.out_file.empty()) {
    // Nothing reads the desired entries from here on (the plan takes `prepared`; only a saved
    // plan hashes the entries): at a million, 36 MB given back before the plan's peak.
    l->desired.state.bindings = {};
  }
  const auto policy = policy_of(l->config, opts.max_deletes);
  auto observed = plan_listed(*l, std::move(listed->value()), *targets, policy);
  if (!observed) {
    log->error("{}", observed.error());
    return kExitError;
  }
  const auto& plan = observed->o.pass.plan;
  if (!opts.out_file.empty()) {
    const auto saved =
        describe(*l, observed->o, *targets, policy, state::StateStore::random_salt());
    if (!saved) return kExitError;
    if (!write_saved_plan(opts.out_file, engine::saved_plan_json(*saved, plan))) return kExitError;
    log->info("plan saved to {}: apply it with thingsync apply --config {} {}", opts.out_file,
              opts.config_file, opts.out_file);
  }
  if (!print_plan(plan, opts.output)) return kExitError;
  if (observed->deletes.whole_fleet_blocked > 0) {
    std::fprintf(stderr,
                 "plan: the targets' deletes are blocked: the whole fleet's delete set (%zu) is "
                 "over the guard; approve it with --approve-deletes %s\n",
                 observed->deletes.whole_fleet_blocked, observed->deletes.blocked_hash.c_str());
  }
  return plan_exit_code(plan);
}

}  // namespace thingsync::cli
