#include "world.hpp"

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/null_sink.h>

#include "desired_holder.hpp"
#include "fake_api.hpp"
#include "fleet_repo.hpp"
#include "health.hpp"
#include "reconciler.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/engine/desired.hpp"
#include "thingsync/engine/observer.hpp"
#include "thingsync/engine/pass.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/obs/metrics.hpp"
#include "thingsync/state/medium.hpp"
#include "thingsync/state/state_store.hpp"
#include "thingsync/sys/notify.hpp"

namespace thingsync::simulation {
namespace {
namespace net = boost::asio;
using testing::FakeApi;
using Op = FakeApi::Op;
using When = FakeApi::Verdict::When;

constexpr const char* kScope = "5c1e4b40-0000-4000-8000-000000000001";
constexpr const char* kOtherClient = "5c1e4b40-0000-4000-8000-000000000002";
constexpr std::int64_t kOverlapMs = 60'000;
constexpr std::int64_t kAheadMs = 3'600'000;  // the API node whose clock runs an hour ahead
constexpr std::uint32_t kOutOfScope = 3;      // devices x0..x2 of another client
constexpr int kSettleRounds = 3;              // full passes allowed to converge at the end
// Every portal password ends in this (kDesiredMark, fleet_repo.hpp, ends the desired ones).
constexpr const char* kPortalMark = "xY9!xY9!xY9!xY9!xY9!";

std::size_t resolve(const core::DeleteLimit& l, std::size_t managed) {
  if (l.value <= 0) return 0;
  if (l.kind == core::DeleteLimit::Kind::kCount) return static_cast<std::size_t>(l.value);
  return static_cast<std::size_t>(l.value * static_cast<double>(managed) / 100.0);
}

// Captures every engine log line, to scan for secrets.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string take() { return std::exchange(text_, {}); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    text_.append(buf.data(), buf.size());
  }
  void flush_() override {}

 private:
  std::string text_;
};

// One thingsync process: the daemon (Reconciler over an Observer and a DesiredHolder) or a
// one-shot `apply` (its StateStore only).
struct Process {
  std::unique_ptr<state::StateStore> state;
  std::optional<engine::DesiredHolder> desired;
  std::optional<engine::Observer> observer;
  std::optional<engine::Reconciler> reconciler;
  bool started = false;  // the daemon's first full list has succeeded
  bool stopping = false;
  bool may_write = true;
};

class World {
 public:
  explicit World(const History& h);
  ~World();
  Outcome play();

 private:
  // ---- running the engine ----
  template <typename T>
  T run(net::awaitable<T> aw) {
    ioc_.restart();
    auto f = net::co_spawn(ioc_, std::move(aw), net::use_future);
    ioc_.run();
    return f.get();
  }
  api::ListQuery scope_query() const {
    api::ListQuery q;
    q.client_id = kScope;
    q.sort = "createdAt";
    q.limit = 1000;
    return q;
  }
  engine::Clocks clocks() {
    return {[this] { return api_.now_ms; }, [this] { return api_.now_ms; }};
  }

  // ---- steps ----
  void step(const Step& s);
  bool daemon_up();  // false: not running, or this turn was its start
  bool start_daemon();
  void stop_daemon();
  bool daemon_full_list();
  void full_pass();
  void devices_pass(const std::vector<core::DeviceId>& devices);
  void reload_after_edit(bool swapped);
  void apply();
  void crash(std::size_t torn);
  void bury_if_dead();
  void portal(PortalKind kind, std::uint16_t whom);

  // ---- requests ----
  FakeApi::Verdict on_call(const FakeApi::Call& c);
  void on_commit(const FakeApi::Call& c, const FakeApi::Stored& s);
  api::ApiError fault_error(const Fault& f, Op op, When& when);

  // ---- invariants ----
  void violated(std::string invariant, std::string detail);
  /// The delete set of `known` under the desired state in force, and what the guard allows.
  std::pair<std::size_t, std::size_t> delete_set(const core::ObservedList& known) const;
  std::vector<const FakeApi::Stored*> live_of(const core::DeviceId& d) const;
  std::optional<std::string> durable_state_error(const core::DeviceId* pending);
  void check_after_step(bool clean_full);
  std::optional<std::string> divergence() const;
  void settle();

  // ---- the story ----
  std::string dname(const core::DeviceId& d) const;
  std::string bname(const std::string& id) const;
  void event(std::string e) { events_.push_back(std::move(e)); }
  void digest(std::string_view s) {
    for (unsigned char ch : s) digest_ = (digest_ ^ ch) * 0x100000001b3ULL;
    digest_ = (digest_ ^ 0xff) * 0x100000001b3ULL;
  }

  const History& h_;
  FleetRepo repo_;
  net::io_context ioc_;
  FakeApi api_;
  std::shared_ptr<state::MemoryMedium> medium_ = std::make_shared<state::MemoryMedium>();
  std::shared_ptr<CaptureSink> sink_ = std::make_shared<CaptureSink>();
  obs::Metrics metrics_{"simulation"};
  sys::Notifier notifier_;
  engine::Health health_{notifier_, false};
  config::Config config_;
  std::optional<Process> proc_;
  bool is_daemon_ = false;

