#include "chaos.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "thingsync/core/device_id.hpp"
#include "thingsync/core/password.hpp"
#include "thingsync/core/time.hpp"

namespace thingsync::chaos {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string canonical(const std::string& spelling) {
  const auto d = core::DeviceId::parse(spelling);
  return d ? d->canonical() : "unparseable:" + spelling;
}

}  // namespace

bool eventually(const std::function<bool()>& cond, Ms timeout, Ms interval) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(interval);
  }
  return cond();
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::uint64_t chaos_seed() {
  if (const char* s = std::getenv("THINGSYNC_CHAOS_SEED"); s && *s) return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

std::ostringstream summary() {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  return s;
}

void report(const std::ostringstream& line) { std::cout << "chaos: " << line.str() << std::endl; }

std::vector<std::string> devices(int first, int count) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = first; i < first + count; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "imei:35%013d", i);
    out.emplace_back(buf);
  }
  return out;
}

// ---- Scrape ----------------------------------------------------------------------------

Scrape::Scrape(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    std::size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) continue;
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find("=\"", i);
        if (eq == std::string::npos) break;
        const auto key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value.push_back(line[j]);
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    try {
      s.value = std::stod(line.substr(i));
    } catch (const std::exception&) {
      continue;
    }
    samples_.push_back(std::move(s));
  }
}

double Scrape::sum(const std::string& name, const Labels& labels) const {
  double total = 0;
  for (const auto& s : samples_) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      const auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) total += s.value;
  }
  return total;
}

std::vector<LoggedRequest> read_request_log(const fs::path& file) {
  std::vector<LoggedRequest> out;
  std::istringstream in(testsupport::read_file(file));
  std::string line;
  while (std::getline(in, line)) {
    const auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) continue;  // a line still being written
    LoggedRequest r;
    r.time_ms = core::parse_iso8601_ms(j.value("time", "")).value_or(0);
    r.method = j.value("method", "");
    r.path = j.value("path", "");
    r.status = j.value("status", 0);
    r.dropped = j.value("dropped", false);
    out.push_back(std::move(r));
  }
  return out;
}

// ---- Rig -------------------------------------------------------------------------------

Rig::Rig() : key_("chaos-fleet-key-0123456789abcdefghijklmnopqrstuvwxyz") {
  testsupport::write_file(dir_ / "fleet-key", key_ + "\n");
}

void Rig::configure(const std::string& base_url, const AuthSpec& auth, const SyncSpec& s) {
  std::ostringstream c;
  c << "api:\n  baseUrl: " << base_url << "\n  timeout: " << s.timeout << "\n";
  if (auth.oauth_token_url.empty()) {
    write_token(auth.token);
    c << "auth:\n  tokenFile: api-token\n";
  } else {
    testsupport::write_file(dir_ / "client-secret", auth.client_secret + "\n");
    c << "auth:\n  oauth2:\n    tokenUrl: " << auth.oauth_token_url
      << "\n    clientId: " << auth.client_id
      << "\n    clientSecretFile: client-secret\n    audience: chaos-app\n";
  }
  c << "desiredState:\n  path: fleet\n";
  if (!s.scope_client_id.empty()) c << "scope:\n  clientId: " << s.scope_client_id << "\n";
  c << "sync:\n  pollInterval: " << s.poll << "\n  fullResyncInterval: " << s.full_resync
    << "\n  modifiedSinceOverlap: " << s.overlap << "\n  prune: " << (s.prune ? "true" : "false")
    << "\n  maxDeletes: \"" << s.max_deletes << "\"\n  concurrency: " << s.concurrency
    << "\n  rateLimit: " << s.rate_limit << "\n"
    << "state:\n  path: state.json\nmetrics:\n  listen: 127.0.0.1:0\n";
  testsupport::write_file(config(), c.str());
}

void Rig::write_token(const std::string& token, bool in_place) const {
  if (in_place) {
    testsupport::write_file(dir_ / "api-token", token + "\n");
    return;
  }
  testsupport::write_file(dir_ / ".api-token.new", token + "\n");
  fs::rename(dir_ / ".api-token.new", dir_ / "api-token");
}

std::string Rig::desired_yaml(const Desired& desired) {
  std::string y = "defaults:\n  password:\n    derive:\n      keyFile: ../fleet-key\nbindings:";
  if (desired.devices.empty()) return y + " []\n";
  y += "\n";
  for (const auto& d : desired.devices) {
    y += "  - deviceId: \"" + d + "\"\n";
    if (auto it = desired.literal.find(d); it != desired.literal.end()) {
      y += "    password:\n      value: \"" + it->second + "\"\n";
    }
  }
  return y;
}

