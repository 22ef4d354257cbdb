#include "thingsync/engine/executor.hpp"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "thingsync/config/password_resolver.hpp"
#include "thingsync/engine/plan_render.hpp"
#include "thingsync/obs/log.hpp"

namespace thingsync::engine {
namespace net = boost::asio;
namespace {

// All operations for one device, done in order by one worker.
struct DeviceWork {
  const core::DeviceId* device = nullptr;
  const core::PlannedCreate* create = nullptr;
  const core::PlannedUpdate* update = nullptr;
  std::vector<const core::PlannedDelete*> deletes;
};

std::vector<DeviceWork> group_by_device(const core::Plan& plan) {
  std::vector<DeviceWork> work;
  work.reserve(plan.creates.size() + plan.updates.size() + plan.deletes.size());
  // Each list is sorted by device; a three-way merge keeps the result sorted too.
  std::size_t c = 0, u = 0, d = 0;
  while (c < plan.creates.size() || u < plan.updates.size() || d < plan.deletes.size()) {
    const core::DeviceId* next = nullptr;
    auto consider = [&next](const core::DeviceId& id) {
      if (!next || id < *next) next = &id;
    };
    if (c < plan.creates.size()) consider(plan.creates[c].device);
    if (u < plan.updates.size()) consider(plan.updates[u].device);
    if (d < plan.deletes.size()) consider(plan.deletes[d].device);
    DeviceWork w;
    w.device = next;
    if (c < plan.creates.size() && plan.creates[c].device == *next) w.create = &plan.creates[c++];
    if (u < plan.updates.size() && plan.updates[u].device == *next) w.update = &plan.updates[u++];
    while (d < plan.deletes.size() && plan.deletes[d].device == *next) {
      w.deletes.push_back(&plan.deletes[d++]);
    }
    work.push_back(std::move(w));
  }
  return work;
}

class Executor {
 public:
  Executor(const core::Plan& plan, const config::DesiredState& desired,
           const PreparedDesired& prepared, state::StateStore& state, api::Bindings& api,
           ExecOptions options)
      : desired_(desired),
        prepared_(prepared),
        state_(state),
        api_(api),
        opts_(std::move(options)),
        work_(group_by_device(plan)),
        resolver_(desired, opts_.env),
        log_(obs::logger("reconcile")) {
    if (!opts_.now_ms) {
      opts_.now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
    }
    for (const auto& d : opts_.unresolved_pending) unresolved_.insert(d.canonical());
    if (opts_.look_first) {
      for (const auto& b : plan.blocked) {
        if (!b.del.kept_id.empty()) blocked_kept_.emplace_back(b.del.kept_id, b.del.device);
      }
    }
    last_flush_ = std::chrono::steady_clock::now();
  }

  net::awaitable<ExecReport> run() {
    co_await confirm_blocked_duplicates();
    co_await scope_canary();
    auto ex = co_await net::this_coro::executor;
    const std::size_t workers =
        std::max<std::size_t>(1, std::min<std::size_t>(opts_.concurrency, work_.size()));
    auto done = std::make_shared<net::steady_timer>(ex, net::steady_timer::time_point::max());
    std::size_t running = workers;
    for (std::size_t i = 0; i < workers; ++i) {
      auto on_exit = [this, done, &running](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            log_->error("executor worker crashed: {}", x.what());
          }
        }
        if (--running == 0) done->cancel();
      };
      net::co_spawn(ex, worker(), std::move(on_exit));
    }
    boost::system::error_code ec;
    if (running > 0) co_await done->async_wait(net::redirect_error(net::use_awaitable, ec));
    flush();
    co_return std::move(report_);
  }

 private:
  net::awaitable<void> worker() {
    while (next_ < work_.size()) {
      if (opts_.stop && *opts_.stop) {
        report_.stopped = true;
        break;
      }
      // The state can no longer be saved: nothing more is sent (what was sent and not
      // recorded costs a password PUT later, nothing else).
      if (!report_.state_error.empty()) break;
      const std::size_t i = next_++;
      if (work_[i].create && i >= journaled_upto_) journal_creates_from(i);
      if (work_[i].create && i < journal_failed_upto_) {
        not_durable(*work_[i].device);
      } else {
        co_await run_device(work_[i]);
      }
      ++done_;
      maybe_flush();
      if (opts_.on_progress) opts_.on_progress({done_, work_.size(), report_.failed});
    }
  }