  // The desired state the running process loaded: canonical device → password.
  std::map<std::string, std::string> in_force_;
  std::uint32_t portal_passwords_ = 0;
  std::uint32_t skew_turn_ = 0;
  bool ahead_ = false;

  // The step being played.
  const Step* step_ = nullptr;
  std::uint32_t step_req_ = 0;
  bool quiet_ = false;  // faults have stopped (the settle phase)
  bool dead_ = false;   // the process died in this step; its remains still run
  bool crash_after_ = false;
  std::size_t torn_ = 0;
  bool step_disturbed_ = false;   // a fault or a portal action hit this step's requests
  // When a portal action last touched each device, and when thingsync last looked at it (a
  // GET of one of its bindings); when the pass under way began. All are call counts
  // (FakeApi::calls).
  std::map<std::string, std::uint64_t> touched_at_;
  std::map<std::string, std::uint64_t> confirmed_at_;
  std::map<std::string, std::uint64_t> got_at_;  // binding → its last GET
  // Bindings a portal action took from a device (deleted, replaced, moved away): binding →
  // (the device it had, when).
  std::map<std::string, std::pair<std::string, std::uint64_t>> taken_;
  std::uint64_t pass_start_ = 0;
  std::uint64_t evidence_start_ = 0;  // the pass plans on what was seen from here on
  bool fresh_ = false;                // a full list was made for the next full pass
  std::vector<std::string> events_;
  std::size_t reads_ = 0;

  // What thingsync looked at last: the call count when a complete look began.
  std::uint64_t full_look_ = 0;
  std::map<std::string, std::uint64_t> device_look_;
  std::uint64_t look_before_ = 0;  // the look a list under way replaces, if it fails
  std::map<std::string, std::uint64_t> moved_;  // binding → the call count when it was moved

  core::ObservedList apply_known_;  // what the running apply listed
  bool clean_guard_ = false;  // the last quiet full resync's delete set was within the guard

  struct Durable {  // the durable bytes last opened, and what they held
    bool opened = false;
    std::optional<std::string> snapshot;
    std::string journal;
    std::optional<std::string> error;
    std::set<std::string> pending;
  } durable_;
  std::optional<std::string> scanned_snapshot_;  // the state's bytes scanned for secrets
  std::size_t scanned_journal_ = 0;

  std::optional<Violation> violation_;
  std::vector<std::string> story_;
  std::uint64_t digest_ = 0xcbf29ce484222325ULL;
  std::map<std::string, std::string> names_;  // canonical device → d<i>, x<i>
};

World::World(const History& h) : h_(h), repo_(h.setup.devices, h.setup.pool) {
  obs::set_sink(sink_, {spdlog::level::debug, obs::LogFormat::kText});
  config_.sync.prune = h.setup.prune;
  config_.sync.max_deletes = h.setup.max_deletes;
  config_.sync.concurrency = h.setup.concurrency;
  config_.sync.modified_since_overlap = std::chrono::milliseconds(kOverlapMs);
  config_.scope_client_id = kScope;
  api_.page_size = h.setup.page_size;
  api_.offset_cursor = h.setup.offset_cursor;
  api_.default_client = kScope;
  api_.record_requests = false;
  // API nodes whose clocks differ by a few seconds (well within the overlap), and one an hour
  // ahead for the portal edits that say so. The API's clock moves in whole seconds and no two
  // skews differ by whole seconds, so no two writes share a stamp: a portal edit stamped
  // exactly as thingsync's last write cannot be told from it (the spec tells changes by
  // modifiedAt; docs/reliability.md, "Simulation").
  api_.stamp_skew = [this]() -> std::int64_t {
    if (ahead_) return kAheadMs;
    static constexpr std::array<std::int64_t, 3> kSkews = {0, 4'321, -3'217};
    return kSkews[skew_turn_++ % kSkews.size()];
  };
  api_.on_call = [this](const FakeApi::Call& c) { return on_call(c); };
  api_.on_commit = [this](const FakeApi::Call& c, const FakeApi::Stored& s) { on_commit(c, s); };
  for (std::uint32_t i = 0; i < h.setup.pool; ++i) {
    names_[core::DeviceId::parse(device(i))->canonical()] = "d" + std::to_string(i);
  }
  for (std::uint32_t i = 0; i < kOutOfScope; ++i) {
    names_[core::DeviceId::parse(other_device(i))->canonical()] = "x" + std::to_string(i);
  }
}

World::~World() {
  proc_.reset();
  obs::set_sink(std::make_shared<spdlog::sinks::null_sink_mt>(), {spdlog::level::off});
}

void World::reload_after_edit(bool swapped) {
  if (!proc_ || !is_daemon_ || !proc_->started || dead_) return;
  auto& holder = *proc_->desired;
  holder.changed(repo_.root());
  if (swapped) holder.want_full();
  const auto out = holder.reload();
  if (!out.ok) {
    event(out.deferred.empty() ? "reload fails: last good desired state kept" : "reload deferred");
    if (proc_->reconciler->retry_pending()) full_pass();
    return;
  }
  in_force_ = repo_.desired();
  event("reloaded (" + std::string(out.all ? "all" : std::to_string(out.affected.size())) +
        " devices affected)");
  if (!out.all) devices_pass(out.affected);
  if (!dead_) full_pass();
}

