#include "support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace thingsync::testsupport {
namespace fs = std::filesystem;

namespace {

// The secrets on a command line: thingsync-sim's --token and --oauth-client ID:SECRET.
void register_argv_secrets(const std::vector<std::string>& argv) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
    const auto& value = argv[i + 1];
    if (argv[i] == "--token") audit::register_secret("static token (--token)", value);
    if (argv[i] == "--oauth-client") {
      audit::register_secret("OAuth2 client secret (--oauth-client)", value.substr(value.find(':') + 1));
    }
  }
}

// The values of added environment variables whose names say they hold a secret.
void register_env_secrets(const std::vector<std::string>& env) {
  static const char* const kWords[] = {"PASSWORD", "SECRET", "TOKEN", "KEY", "CRED"};
  for (const auto& e : env) {
    const auto eq = e.find('=');
    if (eq == std::string::npos) continue;
    std::string name = e.substr(0, eq);
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (const char* w : kWords) {
      if (name.find(w) != std::string::npos) {
        audit::register_secret("environment variable " + e.substr(0, eq), e.substr(eq + 1));
        break;
      }
    }
  }
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::vector<std::string> env, fs::path cwd) {
  register_argv_secrets(argv);
  register_env_secrets(env);
  if (auto paths = audit::capture_paths(argv.at(0))) {
    out_ = std::move(paths->out);
    err_ = std::move(paths->err);
  } else {
    dir_.emplace("thingsync-proc");
    out_ = dir_->path() / "stdout";
    err_ = dir_->path() / "stderr";
  }
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (auto& e : env) envs.push_back(std::move(e));
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  const int rc = posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    // A child's exit has no file descriptor to wait on without a SIGCHLD handler: poll.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Process::signal(int sig) {
  if (!exit_code_) ::kill(pid_, sig);
}

bool Process::running() { return !exit_code_ && !wait(std::chrono::milliseconds(0)); }

std::string Process::out() const { return read_file(out_); }
std::string Process::err() const { return read_file(err_); }

bool Process::wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (out().find(text) != std::string::npos || err().find(text) != std::string::npos) return true;
    if (!running()) return out().find(text) != std::string::npos || err().find(text) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// ---- Sim -----------------------------------------------------------------------------

Sim::Sim(std::vector<std::string> args, std::string token, Admin admin) : token_(std::move(token)) {
  const auto flag = [&](const char* name) { return std::find(args.begin(), args.end(), name); };
  if (admin == Admin::kOn && flag("--admin") == args.end()) args_.push_back("--admin");
  if (const auto t = flag("--token"); t != args.end() && t + 1 != args.end()) {
    token_ = *(t + 1);
  } else if (!token_.empty()) {
    args_.insert(args_.end(), {"--token", token_});
  }
  args_.insert(args_.end(), args.begin(), args.end());
  start();
}

Sim::~Sim() {
  if (!runs_.empty() && runs_.back()->running()) terminate();
}