  // Records the next batch of creates as pending, with one fsync, before any of them is sent.
  void journal_creates_from(std::size_t i) {
    const auto now = opts_.now_ms();
    std::size_t n = 0;
    std::size_t j = i;
    for (; j < work_.size() && n < opts_.journal_batch; ++j) {
      if (!work_[j].create) continue;
      state_.begin_create(*work_[j].device, now);
      ++n;
    }
    journaled_upto_ = j;
    // No create is sent unless its pending record is durable: a crash after the POST would
    // otherwise leave a binding that no one knows to look for.
    if (!flush()) journal_failed_upto_ = j;
  }

  void not_durable(const core::DeviceId& device) {
    api::ApiError e;
    e.kind = api::ErrorKind::kConfig;
    e.title = "not sent: the pending-create record could not be saved";
    e.detail = report_.state_error;
    failed(device, obs::Action::kCreate, e);
  }

  void maybe_flush() {
    if (std::chrono::steady_clock::now() - last_flush_ >= opts_.flush_interval) flush();
  }

  bool flush() {
    last_flush_ = std::chrono::steady_clock::now();
    auto r = state_.flush();
    if (!r && report_.state_error.empty()) {
      report_.state_error = r.error().message;
      log_->error("state not saved: {}", report_.state_error);
    }
    return static_cast<bool>(r);
  }

  bool waiting_out_backoff(const core::DeviceId& device) {
    const auto it = state_.failures().find(device.canonical());
    if (it == state_.failures().end() || it->second.next_attempt_ms <= opts_.now_ms()) return false;
    report_.waiting.push_back({device.canonical(), it->second.next_attempt_ms});
    return true;
  }

  void failed(const core::DeviceId& device, obs::Action action, const api::ApiError& e) {
    const bool permanent = e.kind == api::ErrorKind::kClient;
    ++report_.failed;
    report_.failures.push_back({device, action, e.to_string(), permanent});
    if (opts_.metrics) opts_.metrics->operation(action, false);
    if (permanent) state_.record_failure(device, e.to_string(), opts_.now_ms());
    log_->warn("{} failed device={} error=\"{}\"{}", action_name(action), device.canonical(),
               e.to_string(), permanent ? " (permanent: backing off)" : "");
  }

  void succeeded(const core::DeviceId& device, obs::Action action) {
    if (opts_.metrics) opts_.metrics->operation(action, true);
    state_.clear_failure(device);
  }

  // The change journal's record of one write (ExecOptions::on_write).
  void journal(WriteRecord r) {
    if (!opts_.on_write) return;
    r.time_ms = opts_.now_ms();
    // A look right before the write is the freshest "before", and the only one with
    // modifiedBy in the daemon (its observed set does not keep it).
    if (const auto it = looked_.find(r.binding_id); it != looked_.end()) r.before = it->second;
    opts_.on_write(std::move(r));
  }

  void journal_failed(WriteRecord r, const api::ApiError& e) {
    r.result = e.kind == api::ErrorKind::kUnknownOutcome ? WriteResult::kUnknown
                                                          : WriteResult::kFailed;
    r.status = e.status;
    r.error = e.to_string();
    journal(std::move(r));
  }

  static WriteRecord write_of(obs::Action action, const core::DeviceId& device,
                              std::string binding_id, std::string reason = {}) {
    WriteRecord r;
    r.action = action;
    r.device = device.canonical();
    r.binding_id = std::move(binding_id);
    r.reason = std::move(reason);
    return r;
  }

  static WriteStamp stamp_of(const core::RemoteBinding& b) {
    return {b.modified_at_ms, b.modified_by};
  }

  static const char* action_name(obs::Action a) {
    return a == obs::Action::kCreate ? "create" : a == obs::Action::kUpdate ? "update" : "delete";
  }

  std::optional<core::Secret> password_for(std::uint32_t desired_index, obs::Action action) {
    const auto& entry = desired_.bindings[desired_index];
    auto pw = resolver_.resolve(entry);
    if (pw) return std::move(pw.value());
    api::ApiError e;
    e.kind = api::ErrorKind::kConfig;
    e.title = "password source failed";
    e.detail = pw.error().to_string();
    failed(entry.device.unpack(), action, e);
    return std::nullopt;
  }

