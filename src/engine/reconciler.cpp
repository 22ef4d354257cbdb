#include "reconciler.hpp"

#include <malloc.h>

#include <chrono>
#include <sstream>
#include <unordered_set>

#include "thingsync/engine/plan_render.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/sys/secret_file.hpp"

namespace thingsync::engine {
namespace {

using Clock = std::chrono::steady_clock;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool has_transient(const ExecReport& r) {
  for (const auto& f : r.failures) {
    if (!f.permanent) return true;
  }
  return false;
}

// A pass that found the world moved is planned again at once, but not forever: a portal that
// keeps changing is caught up with by the next poll.
constexpr int kMaxReplans = 3;
// A pass on an older observation looks at what each write acts on (a GET or a lookup). Past
// this many writes one full list is cheaper than the looks (1,000 bindings a page), and then
// the pass is planned again on it.
constexpr std::size_t kMaxLooks = 256;

// "applying 791/2000, ETA 4m" for the STATUS line.
std::string activity(const Progress& p, Clock::duration took) {
  std::string s = "applying " + std::to_string(p.done) + "/" + std::to_string(p.total);
  const double secs = std::chrono::duration<double>(took).count();
  if (p.done > 0 && p.done < p.total && secs > 0) {
    const double eta = static_cast<double>(p.total - p.done) * secs / static_cast<double>(p.done);
    s += ", ETA " + (eta < 60 ? std::to_string(static_cast<long>(eta) + 1) + "s"
                    : eta < 3600 ? std::to_string(static_cast<long>(eta / 60) + 1) + "m"
                                 : std::to_string(static_cast<long>(eta / 3600) + 1) + "h");
  }
  if (p.failed > 0) s += ", " + std::to_string(p.failed) + " failed";
  return s;
}

}  // namespace

core::SyncPolicy Reconciler::policy() const {
  return {p_.config.sync.prune, p_.config.sync.max_deletes, std::nullopt};
}

// The approvals an operator wrote into sync.approvedDeletesFile: one hash a line, '#' starts a
// comment. Read every full pass (a change or a SIGHUP is seen by the next one).
std::vector<std::string> read_approvals(const std::optional<std::filesystem::path>& file) {
  std::vector<std::string> out;
  if (!file) return out;
  // A regular file of at most 1 MiB, opened so that a FIFO cannot block the loop.
  auto text = sys::read_secret_file(file->string(), "sync.approvedDeletesFile " + file->string(),
                                    std::size_t{1} << 20);
  if (!text) {
    if (text.error().find("No such file") == std::string::npos) {
      obs::logger("daemon")->warn("{}", text.error());
    }
    return out;
  }
  std::istringstream in(text->reveal());
  std::string line;
  for (int n = 0; std::getline(in, line) && n < 10'000; ++n) {
    line = line.substr(0, line.find('#'));
    const auto a = line.find_first_not_of(" \t\r");
    if (a == std::string::npos) continue;
    out.push_back(line.substr(a, line.find_last_not_of(" \t\r") - a + 1));
  }
  return out;
}

DeleteOutcome Reconciler::hold_deletes(PassPlan& pass) {
  if (!schedule_) {
    auto s = sys::delete_window_schedule(p_.config.sync.delete_windows);
    if (s) {
      schedule_ = std::move(s.value());
    } else {
      // The config's parse placed every window in time; should that fail now (the tz database
      // gone), deletes wait rather than go at any time.
      obs::logger("daemon")->error("sync.deleteWindows: {}; deletes wait", s.error());
      schedule_ = sys::NextWindow([](std::int64_t now) -> std::optional<std::int64_t> {
        return now + 3'600'000;
      });
    }
  }
  DeleteRules rules;
  rules.delete_after_ms = p_.config.sync.delete_after.count();
  rules.next_window = *schedule_;
  rules.approvals = read_approvals(p_.config.sync.approved_deletes_file);
  auto out = apply_delete_rules(pass, p_.state, rules, unix_ms());
  // The tombstones are durable now, whether this pass writes or not: a crash must not restart
  // their grace.
  if (p_.may_write && p_.state.journal_buffered()) {
    if (auto r = p_.state.flush(); !r) obs::logger("daemon")->error("{}", r.error().message);
  }
  p_.metrics.set_pending_deletes(pass.plan.waiting.size());
  next_delete_due_ms_.reset();
  for (const auto& w : pass.plan.waiting) {
    if (!next_delete_due_ms_ || w.not_before_ms < *next_delete_due_ms_) {
      next_delete_due_ms_ = w.not_before_ms;
    }
  }
  if (!out.approval_refused.empty() && out.approval_refused != last_refusal_) {
    obs::logger("daemon")->warn("sync.approvedDeletesFile: {}", out.approval_refused);
  }
  last_refusal_ = out.approval_refused;
  return out;
}

void Reconciler::refresh_drift_age() {
  p_.metrics.set_oldest_drift_age(
      drift_since_ > 0 ? std::max(0.0, unix_now() - drift_since_) : 0.0);
}

void Reconciler::settle_after_full_list() {
  auto log = obs::logger("daemon");
  const auto pending = p_.state.pending();
  std::unordered_set<std::string> seen;
  if (!pending.empty()) {
    std::vector<core::DeviceId> devices;
    devices.reserve(pending.size());
    for (const auto& c : pending) devices.push_back(c.device);
    for (const auto& b : p_.observer.set().of_devices(devices)) seen.insert(b.device.canonical());
  }
  const auto left = engine::settle_after_full_list(
      p_.state, p_.observer.set().ids(),
      [&](const core::DeviceId& d) { return seen.contains(d.canonical()); },
      [&](const core::DeviceId& d) { return p_.desired.contains(d); });
  if (!pending.empty()) {
    log->info("pending creates of an earlier pass or run: {} seen in the list, {} to look up "
              "before their create", pending.size() - left.size(), left.size());
  }
}

boost::asio::awaitable<void> Reconciler::full_pass() {
  for (int i = 0; i <= kMaxReplans && !p_.stopping; ++i) {
    const bool again = co_await one_full_pass();
    if (!again) break;
    obs::logger("daemon")->info("the remote side moved under the plan: planning again");
  }
  ::malloc_trim(0);  // the pass's copies: the daemon idles for most of its life
}

boost::asio::awaitable<bool> Reconciler::one_full_pass() {
  auto log = obs::logger("daemon");
  const auto start = Clock::now();
  // A copy for this pass, cheap (the bindings are shared, not copied): a reload during the
  // pass's writes must not change what its plan's indices point at. The plan's input is made
  // for this pass only (16 bytes a binding).
  const config::DesiredState desired = p_.desired.state();
  const PreparedDesired prepared = with_fingerprints(desired, p_.desired.fingerprints());
  const bool fresh = p_.observer.take_fresh();
  PassPlan pass;
  pass = plan_pass(PassKind::kFull, fresh, prepared.bindings, p_.observer.set().all(),
                   p_.state.applied_list(), policy());
  const auto deletes = hold_deletes(pass);
  const core::Plan& plan = pass.plan;
  std::size_t blocked_guard = 0;
  for (const auto& b : plan.blocked) blocked_guard += b.reason == core::BlockReason::kMaxDeletes;
  p_.metrics.set_drift(plan.creates.size(), plan.updates.size(),
                       plan.deletes.size() + plan.blocked.size());
  p_.metrics.set_deletes_blocked(plan.blocked.size());
  std::size_t drift = plan.creates.size() + plan.updates.size() + plan.deletes.size();
  if (plan.guard_blocked()) {
    log->warn("delete guard: {} deletes blocked (maxDeletes allows {}); creates and updates go "
              "on. To delete exactly this set once, put its hash {} into sync.approvedDeletesFile",
              blocked_guard, plan.delete_limit, deletes.blocked_hash);
  }
  if (!deletes.approved.empty()) {
    log->warn("delete guard: the approved set {} goes through (approved in {})", deletes.approved,
              p_.config.sync.approved_deletes_file->string());
  }
  bool ok = true;
  bool again = false;
  retry_pending_ = false;
  if (p_.observe_only || !p_.may_write) {
    // Once the state can be saved again, the next turn of the loop makes this pass for real.
    retry_pending_ = !p_.observe_only && needs_execution(pass);
    if (!plan.empty()) {
      log->info("drift ({}, nothing written): {}",
                p_.observe_only ? "observe mode" : "the state cannot be saved", plan_summary(plan));
    }
  } else if (!needs_execution(pass)) {
    log->debug("in sync: {}", plan_summary(plan));
  } else if (const auto writes = plan.creates.size() + plan.updates.size() + plan.deletes.size();
             !fresh && writes > kMaxLooks) {
    log->info("{} writes planned on an older observation: listing the remote bindings first",
              writes);
    const auto listed = co_await p_.observer.full_list();
    if (listed.ok) {
      settle_after_full_list();
      again = true;
    } else {
      ok = false;
      retry_pending_ = true;
      p_.health.set_error(listed.error);
    }
  } else {
    if (!plan.empty()) log->info("reconciling: {}", plan_summary(plan));
    const auto report = co_await execute(pass, desired, prepared);
    ok = report.failed == 0 && report.state_error.empty();
    // A pass cut short by a stop leaves what it did not start as drift too.
    const std::size_t done = report.created + report.adopted + report.updated + report.deleted;
    drift = report.stopped ? std::max(report.failed, drift > done ? drift - done : 0)
                           : report.failed;
    std::size_t failed[3] = {0, 0, 0};
    for (const auto& f : report.failures) ++failed[static_cast<int>(f.action)];
    p_.metrics.set_drift(failed[0], failed[1], failed[2] + plan.blocked.size());
    // Transient failures are retried at the next poll; permanent ones wait out their backoff.
    retry_pending_ = has_transient(report) || !report.state_error.empty();
    again = report.replan;
    if (!ok) {
      p_.health.set_error(report.failed > 0 ? std::to_string(report.failed) + " operations failed"
                                            : "the state could not be saved");
    }
    if (!plan.empty()) {
      log->info("reconciled: {} created, {} updated, {} deleted, {} failed", report.created,
                report.updated, report.deleted, report.failed);
    }
    if (p_.state.journal_records() > std::max<std::size_t>(50'000, p_.state.size() / 2)) {
      if (auto r = p_.state.checkpoint(); !r) {
        // The journal holds it all still; the state gate retries the snapshot before writes.
        log->error("{}", r.error().message);
        state_failed_ = true;
      }
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  p_.metrics.reconcile_finished(secs, ok, unix_now());
  last_pass_ok_ = ok;
  if (ok) p_.health.clear_error();
  p_.health.set_counts(p_.desired.size(), p_.observer.set().size(), drift);
  p_.health.update();
  // Differences left at the end of a pass: since when, without a pass that ended in sync.
  if (drift == 0 && plan.blocked.empty()) {
    drift_since_ = 0;
  } else if (drift_since_ == 0) {
    drift_since_ = unix_now();
  }
  refresh_drift_age();
  co_return again;
}

boost::asio::awaitable<void> Reconciler::devices_pass(const std::vector<core::DeviceId>& devices) {
  auto log = obs::logger("daemon");
  config::DesiredState desired;
  PreparedDesired prepared;
  p_.desired.subset(devices, desired, prepared);
  const auto observed = p_.observer.set().of_devices(devices);
  std::vector<core::AppliedBinding> applied;
  for (const auto& b : observed) {
    if (auto a = p_.state.find(b.id)) applied.push_back(std::move(*a));
  }
  const auto pass = plan_pass(PassKind::kDevices, false, prepared.bindings, observed, applied,
                              policy());
  if (pass.plan.empty()) co_return;
  if (p_.observe_only || !p_.may_write) {
    log->info("drift ({}, nothing written): {}",
              p_.observe_only ? "observe mode" : "the state cannot be saved",
              plan_summary(pass.plan));
    co_return;
  }
  if (const auto writes = pass.plan.creates.size() + pass.plan.updates.size();
      writes > kMaxLooks) {
    // Cheaper on a fresh list than with a look each: the full pass that follows does them.
    log->info("changed devices: {} writes, left to the full pass", writes);
    co_return;
  }
  log->info("reconciling changed devices: {}{}", plan_summary(pass.plan),
            pass.deferred_deletes ? " (deletes wait for the full pass)" : "");
  const auto report = co_await execute(pass, desired, prepared);
  log->info("reconciled changed devices: {} created, {} updated, {} deleted, {} failed",
            report.created, report.updated, report.deleted, report.failed);
}

boost::asio::awaitable<ExecReport> Reconciler::execute(const PassPlan& pass,
                                                       const config::DesiredState& desired,
                                                       const PreparedDesired& prepared) {
  ExecOptions eo;
  eo.concurrency = p_.config.sync.concurrency;
  eo.metrics = &p_.metrics;
  eo.stop = &p_.stopping;
  const auto started = Clock::now();
  eo.on_progress = [this, started](const Progress& progress) {
    p_.alive();
    p_.metrics.set_pass_remaining(progress.total - progress.done);
    p_.health.set_activity(activity(progress, Clock::now() - started));
  };
  eo.scope_client_id = p_.config.scope_client_id;
  if (!scope_error_.empty()) eo.refuse_creates = "not sent: scope.clientId does not hold what creates make";
  eo.flush_interval = p_.flush_interval;
  if (p_.now_ms) eo.now_ms = p_.now_ms;
  for (const auto& c : p_.state.pending()) eo.unresolved_pending.push_back(c.device);
  eo.on_write = changes_.hook(pass.plan, p_.observer.set().of_devices(written_devices(pass.plan)),
                              p_.desired.commit());
  auto report = co_await execute_pass(pass, desired, prepared, p_.state, p_.api, std::move(eo));
  p_.metrics.set_pass_remaining(0);
  p_.health.set_activity("");
  state_failed_ = !report.state_error.empty();
  if (!report.scope_error.empty() && scope_error_.empty()) {
    scope_error_ = report.scope_error;  // until a restart
    p_.health.set_creates_refused(scope_error_);
  }
  // Our own writes, with the modifiedAt their answers gave, so that the next poll does not
  // take them for someone else's.
  p_.observer.record(report);
  p_.metrics.set_observed(p_.observer.set().size());
  co_return report;
}

}  // namespace thingsync::engine
