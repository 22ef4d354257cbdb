#include "thingsync/engine/desired.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <thread>

#include "thingsync/config/password_resolver.hpp"
#include "thingsync/core/password.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/sys/git.hpp"

namespace thingsync::engine {
namespace {

// Records that a binding of `source` got no password. A broken source is reported once with the
// count of its bindings (config::source_errors), not once per binding: a missing key file of a
// fleet of 100,000 is one line.
void failed(config::SourceFailures& failures, std::uint32_t source, std::string_view why) {
  auto& f = failures[source];
  if (f.bindings++ == 0) f.why = why;
}

}  // namespace

DesiredFingerprints fingerprint_desired(const config::DesiredState& state, std::string_view salt,
                                        const config::EnvLookup& env, unsigned threads) {
  const std::size_t n = state.bindings.size();
  DesiredFingerprints out;
  out.fps.resize(n);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(1, n / 4096 + 1)));

  // Every binding is resolved, so the failures of a source count all the bindings that use it.
  std::vector<config::SourceFailures> failures(threads);
  auto work = [&](unsigned t) {
    config::PasswordResolver resolver(state, env);
    core::Fingerprinter fingerprint(salt);
    const std::size_t begin = n * t / threads;
    const std::size_t end = n * (t + 1) / threads;
    if (begin == end) return;
    core::DeviceId device = state.bindings.device(begin).unpack();  // unpacked into, reused
    for (std::size_t i = begin; i < end; ++i) {
      const config::DesiredEntry e = state.bindings[i];
      e.device.unpack_into(device);
      auto pw = resolver.password(e, device);
      if (!pw) {
        failed(failures[t], e.source, pw.error());
        continue;
      }
      out.fps[i] = fingerprint(device, pw.value());
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (unsigned t = 1; t < threads; ++t) {
    for (auto& [source, f] : failures[t]) {
      if (auto it = failures[0].find(source); it != failures[0].end()) {
        it->second.bindings += f.bindings;
      } else {
        failures[0].emplace(source, std::move(f));
      }
    }
  }
  out.diagnostics = config::source_errors(state, failures[0]);
  return out;
}

PreparedDesired with_fingerprints(const config::DesiredState& state,
                                  const std::vector<core::Fingerprint>& fps) {
  PreparedDesired out;
  out.bindings.reserve(state.bindings.size());
  for (std::size_t i = 0; i < state.bindings.size(); ++i) {
    out.bindings.push_back({state.bindings.device(i), fps[i], static_cast<std::uint32_t>(i)});
  }
  return out;
}

PreparedDesired prepare_desired(const config::DesiredState& state, std::string_view salt,
                                const config::EnvLookup& env, unsigned threads) {
  auto fps = fingerprint_desired(state, salt, env, threads);
  PreparedDesired out = with_fingerprints(state, fps.fps);
  out.diagnostics = std::move(fps.diagnostics);
  return out;
}

DesiredFingerprints fingerprint_desired_incremental(const config::DesiredState& state,
                                                    const config::DesiredState& previous,
                                                    const std::vector<core::Fingerprint>& previous_fps,
                                                    const std::vector<core::DeviceId>& affected,
                                                    std::string_view salt,
                                                    const config::EnvLookup& env) {
  DesiredFingerprints out;
  out.fps.resize(state.bindings.size());
  config::PasswordResolver resolver(state, env);
  config::SourceFailures failures;
  core::Fingerprinter fingerprint(salt);
  std::vector<core::PackedDevice> changed;  // `affected`, packed; still in canonical order
  changed.reserve(affected.size());
  for (const auto& d : affected) changed.emplace_back(d);
  const auto before = [](const core::PackedDevice& a, const core::PackedDevice& b) {
    return canonical_order(a, b) < 0;
  };
  const auto& was = previous.bindings;
  std::size_t p = 0;  // walks previous
  std::size_t a = 0;  // walks changed
  for (std::size_t i = 0; i < state.bindings.size(); ++i) {
    const auto& device = state.bindings.device(i);
    while (a < changed.size() && before(changed[a], device)) ++a;
    while (p < was.size() && before(was.device(p), device)) ++p;
    const bool is_affected = a < changed.size() && changed[a] == device;
    if (!is_affected && p < was.size() && was.device(p) == device) {
      out.fps[i] = previous_fps[p];
      continue;
    }
    const config::DesiredEntry e = state.bindings[i];
    const core::DeviceId id = e.device.unpack();
    auto pw = resolver.password(e, id);
    if (!pw) {
      failed(failures, e.source, pw.error());
    } else {
      out.fps[i] = fingerprint(id, pw.value());
    }
  }
  if (!failures.empty()) {
    // Only the affected bindings were resolved: a broken source names all that use it.
    for (auto& [source, f] : failures) f.bindings = 0;
    for (std::size_t i = 0; i < state.bindings.size(); ++i) {
      if (auto it = failures.find(state.bindings[i].source); it != failures.end()) {
        ++it->second.bindings;
      }
    }
  }
  out.diagnostics = config::source_errors(state, failures);
  return out;
}

// Loads the desired state, never a Git checkout in progress: while `.git/index.lock` exists,
// or when HEAD moved during the load, it waits a second and loads again (30 s at most: a lock
// left behind by a git that crashed must not hang a CI job).
bool load_settled_checkout(const std::filesystem::path& path, config::LoadResult& out) {
  auto log = obs::logger("config");
  constexpr int kAttempts = 30;
  for (int attempt = 1;; ++attempt) {
    std::string busy;
    if (const auto lock = sys::git_checkout_in_progress(path)) {
      busy = "a Git checkout is in progress (" + lock->string() + " exists)";
    } else {
      const auto head = sys::git_head_commit(path);
      out = config::load_desired_state(path);
      if (sys::git_checkout_in_progress(path) || sys::git_head_commit(path) != head) {
        busy = "the Git checkout changed during the load";
      }
    }
    if (busy.empty()) return true;
    if (attempt == kAttempts) {
      log->error("desired state {} not loaded: {} for {} s; if no git is running, remove the "
                 "stale lock file", path.string(), busy, kAttempts);
      return false;
    }
    if (attempt == 1) log->warn("desired state {} not loaded yet: {}; waiting", path.string(), busy);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace thingsync::engine
