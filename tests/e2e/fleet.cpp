#include "fleet.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <stdexcept>

#include "thingsync/core/device_id.hpp"
#include "thingsync/core/password.hpp"

namespace thingsync::e2e {

Fleet::Fleet(const Sim& sim, FleetOptions o) : sim_(sim), state_path_(o.state_path) {
  key_ = "e2e-fleet-key-0123456789abcdefghijklmnopqrstuvwxyz";
  testsupport::write_file(dir_ / "fleet-key", key_ + "\n");
  testsupport::write_file(dir_ / "api-token", sim.token() + "\n");
  std::string cfg = "api:\n  baseUrl: " + (o.base_url.empty() ? sim.url() : o.base_url) +
                    "\n  timeout: " + o.api_timeout + "\n"
                    "auth:\n  tokenFile: api-token\n"
                    "desiredState:\n  path: fleet\n"
                    "state:\n  path: " + o.state_path + "\n" +
                    (o.journal_path.empty() ? "" : "  journalPath: " + o.journal_path + "\n") +
                    "sync:\n  prune: " +
                    std::string(o.prune ? "true" : "false") + "\n  maxDeletes: " + o.max_deletes +
                    "\n  concurrency: " + std::to_string(o.concurrency) +
                    "\n  rateLimit: " + o.rate_limit + "\n" + o.extra_sync +
                    "metrics:\n  listen: 127.0.0.1:0\n" +
                    (o.scope_client_id.empty() ? ""
                                               : "scope:\n  clientId: " + o.scope_client_id + "\n");
  testsupport::write_file(config(), cfg);
}

void Fleet::set_desired(const std::vector<std::string>& devices,
                        const std::map<std::string, std::string>& literal) {
  std::string y = "defaults:\n  password:\n    derive:\n      keyFile: ../fleet-key\nbindings:\n";
  for (const auto& d : devices) {
    y += "  - deviceId: \"" + d + "\"\n";
    if (auto it = literal.find(d); it != literal.end()) {
      y += "    password:\n      value: \"" + it->second + "\"\n";
    }
  }
  std::filesystem::remove_all(desired_dir());
  // write_file registers every password this desired state gives (see artifacts.hpp).
  testsupport::write_file(desired_dir() / "fleet.yaml", y);
}

std::string Fleet::derived(const std::string& device) const {
  core::PasswordDeriver d{core::Secret(key_)};
  auto password = d.derive(*core::DeviceId::parse(device)).reveal();
  testsupport::audit::register_secret("derived password", password);
  return password;
}

void Fleet::record_outputs(const std::vector<std::string>& args) const {
  // Each run's state snapshot and journal (a later run may overwrite what this one wrote).
  testsupport::audit::record_thingsync_outputs(dir(), "fleet-after-" + (args.empty() ? "" : args[0]));
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--output-dir") {
      testsupport::audit::record_thingsync_outputs(args[i + 1], "export");
    }
  }
}

Fleet::Run Fleet::run(std::vector<std::string> args) const {
  std::vector<std::string> argv{THINGSYNC_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--config");
  argv.push_back(config().string());
  Process p(argv);
  Run r;
  auto code = p.wait(std::chrono::seconds(300));
  r.code = code.value_or(-1);
  r.out = p.out();
  r.err = p.err();
  record_outputs(args);
  return r;
}

std::map<std::string, std::vector<std::string>> remote_passwords(const Sim& sim) {
  std::map<std::string, std::vector<std::string>> out;
  const auto all = sim.admin("GET", "/_sim/bindings").json();
  for (const auto& b : all["items"]) {
    const auto dev = core::DeviceId::parse(b["deviceId"].get<std::string>());
    if (!dev) throw std::runtime_error("the sim holds an unparseable deviceId");
    out[dev->canonical()].push_back(b["password"].is_string() ? b["password"].get<std::string>()
                                                              : "");
  }
  return out;
}

int requests(const Sim& sim, const std::string& method) {
  auto c = sim.admin("GET", "/_sim/counters").json();
  int n = 0;
  if (c["requests"].contains(method)) {
    for (auto& [status, count] : c["requests"][method].items()) n += count.get<int>();
  }
  return n;
}

int writes(const Sim& sim) {
  return requests(sim, "POST") + requests(sim, "PUT") + requests(sim, "DELETE");
}

void reset_counters(const Sim& sim) { sim.admin("DELETE", "/_sim/counters"); }

std::vector<std::string> imeis(int first, int count) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "imei:35%013d", i);
    out.emplace_back(buf);
  }
  return out;
}

std::string binding_of(const Sim& sim, const std::string& device) {
  const auto canonical = thingsync::core::DeviceId::parse(device)->canonical();
  const auto all = sim.admin("GET", "/_sim/bindings").json();  // (not a temporary: range-for)
  for (const auto& b : all["items"]) {
    if (thingsync::core::DeviceId::parse(b["deviceId"].get<std::string>())->canonical() == canonical) {
      return b["id"];
    }
  }
  FAIL("no binding for " << device);
  return {};
}

// A portal user sets another password (and says who they are).
void portal_edit(const Sim& sim, const std::string& id, const std::string& device,
                 const std::string& who) {
  REQUIRE(sim.admin("PUT", "/_sim/bindings/" + id,
                    {{"deviceId", device}, {"password", "Someone-Elses-Password-123"},
                     {"modifiedBy", who}})
              .status == 200);
}

}  // namespace thingsync::e2e