// ---- processes -------------------------------------------------------------------------------

bool World::start_daemon() {
  auto st = state::StateStore::open(medium_, "salt-of-the-simulation-0123456789ab");
  if (!st) {
    violated("the state file loads", st.error().message);
    return false;
  }
  proc_.emplace();
  is_daemon_ = true;
  proc_->state = std::move(st.value());
  proc_->desired.emplace(repo_.root(), proc_->state->salt());
  const auto loaded = proc_->desired->reload();
  if (!loaded.ok) {
    event("daemon cannot start: the desired state does not load (exit 1)" +
          (loaded.errors.empty() ? std::string() : ": " + loaded.errors.front().message));
    proc_.reset();
    return false;
  }
  in_force_ = repo_.desired();
  proc_->observer.emplace(api_, scope_query(), kOverlapMs, clocks());
  engine::Reconciler::Parts parts{config_,        false,           *proc_->desired,
                                  *proc_->observer, *proc_->state, api_,
                                  metrics_,        health_,        proc_->stopping,
                                  proc_->may_write, [] {}};
  parts.now_ms = [this] { return api_.now_ms; };
  parts.flush_interval = h_.setup.flush_each ? std::chrono::milliseconds(0)
                                             : std::chrono::milliseconds(86'400'000);
  proc_->reconciler.emplace(parts);
  event("daemon starts");
  return true;
}

void World::stop_daemon() {
  if (!proc_) return;
  if (is_daemon_) {
    if (auto r = proc_->state->checkpoint(); !r) event("stopped; state not saved");
  }
  proc_.reset();
}

bool World::daemon_full_list() {
  const auto out = run(proc_->observer->full_list());
  if (!out.ok || dead_) return false;
  fresh_ = true;
  proc_->reconciler->settle_after_full_list();
  return true;
}

bool World::daemon_up() {
  if (proc_ && !is_daemon_) stop_daemon();
  if (!proc_ && !start_daemon()) return false;
  if (proc_->started) return true;
  // The start: a full list (retried by the next turn until it works), then a full pass.
  if (daemon_full_list()) {
    proc_->started = true;
    full_pass();
  }
  return false;
}

void World::full_pass() {
  if (dead_) return;
  pass_start_ = api_.calls;
  evidence_start_ = std::exchange(fresh_, false) ? full_look_ : pass_start_;
  run(proc_->reconciler->full_pass());
}

void World::devices_pass(const std::vector<core::DeviceId>& devices) {
  if (dead_) return;
  pass_start_ = api_.calls;
  evidence_start_ = pass_start_;
  run(proc_->reconciler->devices_pass(devices));
}

void World::apply() {
  stop_daemon();
  auto st = state::StateStore::open(medium_, "salt-of-the-simulation-0123456789ab");
  if (!st) {
    violated("the state file loads", st.error().message);
    return;
  }
  proc_.emplace();
  is_daemon_ = false;
  proc_->state = std::move(st.value());
  auto& state = *proc_->state;
  config::LoadResult loaded;
  if (!engine::load_settled_checkout(repo_.root(), loaded) || !loaded.ok()) {
    event("apply: the desired state does not load (exit 1)");
    proc_.reset();
    return;
  }
  in_force_ = repo_.desired();
  const auto prepared = engine::prepare_desired(loaded.state, state.salt(), config::process_env(), 1);
  const core::SyncPolicy policy{h_.setup.prune, h_.setup.max_deletes};
  auto planned = run(engine::observe_and_plan(api_, scope_query(), prepared, state, policy));
  if (!planned || dead_) {
    event("apply: the list failed (exit 1)");
    bury_if_dead();
    proc_.reset();
    return;
  }
  pass_start_ = api_.calls;
  evidence_start_ = full_look_;
  auto unresolved = engine::settle_after_list(state, planned->observed, prepared);
  apply_known_ = planned->observed;
  engine::ExecOptions eo;
  eo.concurrency = h_.setup.concurrency;
  eo.unresolved_pending = std::move(unresolved);
  eo.now_ms = [this] { return api_.now_ms; };
  eo.flush_interval = h_.setup.flush_each ? std::chrono::milliseconds(0)
                                          : std::chrono::milliseconds(86'400'000);
  const auto report = run(engine::execute_pass(planned->pass, loaded.state, prepared, state, api_,
                                               std::move(eo)));
  event("apply: " + std::to_string(report.created) + " created, " +
        std::to_string(report.updated) + " updated, " + std::to_string(report.deleted) +
        " deleted, " + std::to_string(report.failed) + " failed");
  bury_if_dead();
  proc_.reset();
}

void World::crash(std::size_t torn) {
  if (!proc_ || dead_) return;
  torn_ = torn;
  medium_->crash(torn);
  // What the dead process still does (its pass runs on to its end here) must not reach the
  // medium, nor the API (on_call fails every request of it).
  medium_->fail_writes(true);
  dead_ = true;
  event("** kill -9" + (torn ? " (" + std::to_string(torn) + " unsynced bytes kept)" : std::string()));
}

void World::bury_if_dead() {
  if (!dead_) return;
  proc_.reset();
  medium_->crash(0);
  medium_->fail_writes(false);
  dead_ = false;
}