  net::awaitable<void> run_device(const DeviceWork& w) {
    const core::DeviceId& device = *w.device;
    if (waiting_out_backoff(device)) co_return;
    if (w.create) co_await do_create(*w.create);
    if (w.update) {
      bool live = true;
      if (opts_.look_first) {
        live = co_await confirm_live(w.update->binding_id, device, obs::Action::kUpdate);
      }
      // The binding kept for the device is gone or moved: its duplicates wait for the new plan.
      if (!live) co_return;
      std::optional<WriteStamp> before;
      if (w.update->modified_at_ms != 0) {
        before = WriteStamp{w.update->modified_at_ms, w.update->modified_by};
      }
      co_await do_update(w.update->binding_id, w.update->desired_index, device,
                         update_reason(*w.update), std::string(core::to_string(w.update->reason)),
                         std::move(before));
    }
    for (const auto* d : w.deletes) co_await do_delete(*d);
  }

  // With scope.clientId, creates go one at a time until a binding one of them made (or
  // adopted) is looked for in scope: found, the others go on at full speed; not found, no
  // other create is sent. Creates that leave no binding to look for (refused, waiting out a
  // backoff, outcome unknown) do not count; after a few of those the others wait for the next
  // pass, for a create the scope was not checked for may be made again by every pass.
  static constexpr int kScopeTries = 5;
  net::awaitable<void> scope_canary() {
    if (!opts_.scope_client_id || !opts_.refuse_creates.empty()) co_return;
    for (std::size_t at = 0, tries = 0;; ++at) {
      const auto it = std::find_if(work_.begin() + static_cast<std::ptrdiff_t>(at), work_.end(),
                                   [](const DeviceWork& w) { return w.create != nullptr; });
      if (it == work_.end() || (opts_.stop && *opts_.stop)) co_return;
      if (tries == kScopeTries) {
        refuse_creates_ = "not sent: the last " + std::to_string(kScopeTries) +
                          " creates gave no binding to check scope.clientId against; tried "
                          "again next pass";
        co_return;
      }
      ++tries;
      std::iter_swap(work_.begin() + static_cast<std::ptrdiff_t>(at), it);
      next_ = at + 1;
      const auto& device = *work_[at].device;
      if (at >= journaled_upto_) journal_creates_from(at);
      if (at < journal_failed_upto_) {
        not_durable(device);
      } else {
        const std::size_t created = report_.created;
        co_await run_device(work_[at]);
        const auto id = binding_of(device);
        if (id) {
          co_await check_in_scope(device, *id, report_.created > created);
          ++done_;
          if (opts_.on_progress) opts_.on_progress({done_, work_.size(), report_.failed});
          co_return;
        }
      }
      ++done_;
      if (opts_.on_progress) opts_.on_progress({done_, work_.size(), report_.failed});
    }
  }

  // The binding this run made, adopted or updated for `device`, if any.
  std::optional<std::string> binding_of(const core::DeviceId& device) const {
    for (auto it = report_.written_bindings.rbegin(); it != report_.written_bindings.rend(); ++it) {
      if (it->device == device) return it->id;
    }
    for (auto it = report_.seen_bindings.rbegin(); it != report_.seen_bindings.rend(); ++it) {
      if (it->device == device) return it->id;
    }
    return std::nullopt;
  }

