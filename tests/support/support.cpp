#include "support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

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

Sim::Sim(std::vector<std::string> args, std::string token) : token_(std::move(token)) {
  std::vector<std::string> argv{THINGSYNC_SIM_PATH, "--listen", "127.0.0.1:0", "--admin"};
  if (!token_.empty()) {
    argv.push_back("--token");
    argv.push_back(token_);
  }
  for (auto& a : args) argv.push_back(std::move(a));
  proc_ = std::make_unique<Process>(argv);
  if (!proc_->wait_for_output("listening on http", std::chrono::seconds(30))) {
    throw std::runtime_error("thingsync-sim did not start: " + proc_->err());
  }
  const auto out = proc_->out();
  const auto colon = out.find(':', out.find("127.0.0.1"));
  port_ = static_cast<std::uint16_t>(std::stoi(out.substr(colon + 1)));
}

HttpResult Sim::api(const std::string& method, const std::string& target,
                    const nlohmann::json& body) const {
  HttpHeaders headers;
  if (!token_.empty()) headers.push_back({"Authorization", "Bearer " + token_});
  if (body.is_null()) return http(port_, method, target, {}, headers);
  headers.push_back({"Content-Type", "application/json"});
  return http(port_, method, target, body.dump(), headers);
}

HttpResult Sim::admin(const std::string& method, const std::string& target,
                      const nlohmann::json& body) const {
  if (body.is_null()) return http(port_, method, target);
  return http(port_, method, target, body.dump(), {{"Content-Type", "application/json"}});
}

std::vector<nlohmann::json> Sim::bindings() const {
  std::vector<nlohmann::json> all;
  std::string target = "/mqtt/bindings?limit=1000";
  for (int guard = 0; guard < 100000; ++guard) {
    auto r = api("GET", target);
    if (r.status != 200) throw std::runtime_error("list failed: " + std::to_string(r.status) + " " + r.body);
    auto j = r.json();
    for (auto& item : j["items"]) all.push_back(item);
    if (!j.contains("next")) break;
    std::string next = j["next"];
    const auto path = next.find("/mqtt/");
    target = next.substr(path);
  }
  return all;
}

std::string Sim::create(const std::string& device_id, const std::string& password) const {
  auto r = api("POST", "/mqtt/bindings", {{"deviceId", device_id}, {"password", password}});
  if (r.status != 201) throw std::runtime_error("create failed: " + std::to_string(r.status) + " " + r.body);
  return r.json()["id"];
}

}  // namespace thingsync::testsupport