void World::portal(PortalKind kind, std::uint16_t whom) {
  std::vector<std::string> ids;  // in-scope and out-of-scope bindings, in id order
  for (const auto& [id, s] : api_.store) ids.push_back(id);
  auto pick_device = [&](std::uint16_t w) -> std::pair<std::string, std::string> {
    const std::uint32_t n = h_.setup.pool + kOutOfScope;
    const std::uint32_t i = w % n;
    if (i < h_.setup.pool) return {device(i), kScope};
    return {other_device(i - h_.setup.pool), kOtherClient};
  };
  auto new_password = [&] {
    return "Portal-" + std::to_string(++portal_passwords_) + "-" + kPortalMark;
  };
  auto touch = [&](const core::DeviceId& d) { touched_at_[d.canonical()] = api_.calls; };
  switch (kind) {
    case PortalKind::kCreate: {
      const auto [dev, client] = pick_device(whom);
      const auto id = api_.portal_create(dev, new_password(), "portal-user", client);
      touch(*core::DeviceId::parse(dev));
      event("portal creates " + bname(id) + " for " + dname(*core::DeviceId::parse(dev)));
      return;
    }
    case PortalKind::kDelete:
    case PortalKind::kReplace:
    case PortalKind::kEdit:
    case PortalKind::kFutureEdit:
    case PortalKind::kMove: {
      if (ids.empty()) return;
      const auto id = ids[whom % ids.size()];
      const auto s = api_.store.at(id);
      touch(s.binding.device);
      if (kind == PortalKind::kDelete || kind == PortalKind::kReplace || kind == PortalKind::kMove) {
        taken_[id] = {s.binding.device.canonical(), api_.calls};
      }
      const auto who = bname(id) + " (" + dname(s.binding.device) + ")";
      if (kind == PortalKind::kDelete || kind == PortalKind::kReplace) {
        api_.portal_delete(id);
        if (kind == PortalKind::kDelete) {
          event("portal deletes " + who);
          return;
        }
        const auto fresh = api_.portal_create(s.binding.device.canonical(), new_password(),
                                              "portal-user", s.client_id);
        event("portal replaces " + who + " by " + bname(fresh));
        return;
      }
      if (kind == PortalKind::kMove) {
        auto [dev, client] = pick_device(static_cast<std::uint16_t>(whom / 7));
        if (client != s.client_id) dev = device((whom / 7) % h_.setup.pool);
        if (s.client_id != kScope) return;
        const auto to = *core::DeviceId::parse(dev);
        touch(to);
        api_.move(id, dev);
        moved_[id] = api_.calls;
        event("portal moves " + who + " to " + dname(to));
        return;
      }
      ahead_ = kind == PortalKind::kFutureEdit;
      api_.portal_edit(id, new_password());
      ahead_ = false;
      event("portal edits " + who + (kind == PortalKind::kFutureEdit ? ", stamped 1h ahead" : ""));
      return;
    }
  }
}

// ---- requests ----------------------------------------------------------------------------

api::ApiError World::fault_error(const Fault& f, Op op, When& when) {
  const bool write = op == Op::kPost || op == Op::kPut || op == Op::kDelete;
  api::ApiError e;
  when = When::kBefore;
  switch (f.kind) {
    case FaultKind::k5xxBefore:
      // The client makes any 5xx to a POST an unknown outcome: it cannot tell.
      e.kind = op == Op::kPost ? api::ErrorKind::kUnknownOutcome : api::ErrorKind::kServer;
      e.status = 500;
      e.title = "Internal Server Error";
      break;
    case FaultKind::k5xxAfter:
      e.kind = op == Op::kPost ? api::ErrorKind::kUnknownOutcome : api::ErrorKind::kServer;
      e.status = 502;
      e.title = "Bad Gateway";
      if (write) when = When::kAfter;
      break;
    case FaultKind::kTimeoutBefore:
      e.kind = api::ErrorKind::kTimeout;
      e.title = "timeout";
      e.detail = "connecting timed out";
      break;
    case FaultKind::kTimeoutAfter:
      e.kind = op == Op::kPost ? api::ErrorKind::kUnknownOutcome : api::ErrorKind::kTimeout;
      e.title = "timeout";
      e.detail = "reading the answer timed out";
      if (write) when = When::kAfter;
      break;
    case FaultKind::k429:
    case FaultKind::k429RetryAfter:
      e.kind = api::ErrorKind::kRateLimited;
      e.status = 429;
      e.title = "Too Many Requests";
      if (f.kind == FaultKind::k429RetryAfter) e.retry_after = std::chrono::seconds(f.arg);
      break;
    case FaultKind::kCrashBefore:
    case FaultKind::kCrashAfter:
    case FaultKind::kPortal:
      when = When::kNormal;
      break;
  }
  return e;
}

