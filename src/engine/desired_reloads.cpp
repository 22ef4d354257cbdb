#include "desired_reloads.hpp"

#include <functional>
#include <future>

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {

void DesiredReloads::watch(boost::asio::any_io_executor ex) {
  try {
    watcher_ = std::make_unique<sys::TreeWatcher>(std::move(ex), p_.config.desired_state_path);
  } catch (const std::system_error& e) {
    // No inotify at all (fs.inotify.max_user_instances reached, say): the daemon runs on, and
    // every poll rescans the tree instead.
    const bool instances = e.code() == std::errc::too_many_files_open ||
                           e.code() == std::errc::too_many_files_open_in_system;
    watch_warnings({std::string("cannot watch the desired state: ") + e.what() +
                    (instances ? " (the limit fs.inotify.max_user_instances may be reached)" : "")});
    return;
  }
  watch_warnings(watcher_->take_warnings());
}

boost::asio::awaitable<void> DesiredReloads::watch_loop(const bool& stopping,
                                                        Clock::duration debounce) {
  while (!stopping && watcher_) {
    auto changes = co_await watcher_->next();
    if (stopping) break;
    took_changes(changes, debounce);
  }
}

void DesiredReloads::close() {
  if (watcher_) watcher_->close();
}

void DesiredReloads::full_now() {
  if (loading_) {
    full_pending_ = true;  // the holder is the loading thread's until the load ends
  } else {
    p_.desired.want_full();
  }
  at(Clock::now());
}

void DesiredReloads::after_poll(Clock::duration debounce) {
  if (watcher_) took_changes(watcher_->check_root(), debounce);
  if (rescan_) {
    p_.desired.changed(p_.config.desired_state_path);  // the loader compares sizes and times
    at(Clock::now());
  }
}

void DesiredReloads::at(Clock::time_point t) {
  if (!at_ || t < *at_) at_ = t;
  p_.wake();
}

// A watch that could not be added (max_user_watches reached, say) loses file events: it is an
// error, counted, and from then on every poll rescans the tree for changes.
void DesiredReloads::watch_warnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) {
    obs::logger("daemon")->error("{}; rescanning the desired state every pollInterval instead", w);
    p_.metrics.desired_state_watch_error();
    rescan_ = true;
  }
}

// File events, or what a look at the root found (a swapped symlink or a replaced directory
// whose events were lost): a reload after `delay`.
void DesiredReloads::took_changes(const sys::TreeChanges& changes, Clock::duration delay) {
  watch_warnings(changes.warnings);
  if (changes.full()) p_.desired.want_full();
  for (const auto& path : changes.paths) p_.desired.changed(path);
  if (changes.paths.empty() && !changes.full()) return;
  at(Clock::now() + delay);
}

bool DesiredReloads::reload(
    const std::function<void(const std::function<bool()>& done)>& serve) {
  auto log = obs::logger("daemon");
  at_.reset();
  if (p_.desired.full_wanted() && p_.reload_token) p_.reload_token();
  DesiredHolder::Outcome r;
  if (serve) {
    // The holder touches only its own members: nothing here is shared with `serve`.
    loading_ = true;
    auto loading = std::async(std::launch::async, [this] { return p_.desired.reload(); });
    serve([&loading] {
      return loading.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    });
    r = loading.get();
    loading_ = false;
    if (full_pending_) {  // a SIGHUP while it loaded: the next reload reads everything
      full_pending_ = false;
      p_.desired.want_full();
    }
  } else {
    r = p_.desired.reload();
  }
  deferred_ = !r.deferred.empty();
  if (deferred_) {
    // Not a failure at first: the last good state stays in force and the load is tried again.
    // A checkout that never ends (a lock left by a git that crashed) is one after a minute:
    // not ready, counted, and said at error level, once.
    const auto now = Clock::now();
    if (!deferred_since_) deferred_since_ = now;
    if (now - *deferred_since_ >= std::chrono::minutes(1) && !deferred_reported_) {
      deferred_reported_ = true;
      p_.metrics.desired_state_load_error();
      p_.health.set_load_ok(false);
      p_.health.set_error("desired state not loaded for a minute: " + r.deferred +
                          "; if no git is running, remove the stale lock file");
    } else {
      log->info("desired state not loaded yet: {}; trying again in 1 s", r.deferred);
    }
    at_ = now + std::chrono::seconds(1);
    return false;
  }
  deferred_since_.reset();
  deferred_reported_ = false;
  if (r.root_changed) {
    log->info("the desired-state path {} now resolves to another tree: loaded it whole",
              p_.config.desired_state_path.string());
  }
  for (const auto& d : r.errors) log->error("{}", d.to_string());
  p_.health.set_load_ok(r.ok);
  if (!r.ok) {
    p_.metrics.desired_state_load_error();
    p_.health.set_error("desired state does not load; the last good one stays in force");
    return false;
  }
  all_ = r.all;
  affected_ = std::move(r.affected);
  p_.metrics.set_desired(p_.desired.size());
  const auto& commit = r.commit;
  p_.metrics.set_desired_commit(commit.value_or(""));
  // A rescan that found nothing changed (every poll, when inotify is not there) is no news.
  const auto level = r.files_parsed == 0 && !all_ && affected_.empty() && !r.root_changed
                         ? spdlog::level::debug
                         : spdlog::level::info;
  log->log(level, "desired state loaded: {} bindings in {} files ({} files parsed{}){}{}{}",
            p_.desired.size(), p_.desired.state().files.size(), r.files_parsed,
            all_ ? "" : ", " + std::to_string(affected_.size()) + " devices affected",
            r.warnings ? ", " + std::to_string(r.warnings) + " warnings" : "",
            commit ? " commit=" : "", commit.value_or(""));
  return true;
}

}  // namespace thingsync::engine