  // `made`: this run created it (and may take it back).
  net::awaitable<void> check_in_scope(const core::DeviceId& device, const std::string& id,
                                      bool made) {
    api::ListQuery q;
    q.client_id = opts_.scope_client_id;
    q.device_id = device.canonical();
    auto listed = co_await api_.list_all(std::move(q));
    if (!listed) {
      refuse_creates_ = "not sent: could not check that creates land in scope.clientId (" +
                        listed.error().to_string() + "); tried again next pass";
      co_return;
    }
    for (const auto& b : listed->bindings) {
      if (b.id == id) co_return;
    }
    std::string taken_back;
    if (made) {
      // Made by this run a moment ago and invisible to every list in scope: taken back.
      auto removed = co_await api_.remove(id);
      auto record = write_of(obs::Action::kDelete, device, id, "created outside scope.clientId");
      if (removed) {
        journal(std::move(record));
        state_.forget(id);
        if (!report_.written_bindings.empty() && report_.written_bindings.back().id == id) {
          report_.written_bindings.pop_back();
          --report_.created;
        }
        taken_back = ", and that binding was deleted again";
      } else {
        journal_failed(std::move(record), removed.error());
        taken_back = ", and deleting that binding failed (" + removed.error().to_string() +
                     "): delete it by hand";
      }
    }
    report_.scope_error = "the binding " + id + " of " + device.canonical() +
                          " is not listed under scope.clientId " + *opts_.scope_client_id +
                          ": the API key's bindings belong to another client, so every full "
                          "list would miss them and every pass create them again. No other "
                          "create was sent" + taken_back +
                          ". Set scope.clientId to the API key's client, or remove it";
    log_->error("{}", report_.scope_error);
    ++report_.failed;
    report_.failures.push_back({device, obs::Action::kCreate,
                                "outside scope.clientId " + *opts_.scope_client_id, false});
    refuse_creates_ = "not sent: scope.clientId does not hold what creates make";
  }

  net::awaitable<void> do_create(const core::PlannedCreate& c) {
    if (!refuse_creates_.empty() || !opts_.refuse_creates.empty()) {
      state_.end_create(c.device);  // journaled as pending, never sent
      ++report_.failed;
      report_.failures.push_back({c.device, obs::Action::kCreate,
                                  refuse_creates_.empty() ? opts_.refuse_creates : refuse_creates_,
                                  false});
      co_return;
    }
    auto pw = password_for(c.desired_index, obs::Action::kCreate);
    if (!pw) co_return;
    const auto fp = prepared_.bindings[c.desired_index].password_fp;
    if (opts_.look_first || unresolved_.contains(c.device.canonical())) {
      // A crash may have left this create done, or the device was bound since the plan's
      // observation (in the portal, say): look before posting.
      auto found = co_await api_.find_by_device(c.device);
      if (!found) {
        failed(c.device, obs::Action::kCreate, found.error());
        co_return;
      }
      if (!found->empty()) {
        log_->info("create found the device bound already device={} id={}: adopted",
                   c.device.canonical(), found->front().id);
        state_.end_create(c.device);
        ++report_.adopted;
        report_.seen_bindings.push_back(found->front());  // known, whatever the PUT gives
        bound_now_.insert_or_assign(found->front().id, c.device);
        co_await do_update(found->front().id, c.desired_index, c.device,
                           "adopted: an earlier create was found by a lookup", "adoption",
                           stamp_of(found->front()));
        co_return;
      }
    }
    auto r = co_await api_.create(c.device, *pw);
    if (!r) {
      journal_failed(write_of(obs::Action::kCreate, c.device, ""), r.error());
      // An unknown outcome stays pending: the next run looks the device up.
      if (r.error().kind != api::ErrorKind::kUnknownOutcome) state_.end_create(c.device);
      failed(c.device, obs::Action::kCreate, r.error());
      co_return;
    }
    state_.end_create(c.device);
    if (r->adopted) {
      // The POST's answer was lost (or 409): whether it made this binding is not known.
      auto record = write_of(obs::Action::kCreate, c.device, r->binding.id);
      record.result = WriteResult::kUnknown;
      record.error = "outcome not known; a lookup found the device bound: adopted";
      record.after = stamp_of(r->binding);
      journal(std::move(record));
      // The binding existed already, with a password that may not be ours.
      ++report_.adopted;
      report_.seen_bindings.push_back(r->binding);  // known, whatever the PUT gives
      bound_now_.insert_or_assign(r->binding.id, c.device);
      co_await do_update(r->binding.id, c.desired_index, c.device,
                         "adopted: the create's outcome was unknown and a lookup found it",
                         "adoption", stamp_of(r->binding));
      co_return;
    }
    state_.record_applied(r->binding.id, c.device, fp, r->binding.modified_at_ms);
    auto record = write_of(obs::Action::kCreate, c.device, r->binding.id);
    record.after = stamp_of(r->binding);
    journal(std::move(record));
    log_->info("created device={} id={}", c.device.canonical(), r->binding.id);
    wrote(std::move(r->binding));
    ++report_.created;
    succeeded(c.device, obs::Action::kCreate);
  }