void Rig::set_desired(const Desired& desired) const {
  const auto tmp = desired_dir() / ".fleet.yaml.new";  // hidden: neither loaded nor watched
  testsupport::write_file(tmp, desired_yaml(desired));
  fs::rename(tmp, desired_dir() / "fleet.yaml");
}

std::string Rig::password(const Desired& desired, const std::string& device) const {
  if (auto it = desired.literal.find(device); it != desired.literal.end()) return it->second;
  core::PasswordDeriver d{core::Secret(key_)};
  return d.derive(*core::DeviceId::parse(device)).reveal();
}

std::vector<std::string> Rig::passwords(const Desired& desired) const {
  std::vector<std::string> out;
  out.reserve(desired.devices.size());
  core::PasswordDeriver d{core::Secret(key_)};
  for (const auto& dev : desired.devices) {
    const auto it = desired.literal.find(dev);
    out.push_back(it != desired.literal.end() ? it->second
                                              : d.derive(*core::DeviceId::parse(dev)).reveal());
  }
  return out;
}

OneShot run_thingsync(const Rig& rig, std::vector<std::string> args) {
  std::vector<std::string> argv{THINGSYNC_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--config");
  argv.push_back(rig.config().string());
  Process p(argv);
  OneShot r;
  r.code = p.wait(std::chrono::seconds(120)).value_or(-1);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// ---- Daemon ----------------------------------------------------------------------------

Daemon::Daemon(const Rig& rig) : proc_({THINGSYNC_PATH, "run", "--config", rig.config().string()}) {
  const std::string marker = "metrics=http://127.0.0.1:";
  const bool started = proc_.wait_for_output(marker, std::chrono::seconds(60));
  const auto err = proc_.err();
  INFO(err);
  REQUIRE(started);
  port_ = static_cast<std::uint16_t>(std::stoi(err.substr(err.find(marker) + marker.size())));
}

Scrape Daemon::scrape() const {
  const auto r = testsupport::http(port_, "GET", "/metrics");
  return Scrape(r.status == 200 ? r.body : "");
}

double Daemon::metric(const std::string& name, const Labels& labels) const {
  return scrape().sum(name, labels);
}

int Daemon::status(const std::string& path) const {
  return testsupport::http(port_, "GET", path).status;
}

bool Daemon::settled() const {
  const auto s = scrape();
  return !s.empty() && s.sum("thingsync_drift_bindings") == 0 &&
         s.sum("thingsync_deletes_blocked") == 0 && ready();
}

int Daemon::stop(Ms timeout) {
  proc_.signal(SIGTERM);
  if (auto code = proc_.wait(timeout)) return *code;
  proc_.signal(SIGKILL);
  proc_.wait(std::chrono::seconds(10));
  return -1;
}

void Daemon::kill9() {
  proc_.signal(SIGKILL);
  REQUIRE(proc_.wait(std::chrono::seconds(10)) == 128 + SIGKILL);
}

std::size_t Daemon::log_count(const std::string& text) const {
  const auto log = proc_.err();
  std::size_t n = 0;
  for (auto pos = log.find(text); pos != std::string::npos; pos = log.find(text, pos + text.size())) ++n;
  return n;
}

// ---- the simulator's side --------------------------------------------------------------

Unmanaged seed_unmanaged(const Sim& sim, const std::vector<std::string>& devs,
                         const std::string& client_id) {
  Unmanaged u;
  for (const auto& d : devs) {
    json body{{"deviceId", d}, {"password", testsupport::kGoodPassword}};
    if (!client_id.empty()) body["clientId"] = client_id;
    const auto r = sim.admin("POST", "/_sim/bindings", body);
    INFO(r.body);
    REQUIRE(r.status == 201);
    const std::string id = r.json().at("id");
    u.by_id[id] = sim.admin("GET", "/_sim/bindings/" + id).json();
  }
  return u;
}

std::string SimView::describe() const {
  std::ostringstream s;
  s << "reachable=" << reachable << " bindings=" << bindings << " missing=" << missing
    << " wrong_password=" << wrong_password << " duplicated=" << duplicated << " extra=" << extra
    << " unmanaged_touched=" << unmanaged_touched;
  return s.str();
}

SimView inspect(const Sim& sim, const Rig& rig, const Desired& desired,
                const Unmanaged& unmanaged) {
  SimView v;
  const auto r = sim.admin("GET", "/_sim/bindings");
  if (r.status != 200) return v;
  const auto all = json::parse(r.body, nullptr, false);
  if (all.is_discarded()) return v;
  v.reachable = true;
  std::map<std::string, std::vector<const json*>> by_device;
  std::set<std::string> ids;
  for (const auto& b : all.at("items")) {
    by_device[canonical(b.at("deviceId").get<std::string>())].push_back(&b);
    ids.insert(b.at("id").get<std::string>());
  }
  v.bindings = all.at("items").size();
  const auto passwords = rig.passwords(desired);
  std::set<std::string> wanted;
  for (std::size_t i = 0; i < desired.devices.size(); ++i) {
    const auto dev = canonical(desired.devices[i]);
    wanted.insert(dev);
    const auto it = by_device.find(dev);
    if (it == by_device.end()) {
      ++v.missing;
      continue;
    }
    for (const auto* b : it->second) {
      const auto pw = b->find("password");
      if (pw == b->end() || !pw->is_string() || *pw != passwords[i]) {
        ++v.wrong_password;
        break;
      }
    }
  }
  for (const auto& [dev, list] : by_device) {
    v.duplicated += list.size() > 1;
    if (wanted.contains(dev)) continue;
    for (const auto* b : list) {
      const auto u = unmanaged.by_id.find(b->at("id").get<std::string>());
      if (u == unmanaged.by_id.end()) {
        ++v.extra;
      } else if (u->second != *b) {
        ++v.unmanaged_touched;
      }
    }
  }
  for (const auto& [id, b] : unmanaged.by_id) v.unmanaged_touched += !ids.contains(id);
  return v;
}

bool wait_converged(const Sim& sim, const Rig& rig, const Desired& desired,
                    const Unmanaged& unmanaged, const Daemon& daemon, Ms timeout) {
  return eventually(
      [&] { return inspect(sim, rig, desired, unmanaged).converged() && daemon.settled(); },
      timeout, Ms(250));
}

// ---- the daemon's side -----------------------------------------------------------------

bool contains_any(const std::string& text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (!s.empty() && text.find(s) != std::string::npos) return true;
  }
  return false;
}

StateView inspect_state(const Sim& sim, const Rig& rig, const Desired& desired) {
  StateView v;
  const auto text = testsupport::read_file(rig.state());
  v.secrets_found = contains_any(text, rig.passwords(desired));
  const auto state = json::parse(text);
  std::map<std::string, std::string> store;  // binding id -> canonical device
  const auto listing = sim.admin("GET", "/_sim/bindings").json();  // not a temporary: ranged over
  for (const auto& b : listing.at("items")) {
    store[b.at("id").get<std::string>()] = canonical(b.at("deviceId").get<std::string>());
  }
  for (const auto& [id, rec] : state.at("bindings").items()) {
    ++v.bindings;
    const auto it = store.find(id);
    v.dangling += it == store.end() || it->second != rec.at("device").get<std::string>();
  }
  v.pending = state.at("pending").size();
  v.failures = state.at("failures").size();
  return v;
}

void check_daemon_side(Daemon& daemon, const Sim& sim, const Rig& rig, const Desired& desired,
                       std::size_t observed, const std::vector<std::string>& tokens) {
  const auto s = daemon.scrape();
  CHECK(s.sum("thingsync_desired_bindings") == static_cast<double>(desired.devices.size()));
  CHECK(s.sum("thingsync_observed_bindings") == static_cast<double>(observed));
  CHECK(s.sum("thingsync_drift_bindings") == 0);
  CHECK(s.sum("thingsync_deletes_blocked") == 0);
  CHECK(s.sum("thingsync_last_successful_reconcile_timestamp_seconds") > 0);
  CHECK(daemon.proc().running());
  CHECK(daemon.stop() == 0);
  auto secrets = rig.passwords(desired);
  secrets.insert(secrets.end(), tokens.begin(), tokens.end());
  CHECK_FALSE(contains_any(daemon.proc().err() + daemon.proc().out(), secrets));
  CHECK_FALSE(contains_any(testsupport::read_file(rig.state()), tokens));

  const auto st = inspect_state(sim, rig, desired);
  CHECK(st.bindings == desired.devices.size());
  CHECK(st.pending == 0);
  CHECK(st.failures == 0);
  CHECK(st.dangling == 0);
  CHECK_FALSE(st.secrets_found);

  const auto plan = run_thingsync(rig, {"plan"});
  INFO("plan: " << plan.out << plan.err);
  CHECK(plan.code == 0);
}

}  // namespace thingsync::chaos
