#include "thingsync/engine/saved_plan.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "thingsync/core/digest.hpp"
#include "thingsync/core/password.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/engine/plan_render.hpp"

namespace thingsync::engine {
namespace {

using nlohmann::json;

std::string op(std::string_view what, const core::DeviceId& device, const std::string& id,
               std::string_view why) {
  std::string s(what);
  s += ' ';
  s += device.canonical();
  if (!id.empty()) s += " id=" + id;
  if (!why.empty()) s += " (" + std::string(why) + ")";
  return s;
}

std::string when(std::int64_t ms) { return ms ? core::format_iso8601_ms(ms) : "an unknown time"; }

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

bool from_hex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0 || hex.size() > 256) return false;
  const auto nibble = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  out.clear();
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

}  // namespace

std::optional<std::string> desired_identity(const config::DesiredState& desired,
                                            std::string_view salt, const config::EnvLookup& env,
                                            core::Diagnostics& diagnostics) {
  auto fps = fingerprint_desired(desired, salt, env);
  if (!fps.ok()) {
    diagnostics = std::move(fps.diagnostics);
    return std::nullopt;
  }
  // One line "device fingerprint" per binding, sorted by device, hashed as it is written.
  core::Sha256 identity;
  std::string line;
  for (std::size_t i = 0; i < desired.bindings.size(); ++i) {
    line = desired.bindings.device(i).unpack().canonical();
    line += ' ';
    line += core::to_hex(fps.fps[i]);
    line += '\n';
    identity.add(line);
  }
  return identity.hex();
}

SavedPlan describe_plan(const core::Plan& plan, std::span<const core::RemoteBinding> listed,
                        std::span<const std::string> also) {
  SavedPlan s;

  std::unordered_set<std::string> touched;
  for (const auto& c : plan.creates) {
    s.operations.push_back(op("create", c.device, "", ""));
    touched.insert(c.device.canonical());
  }
  for (const auto& u : plan.updates) {
    s.operations.push_back(op("update", u.device, u.binding_id, core::to_string(u.reason)));
    touched.insert(u.device.canonical());
  }
  for (const auto& d : plan.deletes) {
    s.operations.push_back(op("delete", d.device, d.binding_id, core::to_string(d.reason)));
    touched.insert(d.device.canonical());
  }
  for (const auto& b : plan.blocked) {
    s.operations.push_back(op("blocked delete", b.del.device, b.del.binding_id,
                              core::to_string(b.reason)));
    touched.insert(b.del.device.canonical());
  }
  for (const auto& w : plan.waiting) {
    s.operations.push_back(op("waiting delete", w.del.device, w.del.binding_id,
                              w.why == core::WaitingDelete::Why::kGrace ? "grace" : "window"));
    touched.insert(w.del.device.canonical());
  }
  std::sort(s.operations.begin(), s.operations.end());
  s.devices.assign(touched.begin(), touched.end());
  std::sort(s.devices.begin(), s.devices.end());
  touched.insert(also.begin(), also.end());
  for (const auto& b : listed) {
    if (!touched.contains(b.device.canonical())) continue;
    s.bindings.push_back({b.id, b.device.canonical(), b.modified_at_ms, b.modified_by});
  }
  std::sort(s.bindings.begin(), s.bindings.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return s;
}

std::string saved_plan_json(const SavedPlan& s, const core::Plan& plan) {
  json j;
  j["format_version"] = SavedPlan::kFormatVersion;
  j["kind"] = "thingsync saved plan";
  j["api"] = {{"baseUrl", s.api_base_url}, {"scopeClientId", s.scope_client_id}};
  j["desired"] = {{"hash", s.desired_hash}, {"commit", s.desired_commit}, {"salt", to_hex(s.salt)}};
  j["targets"] = s.targets;
  j["maxDeletes"] = s.max_deletes;
  j["operations"] = s.operations;
  j["devices"] = s.devices;
  auto& bindings = j["bindings"] = json::array();
  for (const auto& b : s.bindings) {
    bindings.push_back({{"id", b.id},
                        {"deviceId", b.device},
                        {"modifiedAt", b.modified_at_ms ? core::format_iso8601_ms(b.modified_at_ms)
                                                        : std::string()},
                        {"modifiedBy", b.modified_by}});
  }
  j["plan"] = json::parse(render_plan_json(plan));
  return j.dump(2) + "\n";
}

core::Result<SavedPlan, std::string> parse_saved_plan(std::string_view text) {
  using R = core::Result<SavedPlan, std::string>;
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return R::failure("not a saved plan: not a JSON object");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer()) {
    return R::failure("not a saved plan: no format_version");
  }
  const auto version = j["format_version"].get<std::int64_t>();
  if (version != SavedPlan::kFormatVersion) {
    return R::failure("saved plan format_version " + std::to_string(version) +
                      " is not the one this thingsync reads (" +
                      std::to_string(SavedPlan::kFormatVersion) + "): make the plan again");
  }
  try {
    SavedPlan s;
    s.api_base_url = j.at("api").at("baseUrl").get<std::string>();
    s.scope_client_id = j.at("api").at("scopeClientId").get<std::string>();
    s.desired_hash = j.at("desired").at("hash").get<std::string>();
    s.desired_commit = j.at("desired").at("commit").get<std::string>();
    if (!from_hex(j.at("desired").at("salt").get<std::string>(), s.salt) || s.salt.size() < 16) {
      return R::failure("saved plan: desired.salt is not a hex key of 16 bytes or more");
    }
    s.targets = j.at("targets").get<std::vector<std::string>>();
    s.max_deletes = j.at("maxDeletes").get<std::string>();
    s.operations = j.at("operations").get<std::vector<std::string>>();
    s.devices = j.at("devices").get<std::vector<std::string>>();
    for (const auto& b : j.at("bindings")) {
      SavedPlan::Binding x;
      x.id = b.at("id").get<std::string>();
      x.device = b.at("deviceId").get<std::string>();
      const auto at = b.at("modifiedAt").get<std::string>();
      if (!at.empty()) {
        const auto ms = core::parse_iso8601_ms(at);
        if (!ms) return R::failure("saved plan: bad modifiedAt '" + at.substr(0, 40) + "'");
        x.modified_at_ms = *ms;
      }
      x.modified_by = b.at("modifiedBy").get<std::string>();
      s.bindings.push_back(std::move(x));
    }
    return s;
  } catch (const json::exception& e) {
    return R::failure(std::string("saved plan: a field is missing or of the wrong type: ") +
                      e.what());
  }
}