  // `reason` for the log, `why` for the change journal (UpdateReason, or "adoption").
  net::awaitable<void> do_update(std::string binding_id, std::uint32_t desired_index,
                                 core::DeviceId device, std::string reason, std::string why,
                                 std::optional<WriteStamp> before) {
    if (bound_elsewhere_now(binding_id, device, obs::Action::kUpdate)) co_return;
    auto pw = password_for(desired_index, obs::Action::kUpdate);
    if (!pw) co_return;
    const auto fp = prepared_.bindings[desired_index].password_fp;
    auto r = co_await api_.update(binding_id, device, *pw);
    auto record = write_of(obs::Action::kUpdate, device, binding_id, std::move(why));
    record.before = std::move(before);
    if (r) {
      record.after = stamp_of(*r);
      journal(std::move(record));
    } else {
      journal_failed(std::move(record), r.error());
    }
    if (!r && r.error().status == 404) {
      // Deleted since it was seen (a portal delete, perhaps a re-create under a new id).
      log_->warn("update found the binding gone device={} id={}: planning again",
                 device.canonical(), binding_id);
      gone(binding_id);
      co_return;
    }
    if (!r) {
      failed(device, obs::Action::kUpdate, r.error());
      co_return;
    }
    // The receipt: a later list showing another modifiedAt means someone else wrote it.
    state_.record_applied(binding_id, device, fp, r->modified_at_ms);
    wrote(std::move(r.value()));
    ++report_.updated;
    succeeded(device, obs::Action::kUpdate);
    log_->info("updated device={} id={} reason=\"{}\"", device.canonical(), binding_id, reason);
  }

  // A duplicate on an older observation is often a portal delete-and-re-create that a poll
  // saw half of: the kept binding may be gone. Its delete being blocked (prune off, or the
  // guard) must not leave the new binding with someone else's password until the next full
  // list: the kept bindings of blocked duplicates are looked at, and a gone one replans.
  net::awaitable<void> confirm_blocked_duplicates() {
    std::sort(blocked_kept_.begin(), blocked_kept_.end());
    blocked_kept_.erase(std::unique(blocked_kept_.begin(), blocked_kept_.end()), blocked_kept_.end());
    constexpr std::size_t kMaxLooks = 64;  // a pass; duplicates left alone on purpose recur
    std::size_t looks = 0;
    for (const auto& [id, device] : blocked_kept_) {
      if ((opts_.stop && *opts_.stop) || ++looks > kMaxLooks) break;
      co_await confirm_live(id, device, obs::Action::kDelete);
    }
  }

  // What the API holds now, for the observed state: modifiedBy (our own principal) is not
  // kept there, and a first adoption of a large fleet holds a record per binding here.
  // A binding this pass found or made bound to another device than `device` (a create adopted
  // it, a look saw it moved): the plan's older view must not move it back, nor delete it.
  bool bound_elsewhere_now(const std::string& binding_id, const core::DeviceId& device,
                           obs::Action action) {
    const auto it = bound_now_.find(binding_id);
    if (it == bound_now_.end() || it->second == device) return false;
    log_->warn("{} not sent id={}: this pass found it bound to device={}, not {}; planning again",
               action_name(action), binding_id, it->second.canonical(), device.canonical());
    report_.replan = true;
    return true;
  }

  void wrote(core::RemoteBinding b) {
    bound_now_.insert_or_assign(b.id, b.device);
    std::string().swap(b.modified_by);
    report_.written_bindings.push_back(std::move(b));
  }

  void gone(const std::string& binding_id) {
    state_.forget(binding_id);
    report_.gone_ids.push_back(binding_id);
    report_.replan = true;
  }