FakeApi::Verdict World::on_call(const FakeApi::Call& c) {
  FakeApi::Verdict v;
  if (dead_) {
    v.when = When::kBefore;
    v.error.kind = api::ErrorKind::kCancelled;
    v.error.title = "the process is dead";
    return v;
  }
  const std::uint32_t at = step_req_++;
  std::string what;
  switch (c.op) {
    case Op::kList:
      what = c.query->device_id ? "lookup " + dname(*core::DeviceId::parse(*c.query->device_id))
             : c.query->modified_since_ms ? "poll"
                                          : "list";
      what += " p" + std::to_string(c.page + 1);
      break;
    case Op::kGet: what = "GET " + bname(c.target); break;
    case Op::kPost: what = "POST " + dname(*core::DeviceId::parse(c.target)); break;
    case Op::kPut: what = "PUT " + bname(c.target); break;
    case Op::kDelete: what = "DELETE " + bname(c.target); break;
  }
  bool noted = c.op == Op::kPost || c.op == Op::kPut || c.op == Op::kDelete;
  if (!quiet_ && step_) {
    for (const auto& f : step_->faults) {
      if (f.at != at) continue;
      step_disturbed_ = true;
      noted = true;
      if (f.kind == FaultKind::kPortal) {
        portal(static_cast<PortalKind>(f.arg % kPortalKinds), f.arg2);
        continue;
      }
      if (f.kind == FaultKind::kCrashBefore) {
        event(what);
        crash(f.arg);
        v.when = When::kBefore;
        v.error.kind = api::ErrorKind::kCancelled;
        return v;
      }
      if (f.kind == FaultKind::kCrashAfter) {
        if (c.op == Op::kPost || c.op == Op::kPut || c.op == Op::kDelete) {
          crash_after_ = true;
          torn_ = f.arg;
          v.when = When::kAfter;
          v.error.kind = api::ErrorKind::kCancelled;
          what += " [kill -9 after it commits]";
        } else {
          event(what);
          crash(f.arg);
          v.when = When::kBefore;
          v.error.kind = api::ErrorKind::kCancelled;
          return v;
        }
        continue;
      }
      if (v.when != When::kNormal) continue;  // the first error fault of a request counts
      v.error = fault_error(f, c.op, v.when);
      what += " [" + describe(f).substr(describe(f).find(' ') + 1) + "]";
    }
  }
  // Looks, as thingsync learns from them: a GET answered, a list whose pages are all answered
  // (what it shows includes everything created before its first page).
  const bool answered = v.when == When::kNormal;
  if (c.op == Op::kGet && answered) {
    got_at_[c.target] = api_.calls;
    if (const auto it = api_.store.find(c.target); it != api_.store.end()) {
      confirmed_at_[it->second.binding.device.canonical()] = api_.calls;
    }
  }
  if (c.op == Op::kList && !c.query->modified_since_ms) {
    std::uint64_t& look = c.query->device_id
                              ? device_look_[core::DeviceId::parse(*c.query->device_id)->canonical()]
                              : full_look_;
    if (c.page == 0) look_before_ = look;
    if (!answered) {
      look = look_before_;  // a list that failed showed nothing
    } else if (c.page == 0) {
      look = api_.calls;
    }
  }
  digest(what);
  if (noted) {
    event(what);
  } else {
    ++reads_;
  }
  return v;
}

void World::on_commit(const FakeApi::Call& c, const FakeApi::Stored& s) {
  const auto& d = s.binding.device;
  if (s.client_id != kScope) {
    violated("writes stay in scope", "thingsync wrote " + bname(s.binding.id) + " of " + dname(d) +
                                         ", a binding of another client");
  }
  if (c.op == Op::kPost) {
    if (auto e = durable_state_error(&d)) violated("a create is journaled before it is sent", *e);
    std::uint64_t look = full_look_;
    if (const auto it = device_look_.find(d.canonical()); it != device_look_.end()) {
      look = std::max(look, it->second);
    }
    for (const auto* o : live_of(d)) {
      if (o->binding.id == s.binding.id) continue;
      // Bound to the device since: created, or moved to it in the portal.
      const auto moved = moved_.find(o->binding.id);
      const std::uint64_t since = moved == moved_.end() ? o->created_seq : moved->second;
      if ((o->by_thingsync && moved == moved_.end()) || since <= look) {
        violated("thingsync never creates a second binding",
                 "POST " + dname(d) + " made " + bname(s.binding.id) + " while " +
                     bname(o->binding.id) + " (" +
                     (o->by_thingsync ? "created by thingsync" : "created before its last look") +
                     ") was live");
      }
    }
  }
  if (c.op == Op::kDelete) {
    // The guard as the pass saw the fleet: a daemon's round plans on its observed set (which
    // grows with its own writes and looks between rounds), an apply on its list.
    const auto known = is_daemon_ ? proc_->observer->set().all() : apply_known_;
    const auto [set, limit] = delete_set(known);
    if (set > limit) {
      violated("the delete guard counts the whole fleet",
               "DELETE " + bname(s.binding.id) + " while the delete set of the " +
                   std::to_string(known.size()) + " bindings thingsync knew of holds " +
                   std::to_string(set) + ", over the " + std::to_string(limit) + " allowed" +
                   (h_.setup.prune ? " (maxDeletes)" : " (prune is off)"));
    }
  }
  if (c.op == Op::kDelete || (c.op == Op::kPut)) {
    // The binding's device loses it (a PUT may bind it to another device).
    const bool lost = c.op == Op::kDelete || api_.store.at(s.binding.id).binding.device != d;
    // A portal action that raced the write excuses it, as the spec draws the line
    // (docs/operations.md, "Writes only on fresh evidence"):
    //  - a binding moved to the device after the evidence the write was planned on began
    //    (a full list made for this pass, else the pass itself): a write on a full list's
    //    evidence is sent without another look, by design;
    //  - a portal action during this pass that took another binding from the device after
    //    thingsync's last look at that binding (its GET, a lookup of the device): the kept
    //    binding of a duplicate, confirmed live, deleted or moved before the delete landed.
    //    One made before the pass, or before that look, does not excuse: the engine must
    //    look (a duplicate's kept binding is confirmed live even after a full list).
    const auto key = d.canonical();
    std::uint64_t device_looked = 0;
    if (const auto it = device_look_.find(key); it != device_look_.end()) device_looked = it->second;
    const auto moved = moved_.find(s.binding.id);
    const bool moved_since = c.op == Op::kDelete && moved != moved_.end() &&
                             moved->second > evidence_start_;
    const auto touched = touched_at_.find(key);
    std::uint64_t confirmed = device_looked;
    if (const auto it = confirmed_at_.find(key); it != confirmed_at_.end()) {
      confirmed = std::max(confirmed, it->second);
    }
    const bool put_raced = c.op == Op::kPut && touched != touched_at_.end() &&
                           touched->second > std::max(evidence_start_, confirmed);
    bool taken_raced = false;
    for (const auto& [id, hit] : taken_) {
      if (hit.first != key || hit.second <= pass_start_) continue;
      const auto got = got_at_.find(id);
      if (hit.second > std::max(device_looked, got == got_at_.end() ? 0 : got->second)) {
        taken_raced = true;
      }
    }
    const bool raced = moved_since || put_raced || taken_raced;
    if (lost && in_force_.contains(key) && live_of(d).empty() && !raced) {
      violated("thingsync never takes the only binding of a desired device",
               std::string(c.op == Op::kDelete ? "DELETE " : "PUT ") + bname(s.binding.id) +
                   " left desired " + dname(d) + " with no binding");
    }
  }
  if (crash_after_) {
    crash_after_ = false;
    crash(torn_);
  }
}