std::vector<std::string> moved_since(const SavedPlan& saved, const SavedPlan& now) {
  std::vector<std::string> out;
  if (saved.api_base_url != now.api_base_url || saved.scope_client_id != now.scope_client_id) {
    out.push_back("the plan was made for " + saved.api_base_url +
                  (saved.scope_client_id.empty() ? "" : " scope " + saved.scope_client_id) +
                  ", the config now names " + now.api_base_url +
                  (now.scope_client_id.empty() ? "" : " scope " + now.scope_client_id));
  }
  if (saved.desired_commit != now.desired_commit) {
    out.push_back("the desired state's commit was " +
                  (saved.desired_commit.empty() ? "none" : saved.desired_commit) + ", now " +
                  (now.desired_commit.empty() ? "none" : now.desired_commit));
  }
  if (saved.desired_hash != now.desired_hash) {
    out.push_back("the desired state changed since the plan (a device or a password)");
  }
  std::map<std::string, const SavedPlan::Binding*> before, after;
  for (const auto& b : saved.bindings) before[b.id] = &b;
  for (const auto& b : now.bindings) after[b.id] = &b;
  for (const auto& [id, b] : before) {
    const auto it = after.find(id);
    if (it == after.end()) {
      out.push_back("binding " + id + " of " + b->device + " is gone");
    } else if (!(*it->second == *b)) {
      const auto& n = *it->second;
      out.push_back("binding " + id + " of " + b->device +
                    (n.device != b->device ? " now belongs to " + n.device : std::string()) +
                    " was modified at " + when(n.modified_at_ms) +
                    (n.modified_by.empty() ? "" : " by " + printable(n.modified_by)) +
                    " (at the plan: " + when(b->modified_at_ms) + ")");
    }
  }
  for (const auto& [id, b] : after) {
    if (!before.contains(id)) out.push_back("binding " + id + " of " + b->device + " appeared");
  }
  std::set<std::string> was(saved.operations.begin(), saved.operations.end());
  std::set<std::string> is(now.operations.begin(), now.operations.end());
  for (const auto& o : was) {
    if (!is.contains(o)) out.push_back("planned then, not now: " + o);
  }
  for (const auto& o : is) {
    if (!was.contains(o)) out.push_back("planned now, not then: " + o);
  }
  return out;
}

}  // namespace thingsync::engine
