// thingsync diff DEVICE: one device, as the desired state, the API and the state file see it,
// and the verdict of the plan rules on it.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/oneshot.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/engine/plan_render.hpp"
#include "thingsync/obs/log.hpp"

namespace thingsync::cli {
namespace {

std::string at(std::int64_t ms) { return ms ? core::format_iso8601_ms(ms) : "unknown"; }

std::string source_of(const config::DesiredState& d, const config::DesiredEntry& e) {
  const auto& src = d.sources[e.source];
  std::string s(config::to_string(src.kind));
  switch (src.kind) {
    case config::PasswordSource::Kind::kDerive:
      return s + " (key file " + src.ref + ")";
    case config::PasswordSource::Kind::kFile:
      return s + " (" + src.ref + ")";
    case config::PasswordSource::Kind::kEnv:
      return s + " (variable " + src.ref + ")";
    case config::PasswordSource::Kind::kValue:
      return s + " (written in the file)";
  }
  return s;
}

// The plan rules' verdict on this one device.
std::string verdict(const core::Plan& p) {
  std::vector<std::string> parts;
  for (const auto& c : p.creates) parts.push_back("create " + c.device.canonical());
  for (const auto& u : p.updates) {
    parts.push_back("update " + u.binding_id + ": " + engine::update_reason(u));
  }
  for (const auto& d : p.deletes) {
    parts.push_back("delete " + d.binding_id + ": " + std::string(core::to_string(d.reason)));
  }
  for (const auto& b : p.blocked) {
    parts.push_back("delete " + b.del.binding_id + " (" +
                    std::string(core::to_string(b.del.reason)) + ") blocked: " +
                    std::string(core::to_string(b.reason)));
  }
  if (parts.empty()) {
    return p.unmanaged ? "left alone: not desired, and prune is off" : "in sync: nothing to do";
  }
  std::string out;
  for (const auto& x : parts) out += (out.empty() ? "" : "; ") + x;
  return out;
}

}  // namespace

int run_diff(const CommandOptions& opts) {
  auto log = obs::logger("main");
  auto parsed = core::DeviceId::parse_with_reason(opts.device);
  if (!parsed.id) {
    std::fprintf(stderr, "diff: '%s' is not a device ID: %s\n", opts.device.substr(0, 100).c_str(),
                 parsed.reason.c_str());
    return kExitUsage;
  }
  const auto device = std::move(parsed.id);
  auto cfg = load_config_or_report(opts.config_file);
  if (!cfg) return kExitError;
  auto l = load_all(std::move(*cfg), Access::kRead);
  if (!l) return kExitError;
  boost::asio::io_context ioc;
  auto session = engine::Session::create(ioc.get_executor(), l->config, nullptr);
  if (!session) {
    log->error("{}", session.error());
    return kExitError;
  }
  auto q = session.value()->scope_query();
  q.device_id = device->canonical();
  auto listed = run_on(ioc, session.value()->bindings().list_all(q));
  if (!listed) {
    log->error("looking the device up failed: {}", listed.error().to_string());
    return kExitError;
  }
  std::vector<core::RemoteBinding> remote;
  for (auto& b : listed->bindings) {
    if (b.device == *device) remote.push_back(std::move(b));
  }
  std::sort(remote.begin(), remote.end(), [](const auto& a, const auto& b) {
    return std::tie(a.created_at_ms, a.id) < std::tie(b.created_at_ms, b.id);
  });

  const auto& d = l->desired.state;
  std::printf("device %s\n", device->canonical().c_str());
  std::vector<core::DesiredBinding> desired;
  std::printf("\ndesired:\n");
  const core::PackedDevice packed(*device);
  for (const auto& b : l->prepared.bindings) {
    if (b.device != packed) continue;
    desired.push_back(b);
    const auto& e = d.bindings[b.index];
    std::printf("  %s:%u:%u, password from %s\n", d.files[e.file].c_str(), e.line, e.column,
                source_of(d, e).c_str());
  }
  if (desired.empty()) std::printf("  not in the desired state\n");

  std::printf("\nremote (%zu binding%s):\n", remote.size(), remote.size() == 1 ? "" : "s");
  for (const auto& b : remote) {
    std::printf("  id=%s created %s, modified %s by %s\n", b.id.c_str(),
                at(b.created_at_ms).c_str(), at(b.modified_at_ms).c_str(),
                b.modified_by.empty() ? "unknown" : engine::printable(b.modified_by).c_str());
  }
  if (remote.empty()) std::printf("  no binding\n");

  std::printf("\nstate (%s):\n", l->config.state_path.c_str());
  std::vector<core::AppliedBinding> applied;
  for (const auto& b : remote) {
    const auto a = l->state->find(b.id);
    if (!a) {
      std::printf("  id=%s: no record (never written by thingsync from this state file)\n",
                  b.id.c_str());
      continue;
    }
    applied.push_back(*a);
    const bool same_device = a->device == *device;
    const bool password = !desired.empty() && a->password_fp == desired.front().password_fp;
    std::printf("  id=%s: last written %s; password %s; receipt %s\n", b.id.c_str(),
                same_device ? "for this device" : ("for " + a->device.canonical()).c_str(),
                desired.empty() ? "not desired"
                : password      ? "matches the desired one"
                                : "differs from the desired one",
                a->receipt_ms == 0                   ? "none"
                : a->receipt_ms == b.modified_at_ms ? (at(a->receipt_ms) + ", matches modifiedAt").c_str()
                                                     : (at(a->receipt_ms) + ", modifiedAt differs: changed outside thingsync").c_str());
  }
  if (const auto f = l->state->failures().find(device->canonical());
      f != l->state->failures().end()) {
    std::printf("  failed %u times, last: %s; next try at %s\n", f->second.failures,
                f->second.last_error.c_str(), at(f->second.next_attempt_ms).c_str());
  }
  for (const auto& p : l->state->pending()) {
    if (p.device == *device) {
      std::printf("  a create is pending since %s (its outcome is not known yet)\n",
                  at(p.since_ms).c_str());
    }
  }

  // The rules on this device alone; the delete guard counts a whole pass, not one device.
  auto policy = policy_of(l->config, "");
  policy.max_deletes = {core::DeleteLimit::Kind::kCount, 1e12};
  const auto plan = core::make_plan(desired, remote, applied, policy);
  std::printf("\nverdict: %s\n", verdict(plan).c_str());
  return plan.empty() && plan.blocked.empty() ? kExitOk : kExitChanges;
}

}  // namespace thingsync::cli