void Sim::start() {
  std::vector<std::string> argv{THINGSYNC_SIM_PATH, "--listen",
                                "127.0.0.1:" + std::to_string(port_)};
  argv.insert(argv.end(), args_.begin(), args_.end());
  runs_.push_back(std::make_unique<Process>(argv));
  auto& p = *runs_.back();
  // The first stdout line names the address: wait for all of it (bounded), not for a time.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string out;
  for (;;) {
    const bool alive = p.running();
    out = p.out();
    if (out.find('\n') != std::string::npos) break;
    if (!alive || std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("thingsync-sim did not start: " + out + p.err());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  first_line_ = out.substr(0, out.find('\n'));
  const std::string prefix = "listening on ";
  const auto scheme_end = first_line_.find("://");
  const auto colon = first_line_.rfind(':');
  if (first_line_.rfind(prefix, 0) != 0 || scheme_end == std::string::npos || colon <= scheme_end) {
    throw std::runtime_error("thingsync-sim did not print its address; got: " + first_line_);
  }
  scheme_ = first_line_.substr(prefix.size(), scheme_end - prefix.size());
  port_ = static_cast<std::uint16_t>(std::stoi(first_line_.substr(colon + 1)));
}

void Sim::kill() {
  auto& p = process();
  p.signal(SIGKILL);
  if (!p.wait(std::chrono::seconds(10))) throw std::runtime_error("thingsync-sim outlived SIGKILL");
}

int Sim::terminate(std::chrono::milliseconds timeout) {
  auto& p = process();
  p.signal(SIGTERM);
  if (const auto code = p.wait(timeout)) return *code;
  p.signal(SIGKILL);
  p.wait(std::chrono::seconds(10));
  return -1;
}

HttpResult Sim::call(const std::string& method, const std::string& target, const std::string& body,
                     HttpHeaders headers) const {
  const bool typed = std::any_of(headers.begin(), headers.end(), [](const HttpHeader& h) {
    return ::strcasecmp(h.name.c_str(), "Content-Type") == 0;
  });
  if (!body.empty() && !typed) headers.push_back({"Content-Type", "application/json"});
  if (!token_.empty()) headers.push_back({"Authorization", "Bearer " + token_});
  return http(port_, method, target, body, headers);
}

HttpResult Sim::admin(const std::string& method, const std::string& target,
                      const nlohmann::json& body) const {
  if (body.is_null()) return http(port_, method, target);
  return http(port_, method, target, body.dump(), {{"Content-Type", "application/json"}});
}

std::vector<nlohmann::json> Sim::walk(const std::string& first, int* pages) const {
  std::vector<nlohmann::json> items;
  std::string target = first;
  const std::string origin = url();
  int n = 0;
  for (;;) {
    const auto res = get(target);
    if (res.status != 200) {
      throw std::runtime_error("GET " + target + ": " + std::to_string(res.status) + " " +
                               res.body);
    }
    const auto page = res.json();
    ++n;
    for (const auto& item : page.at("items")) items.push_back(item);
    if (!page.contains("next")) break;
    target = page["next"].get<std::string>();
    if (target.rfind(origin, 0) == 0) target = target.substr(origin.size());
    if (n > 100000) throw std::runtime_error("next links do not end");
  }
  if (pages != nullptr) *pages = n;
  return items;
}

std::string Sim::create(const std::string& device_id, const std::string& password) const {
  const auto r = post("/mqtt/bindings", {{"deviceId", device_id}, {"password", password}});
  if (r.status != 201) {
    throw std::runtime_error("create failed: " + std::to_string(r.status) + " " + r.body);
  }
  return r.json()["id"];
}

void Sim::set_faults(const nlohmann::json& faults) const {
  const auto r = admin("PUT", "/_sim/faults", faults);
  if (r.status != 200) {
    throw std::runtime_error("PUT /_sim/faults: " + std::to_string(r.status) + " " + r.body);
  }
}

void Sim::clear_faults() const {
  set_faults({{"rateLimit", 0},
              {"failRate", 0},
              {"latencyMs", 0},
              {"dropAfterCreate", 0},
              {"failAfterCommit", 0},
              {"failListOnPage", 0},
              {"tokenEndpointDown", false},
              {"rejectDevices", nlohmann::json::array()}});
}

int Sim::count(const std::string& method, const std::string& status) const {
  const auto r = admin("GET", "/_sim/counters");
  if (r.status != 200) return -1;
  const auto c = r.json();
  const auto& requests = c.at("requests");
  if (!requests.contains(method)) return 0;
  int n = 0;
  for (const auto& [s, v] : requests.at(method).items()) {
    if (status.empty() || s == status) n += v.get<int>();
  }
  return n;
}

int Sim::tokens_issued() const {
  const auto r = admin("GET", "/_sim/counters");
  return r.status == 200 ? r.json().value("tokensIssued", 0) : -1;
}

std::string Sim::fetch_token(const std::string& client_id, const std::string& secret,
                             const std::string& audience) const {
  const auto r = http(port_, "POST", "/oauth2/token",
                      "grant_type=client_credentials&client_id=" + client_id +
                          "&client_secret=" + secret + "&audience=" + audience,
                      {{"Content-Type", "application/x-www-form-urlencoded"}});
  if (r.status != 200) return {};
  return r.json().value("access_token", "");
}

}  // namespace thingsync::testsupport