// ---- invariants ----------------------------------------------------------------------------

void World::violated(std::string invariant, std::string detail) {
  if (violation_) return;
  event("!! VIOLATION " + invariant + ": " + detail);
  violation_ = Violation{std::move(invariant), std::move(detail)};
}

std::vector<const FakeApi::Stored*> World::live_of(const core::DeviceId& d) const {
  std::vector<const FakeApi::Stored*> out;
  for (const auto& [id, s] : api_.store) {
    if (s.binding.device == d && s.client_id == kScope) out.push_back(&s);
  }
  std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    return std::tie(a->binding.created_at_ms, a->binding.id) <
           std::tie(b->binding.created_at_ms, b->binding.id);
  });
  return out;
}

std::pair<std::size_t, std::size_t> World::delete_set(
    const core::ObservedList& known) const {
  std::map<std::string, std::size_t> per_device;
  for (std::size_t i = 0; i < known.size(); ++i) ++per_device[known.device(i).canonical()];
  std::size_t set = 0;
  for (const auto& [d, n] : per_device) set += in_force_.contains(d) ? n - 1 : n;
  return {set, h_.setup.prune ? resolve(h_.setup.max_deletes, known.size()) : 0};
}

// What a crash right now would leave: the state must load from it, and a POST's pending
// create must be in it.
// What a crash right now would leave: the state must load from it, and a POST's pending
// create must be in it. Opening the state is most of a simulation's time, so only new bytes
// are: after bytes were only appended to the journal, the last line opened before and the new
// ones are replayed alone (a journal line stands on its own: it names what it changes), and
// the pending creates are kept up to date from the new lines.
std::optional<std::string> World::durable_state_error(const core::DeviceId* pending) {
  const auto& journal = medium_->durable_journal();
  const bool same_snapshot = durable_.opened && medium_->snapshot() == durable_.snapshot;
  if (same_snapshot && journal == durable_.journal) {
    // nothing new
  } else if (same_snapshot && !durable_.error && journal.size() > durable_.journal.size() &&
             journal.starts_with(durable_.journal)) {
    const auto& old = durable_.journal;
    const auto nl = old.size() < 2 ? std::string::npos : old.rfind('\n', old.size() - 2);
    const auto from = nl == std::string::npos ? 0 : nl + 1;
    auto copy = std::make_shared<state::MemoryMedium>();
    (void)copy->append_journal(std::string_view(journal).substr(from));
    (void)copy->sync_journal();
    if (auto st = state::StateStore::open(copy, "salt-never-used-0123456789abcdefgh"); !st) {
      durable_.error = "the state does not load: " + st.error().message;
    }
    for (std::size_t at = old.size(); at < journal.size();) {
      auto end = journal.find('\n', at);
      if (end == std::string::npos) break;  // a torn tail: never replayed
      const auto j = nlohmann::json::parse(journal.begin() + static_cast<std::ptrdiff_t>(at),
                                           journal.begin() + static_cast<std::ptrdiff_t>(end),
                                           nullptr, false);
      at = end + 1;
      if (!j.is_object() || !j.contains("a") || !j.contains("device")) continue;
      if (j["a"] == "pending") durable_.pending.insert(j["device"].get<std::string>());
      if (j["a"] == "resolved") durable_.pending.erase(j["device"].get<std::string>());
    }
    durable_.journal = journal;
  } else {
    durable_.opened = true;
    durable_.snapshot = medium_->snapshot();
    durable_.journal = journal;
    durable_.error.reset();
    durable_.pending.clear();
    auto copy = std::make_shared<state::MemoryMedium>();
    if (durable_.snapshot) (void)copy->replace_snapshot(*durable_.snapshot);
    (void)copy->append_journal(durable_.journal);
    (void)copy->sync_journal();
    auto st = state::StateStore::open(copy, "salt-never-used-0123456789abcdefgh");
    if (!st) {
      durable_.error = "the state does not load: " + st.error().message;
    } else {
      for (const auto& p : st.value()->pending()) durable_.pending.insert(p.device.canonical());
    }
  }
  if (durable_.error) return durable_.error;
  if (pending && !durable_.pending.contains(pending->canonical())) {
    return "POST " + dname(*pending) + " was sent with no durable pending create";
  }
  return std::nullopt;
}