  // Fresh evidence for a delete planned on an older observation: true when `id` is live and
  // still bound to `device`. A binding found gone is forgotten.
  net::awaitable<bool> confirm_live(std::string id, core::DeviceId device, obs::Action action) {
    auto r = co_await api_.get(id);
    if (!r && r.error().status == 404) {
      gone(id);
      co_return false;
    }
    if (!r) {
      failed(device, action, r.error());
      co_return false;
    }
    // What the write that follows acts on, for its record's "before".
    if (opts_.on_write) looked_[id] = stamp_of(*r);
    if (r->device != device) {
      log_->warn("{} not sent id={}: the binding is now bound to device={}, not {}; planning "
                 "again", action_name(action), id, r->device.canonical(), device.canonical());
      bound_now_.insert_or_assign(id, r->device);
      report_.seen_bindings.push_back(std::move(r.value()));
      report_.replan = true;
      co_return false;
    }
    co_return true;
  }

  net::awaitable<void> do_delete(const core::PlannedDelete& d) {
    // Of two bindings for one device, the kept one must be live before the other goes: a
    // portal delete-and-re-create would otherwise leave the device with none. Even after a
    // full list: a list is not one instant, and a delete-and-re-create made while it ran
    // shows both bindings, the deleted one on an earlier page.
    // (No co_await inside a condition: GCC 12 miscompiles some of those.)
    bool kept_live = true;
    if (!d.kept_id.empty()) kept_live = co_await confirm_live(d.kept_id, d.device, obs::Action::kDelete);
    if (!kept_live) {
      log_->warn("duplicate not deleted device={} id={}: the binding kept for it ({}) is not "
                 "live; planning again", d.device.canonical(), d.binding_id, d.kept_id);
      report_.replan = true;
      co_return;
    }
    if (opts_.look_first) {
      const bool live = co_await confirm_live(d.binding_id, d.device, obs::Action::kDelete);
      if (!live) co_return;
    }
    if (bound_elsewhere_now(d.binding_id, d.device, obs::Action::kDelete)) co_return;
    auto r = co_await api_.remove(d.binding_id);
    auto record = write_of(obs::Action::kDelete, d.device, d.binding_id,
                           std::string(core::to_string(d.reason)));
    if (!r) {
      journal_failed(std::move(record), r.error());
      failed(d.device, obs::Action::kDelete, r.error());
      co_return;
    }
    if (r.value() == api::DeleteResult::kAlreadyGone) record.status = 404;
    journal(std::move(record));
    state_.forget(d.binding_id);
    report_.deleted_ids.push_back(d.binding_id);
    ++report_.deleted;
    succeeded(d.device, obs::Action::kDelete);
    log_->info("deleted device={} id={} reason=\"{}\"", d.device.canonical(), d.binding_id,
               core::to_string(d.reason));
  }

  const config::DesiredState& desired_;
  const PreparedDesired& prepared_;
  state::StateStore& state_;
  api::Bindings& api_;
  ExecOptions opts_;
  std::vector<DeviceWork> work_;
  config::PasswordResolver resolver_;
  std::shared_ptr<spdlog::logger> log_;
  std::unordered_set<std::string> unresolved_;
  std::unordered_map<std::string, core::DeviceId> bound_now_;  // as this pass found or made it
  std::vector<std::pair<std::string, core::DeviceId>> blocked_kept_;  // kept of blocked dups
  std::unordered_map<std::string, WriteStamp> looked_;  // bindings GET this pass, by id
  std::size_t next_ = 0;
  std::string refuse_creates_;  // why creates are not sent in this run (scope.clientId)
  std::size_t done_ = 0;
  std::size_t journaled_upto_ = 0;
  std::size_t journal_failed_upto_ = 0;  // creates before here were not made durable
  std::chrono::steady_clock::time_point last_flush_;
  ExecReport report_;
};

}  // namespace

net::awaitable<ExecReport> execute_plan(const core::Plan& plan,
                                        const config::DesiredState& desired,
                                        const PreparedDesired& prepared, state::StateStore& state,
                                        api::Bindings& api, ExecOptions options) {
  Executor ex(plan, desired, prepared, state, api, std::move(options));
  co_return co_await ex.run();
}

std::vector<core::DeviceId> resolve_pending_creates(
    state::StateStore& state, const std::function<bool(const core::DeviceId&)>& listed) {
  std::vector<core::DeviceId> unresolved;
  for (const auto& p : state.pending()) {
    if (listed(p.device)) {
      state.end_create(p.device);
    } else {
      unresolved.push_back(p.device);
    }
  }
  return unresolved;
}

}  // namespace thingsync::engine
