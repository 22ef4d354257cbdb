#include "sim_process.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace simtest {
namespace {

std::atomic<unsigned> g_counter{0};

}  // namespace

Sim::Sim(std::vector<std::string> args, std::string tok) : token(std::move(tok)) {
  std::vector<std::string> argv_s = {THINGSYNC_SIM_PATH, "--listen", "127.0.0.1:0"};
  if (!token.empty()) {
    argv_s.push_back("--token");
    argv_s.push_back(token);
  }
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw std::runtime_error("cannot start " + argv_s[0]);
  }
  // The first stdout line names the port; wait for it (bounded) rather than for a time.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char c = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    if (::read(fds[0], &c, 1) != 1) break;
    if (c == '\n') break;
    first_line_.push_back(c);
  }
  ::close(fds[0]);  // the simulator writes nothing else to stdout
  const auto colon = first_line_.rfind(':');
  if (c != '\n' || colon == std::string::npos) {
    terminate();
    throw std::runtime_error("thingsync-sim did not print its address; got: " + first_line_);
  }
  port_ = static_cast<unsigned short>(std::stoi(first_line_.substr(colon + 1)));
}

Sim::~Sim() {
  if (pid_ > 0) terminate();
}

int Sim::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a child's exit
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

HttpResult Sim::call(const std::string& method, const std::string& target, const std::string& body,
                     std::vector<HttpHeader> headers) const {
  bool has_ct = false;
  for (const auto& h : headers) has_ct = has_ct || h.name == "Content-Type";
  if (!body.empty() && !has_ct) headers.push_back({"Content-Type", "application/json"});
  if (!token.empty()) headers.push_back({"Authorization", "Bearer " + token});
  return http(port_, method, target, body, headers);
}

HttpResult Sim::admin(const std::string& method, const std::string& target,
                      const nlohmann::json& body) const {
  if (body.is_null()) return http(port_, method, target);
  return http(port_, method, target, body.dump(), {{"Content-Type", "application/json"}});
}

std::string unique_imei() {
  const auto n = (static_cast<unsigned long long>(::getpid()) * 100000ULL + ++g_counter) %
                 10000000000000ULL;
  char buf[32];
  std::snprintf(buf, sizeof buf, "imei:35%013llu", n);
  return buf;
}

std::vector<nlohmann::json> walk(const Sim& sim, const std::string& first, int* pages) {
  std::vector<nlohmann::json> items;
  std::string target = first;
  const std::string origin = "http://127.0.0.1:" + std::to_string(sim.port());
  int n = 0;
  for (;;) {
    const auto res = sim.get(target);
    if (res.status != 200) throw std::runtime_error("page " + target + ": " + res.body);
    const auto page = res.json();
    ++n;
    for (const auto& item : page.at("items")) items.push_back(item);
    if (!page.contains("next")) break;
    target = page["next"].get<std::string>();
    if (target.rfind(origin, 0) == 0) target = target.substr(origin.size());
    if (n > 100000) throw std::runtime_error("next links do not end");
  }
  if (pages) *pages = n;
  return items;
}

}  // namespace simtest
