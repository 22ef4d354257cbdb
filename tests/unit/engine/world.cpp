#include "world.hpp"

#include <map>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include "thingsync/config/desired_state.hpp"

namespace thingsync::testing {
namespace {

template <typename T>
T run(boost::asio::awaitable<T> aw) {
  boost::asio::io_context ioc;
  auto f = boost::asio::co_spawn(ioc, std::move(aw), boost::asio::use_future);
  ioc.run();
  return f.get();
}

api::ListQuery scope() {
  api::ListQuery q;
  q.sort = "createdAt";
  return q;
}

}  // namespace

std::string password(int n) { return "Pw-" + std::to_string(n) + "-aB3$aB3$aB3$aB3$aB3$"; }

World::World() {
  restart();
  engine::Clocks clocks{[this] { return api.now_ms; }, [this] { return local_ms_; }};
  observer_ = std::make_unique<engine::Observer>(api, scope(), 60'000, clocks);
}

void World::want(const std::vector<std::pair<std::string, std::string>>& bindings) {
  wanted_ = bindings;
  std::string yaml = "bindings:\n";
  for (const auto& [device, pw] : bindings) {
    yaml += "  - deviceId: \"" + device + "\"\n    password: {value: \"" + pw + "\"}\n";
  }
  auto loaded = config::parse_desired_state_file(yaml, "fleet.yaml", config::process_env());
  REQUIRE(loaded.ok());
  desired_ = std::move(loaded.state);
  prepared_ = engine::prepare_desired(desired_, state->salt(), config::process_env());
  REQUIRE(prepared_.ok());
}

void World::restart(bool crash) {
  if (crash) medium->crash();
  auto st = state::StateStore::open(medium, "salt-of-this-test-0123456789abcdef");
  REQUIRE(st);
  state = std::move(st.value());
  if (!wanted_.empty()) want(wanted_);  // fingerprints under the (same) salt
}

engine::PassPlan World::plan() {
  auto o = run(engine::observe_and_plan(api, scope(), prepared_, *state, policy));
  REQUIRE(o);
  return std::move(o->pass);
}

engine::PassPlan World::apply() {
  auto o = run(engine::observe_and_plan(api, scope(), prepared_, *state, policy));
  REQUIRE(o);
  auto unresolved = engine::settle_after_list(*state, o->observed, prepared_);
  return execute(std::move(o->pass), std::move(unresolved));
}

engine::PassPlan World::execute(engine::PassPlan pass, std::vector<core::DeviceId> unresolved) {
  engine::ExecOptions eo;
  eo.unresolved_pending = std::move(unresolved);
  eo.now_ms = [this] { return api.now_ms; };
  eo.on_write = [this](engine::WriteRecord r) { writes.push_back(std::move(r)); };
  last_report = run(engine::execute_pass(pass, desired_, prepared_, *state, api, std::move(eo)));
  return pass;
}

bool World::full_list() {
  const auto out = run(observer_->full_list());
  if (!out.ok) return false;
  std::vector<core::DeviceId> devices;
  for (const auto& p : state->pending()) devices.push_back(p.device);
  std::map<std::string, bool> seen;
  for (const auto& b : observer_->set().of_devices(devices)) seen[b.device.canonical()] = true;
  std::map<std::string, bool> wanted;
  for (const auto& b : prepared_.bindings) wanted[b.device.unpack().canonical()] = true;
  engine::settle_after_full_list(
      *state, observer_->set().ids(),
      [&](const core::DeviceId& d) { return seen.contains(d.canonical()); },
      [&](const core::DeviceId& d) { return wanted.contains(d.canonical()); });
  return true;
}

engine::Observer::Outcome World::poll_outcome() { return run(observer_->poll()); }

bool World::poll() {
  const auto out = poll_outcome();
  return out.ok && out.changed;
}

engine::PassPlan World::full_pass() {
  // As the daemon's Reconciler: planned again while the pass finds the world moved.
  for (int round = 0;; ++round) {
    const bool fresh = observer_->take_fresh();
    const auto observed = observer_->set().all();
    auto pass = engine::plan_pass(engine::PassKind::kFull, fresh, prepared_.bindings, observed,
                                  state->applied_list(), policy);
    std::vector<core::DeviceId> pending;
    for (const auto& p : state->pending()) pending.push_back(p.device);
    auto out = execute(std::move(pass), std::move(pending));
    observer_->record(last_report);
    if (!last_report.replan || round == 3) return out;
  }
}

engine::PassPlan World::devices_pass(const std::vector<std::string>& spellings) {
  std::vector<core::DeviceId> devices;
  for (const auto& s : spellings) devices.push_back(*core::DeviceId::parse(s));
  std::sort(devices.begin(), devices.end());
  std::vector<core::DesiredBinding> wanted;
  for (const auto& d : prepared_.bindings) {
    if (std::binary_search(devices.begin(), devices.end(), d.device.unpack())) wanted.push_back(d);
  }
  const auto observed = observer_->set().of_devices(devices);
  std::vector<core::AppliedBinding> applied;
  for (const auto& b : observed) {
    if (auto a = state->find(b.id)) applied.push_back(*a);
  }
  auto pass = engine::plan_pass(engine::PassKind::kDevices, false, wanted, observed, applied,
                                policy);
  auto out = execute(std::move(pass), {});
  observer_->record(last_report);
  return out;
}

void World::check_converged() const {
  std::ostringstream problems;
  std::map<std::string, std::string> want;
  for (const auto& [device, pw] : wanted_) want[core::DeviceId::parse(device)->canonical()] = pw;
  std::map<std::string, int> bound;
  for (const auto& [id, s] : api.store) {
    const auto& device = s.binding.device.canonical();
    ++bound[device];
    const auto it = want.find(device);
    if (it == want.end()) {
      problems << "undesired binding " << id << " for " << device << "\n";
    } else if (s.password != it->second) {
      problems << device << " (" << id << ") holds another password than the desired one\n";
    }
  }
  for (const auto& [device, n] : bound) {
    if (n > 1) problems << device << " has " << n << " bindings\n";
  }
  for (const auto& [device, pw] : want) {
    if (!bound.contains(device)) problems << device << " has no binding\n";
  }
  INFO(problems.str());
  CHECK(problems.str().empty());
}

}  // namespace thingsync::testing
