#include "thingsync/engine/desired.hpp"

#include <algorithm>
#include <thread>

#include "thingsync/config/password_resolver.hpp"
#include "thingsync/core/password.hpp"

namespace thingsync::engine {

PreparedDesired prepare_desired(const config::DesiredState& state, std::string_view salt,
                                const config::EnvLookup& env, unsigned threads) {
  PreparedDesired out;
  const std::size_t n = state.bindings.size();
  out.bindings.resize(n, core::DesiredBinding{*core::DeviceId::parse("imei:000000000000000"), {}, 0});
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(1, n / 4096 + 1)));

  std::vector<core::Diagnostics> diags(threads);
  auto work = [&](unsigned t) {
    config::PasswordResolver resolver(state, env);
    core::Fingerprinter fingerprint(salt);
    const std::size_t begin = n * t / threads;
    const std::size_t end = n * (t + 1) / threads;
    for (std::size_t i = begin; i < end; ++i) {
      const auto& e = state.bindings[i];
      auto& b = out.bindings[i];
      b.device = e.device;
      b.index = static_cast<std::uint32_t>(i);
      auto pw = resolver.resolve(e);
      if (!pw) {
        diags[t].push_back(pw.error());
        continue;
      }
      b.password_fp = fingerprint(e.device, pw.value());
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& d : diags) {
    out.diagnostics.insert(out.diagnostics.end(), std::make_move_iterator(d.begin()),
                           std::make_move_iterator(d.end()));
  }
  // One broken source shared by many bindings is one message, not a million.
  core::sort_diagnostics(out.diagnostics);
  out.diagnostics.erase(
      std::unique(out.diagnostics.begin(), out.diagnostics.end(),
                  [](const auto& a, const auto& b) { return a.message == b.message && a.file == b.file; }),
      out.diagnostics.end());
  return out;
}

PreparedDesired prepare_desired_incremental(const config::DesiredState& state,
                                            const PreparedDesired& previous,
                                            const std::vector<core::DeviceId>& affected,
                                            std::string_view salt, const config::EnvLookup& env) {
  PreparedDesired out;
  out.bindings.reserve(state.bindings.size());
  config::PasswordResolver resolver(state, env);
  core::Fingerprinter fingerprint(salt);
  std::size_t p = 0;  // walks previous.bindings
  std::size_t a = 0;  // walks affected
  for (std::size_t i = 0; i < state.bindings.size(); ++i) {
    const auto& e = state.bindings[i];
    while (a < affected.size() && affected[a] < e.device) ++a;
    while (p < previous.bindings.size() && previous.bindings[p].device < e.device) ++p;
    core::DesiredBinding b{e.device, {}, static_cast<std::uint32_t>(i)};
    const bool is_affected = a < affected.size() && affected[a] == e.device;
    if (!is_affected && p < previous.bindings.size() && previous.bindings[p].device == e.device) {
      b.password_fp = previous.bindings[p].password_fp;
    } else {
      auto pw = resolver.resolve(e);
      if (!pw) {
        out.diagnostics.push_back(pw.error());
      } else {
        b.password_fp = fingerprint(e.device, pw.value());
      }
    }
    out.bindings.push_back(std::move(b));
  }
  return out;
}

}  // namespace thingsync::engine