void World::check_after_step(bool clean_full) {
  if (auto e = durable_state_error(nullptr)) violated("the state file always loads", *e);
  std::string hay = sink_->take();
  const auto logs = hay.size();
  // The state's bytes not scanned yet: a new snapshot, the journal past what was scanned.
  if (medium_->snapshot() != scanned_snapshot_) {
    scanned_snapshot_ = medium_->snapshot();
    if (scanned_snapshot_) hay += *scanned_snapshot_;
  }
  const auto& journal = medium_->durable_journal();
  if (journal.size() < scanned_journal_) scanned_journal_ = 0;  // emptied
  hay.append(journal, scanned_journal_ > 64 ? scanned_journal_ - 64 : 0);
  scanned_journal_ = journal.size();
  hay += medium_->unsynced_journal();
  for (const char* mark : {kDesiredMark, kPortalMark}) {
    if (const auto at = hay.find(mark); at != std::string::npos) {
      violated("no secret in the state or the logs",
               std::string(at < logs ? "a log line" : "the state's bytes") +
                   " holds a password (first 3 characters: " +
                   hay.substr(at >= 20 ? at - 20 : 0, 3) + "…)");
    }
  }
  if (clean_full && h_.setup.prune && clean_guard_) {
    // A full resync on a quiet step sees every binding and may delete every duplicate.
    for (const auto& [d, pw] : in_force_) {
      const auto n = live_of(*core::DeviceId::parse(d)).size();
      if (n > 1) {
        violated("no desired device has two bindings after a pass",
                 dname(*core::DeviceId::parse(d)) + " has " + std::to_string(n) +
                     " bindings after a quiet full resync");
      }
    }
  }
}

std::optional<std::string> World::divergence() const {
  std::map<std::string, std::vector<const FakeApi::Stored*>> by_device;
  std::size_t managed = 0;
  for (const auto& [id, s] : api_.store) {
    if (s.client_id != kScope) continue;
    ++managed;
    by_device[s.binding.device.canonical()].push_back(&s);
  }
  std::size_t delete_set = 0;
  for (const auto& [d, list] : by_device) {
    delete_set += in_force_.contains(d) ? list.size() - 1 : list.size();
  }
  const bool blocked = !h_.setup.prune || delete_set > resolve(h_.setup.max_deletes, managed);
  std::ostringstream out;
  for (const auto& [d, pw] : in_force_) {
    const auto id = *core::DeviceId::parse(d);
    const auto live = live_of(id);
    if (live.empty()) {
      out << dname(id) << " has no binding; ";
      continue;
    }
    if (live.front()->password != pw) {
      out << dname(id) << "'s binding " << bname(live.front()->binding.id)
          << " holds another password; ";
    }
    if (!blocked && live.size() > 1) out << dname(id) << " has " << live.size() << " bindings; ";
  }
  if (!blocked) {
    for (const auto& [d, list] : by_device) {
      if (!in_force_.contains(d)) {
        out << "undesired " << bname(list.front()->binding.id) << " ("
            << dname(*core::DeviceId::parse(d)) << ") is left; ";
      }
    }
  }
  if (out.str().empty()) return std::nullopt;
  return out.str();
}

// ---- steps -------------------------------------------------------------------------------

void World::step(const Step& s) {
  step_ = &s;
  step_req_ = 0;
  step_disturbed_ = false;
  events_.clear();
  reads_ = 0;
  api_.now_ms += static_cast<std::int64_t>(s.dt_s) * 1000;
  bool clean_full = false;
  switch (s.kind) {
    case StepKind::kPoll:
      if (daemon_up()) {
        fresh_ = false;  // as the observer: a poll takes a full list's freshness away
        const auto out = run(proc_->observer->poll());
        if (!dead_ && ((out.ok && out.changed) || proc_->reconciler->retry_pending())) full_pass();
      }
      break;
    case StepKind::kFullResync:
      if (daemon_up()) {
        const bool listed = daemon_full_list();
        if (listed) {
          const auto [set, limit] = delete_set(proc_->observer->set().all());
          clean_guard_ = set <= limit;
        }
        if (listed || (!dead_ && proc_->reconciler->retry_pending())) full_pass();
        clean_full = listed && !step_disturbed_ && !dead_;
      }
      break;
    case StepKind::kAdd:
    case StepKind::kRemove:
    case StepKind::kPassword:
    case StepKind::kBreakFile:
    case StepKind::kSwapCheckout:
      if (const auto change = repo_.commit(s); change != FleetRepo::Change::kNone) {
        reload_after_edit(change == FleetRepo::Change::kSwapped);
      }
      break;
    case StepKind::kApply:
      apply();
      break;
    case StepKind::kCrash:
      crash(s.arg % 64);
      break;
    case StepKind::kRestart:
      if (!dead_) stop_daemon();
      break;
    case StepKind::kPortal:
      portal(static_cast<PortalKind>(s.arg % kPortalKinds), s.arg2);
      break;
  }
  bury_if_dead();
  check_after_step(clean_full && !step_disturbed_);
  std::string line = "t=" + std::to_string((api_.now_ms - 1'800'000'000'000) / 1000) + "s " +
                     describe(s);
  if (!s.faults.empty() && !quiet_) {
    line += " {";
    for (std::size_t i = 0; i < s.faults.size(); ++i) {
      line += (i ? ", " : "") + describe(s.faults[i]);
    }
    line += "}";
  }
  line += ":";
  for (const auto& e : events_) line += " " + e + ";";
  if (reads_) line += " (" + std::to_string(reads_) + " reads)";
  digest(line);
  story_.push_back(std::move(line));
  step_ = nullptr;
}

void World::settle() {
  quiet_ = true;
  story_.push_back("-- the faults stop: Git is fixed, the API answers, nobody crashes --");
  if (repo_.broken()) {
    repo_.mend();
    step_ = nullptr;
    if (proc_ && is_daemon_ && proc_->started) reload_after_edit(true);
  }
  Step full;
  full.kind = StepKind::kFullResync;
  full.dt_s = 30;
  for (int i = 0; i < kSettleRounds + 1 && !violation_; ++i) {
    step(full);
    if (proc_ && proc_->started && !divergence()) break;
  }
  if (violation_) return;
  if (auto d = divergence()) {
    violated("liveness: converges once the faults stop",
             "after " + std::to_string(kSettleRounds) + " full passes: " + *d);
    return;
  }
  // The portal keeps changing things; each change is put back by the next poll.
  const auto desired = in_force_;
  if (desired.empty()) return;
  Step poll;
  poll.kind = StepKind::kPoll;
  poll.dt_s = 30;
  const std::array<std::pair<PortalKind, std::size_t>, 3> probes = {
      std::pair{PortalKind::kFutureEdit, std::size_t{0}},
      std::pair{PortalKind::kEdit, desired.size() - 1},
      std::pair{PortalKind::kReplace, desired.size() / 2}};
  for (const auto& [kind, which] : probes) {
    auto it = desired.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(which));
    const auto live = live_of(*core::DeviceId::parse(it->first));
    if (live.empty()) continue;
    std::uint16_t whom = 0;
    for (const auto& [id, s] : api_.store) {
      if (id == live.front()->binding.id) break;
      ++whom;
    }
    Step p;
    p.kind = StepKind::kPortal;
    p.arg = static_cast<std::uint16_t>(kind);
    p.arg2 = whom;
    p.dt_s = 5;
    step(p);
    step(poll);
    if (violation_) return;
    if (auto d = divergence()) {
      violated("liveness: a portal change is put back by the next poll", *d);
      return;
    }
  }
}

Outcome World::play() {
  Outcome out;
  try {
    for (const auto& s : h_.steps) {
      step(s);
      if (violation_) break;
    }
    if (!violation_) settle();
  } catch (const std::exception& e) {
    violated("no exception escapes the engine", e.what());
    story_.push_back("!! exception: " + std::string(e.what()));
  }
  if (violation_) story_.push_back("VIOLATED " + violation_->invariant + ": " + violation_->detail);
  for (const auto& [id, s] : api_.store) {
    digest(id + s.binding.device.canonical() + s.password +
           std::to_string(s.binding.modified_at_ms));
  }
  out.violation = violation_;
  out.story = std::move(story_);
  out.digest = digest_;
  out.requests = api_.calls;
  return out;
}

// ---- names -------------------------------------------------------------------------------

std::string World::dname(const core::DeviceId& d) const {
  if (const auto it = names_.find(d.canonical()); it != names_.end()) return it->second;
  return d.canonical();
}

std::string World::bname(const std::string& id) const {
  const auto pos = id.find_last_of('-');
  return "b" + std::to_string(std::stoull(id.substr(pos + 1)));
}

}  // namespace

Outcome play(const History& history) {
  World w(history);
  return w.play();
}

std::string render(const History& history, const Outcome& outcome) {
  std::ostringstream out;
  out << "seed " << history.seed << ": " << describe(history.setup) << "\n";
  out << "  replay: scripts/simulate.sh --replay '" << encode(history) << "'\n";
  out << "  d<i> = imei:35026680070<iiii> (in scope), x<i> = imei:35999900000<iiii> (another "
         "client), b<n> = binding 00000000-0000-4000-8000-<n>\n";
  for (const auto& line : outcome.story) out << "  " << line << "\n";
  return out.str();
}

}  // namespace thingsync::simulation
