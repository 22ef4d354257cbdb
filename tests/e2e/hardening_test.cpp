// The thingsync process leaves no secrets behind (docs/operations.md, "Hardening notes"):
// `thingsync run` makes itself non-dumpable, so a crash writes no core file, and with
// THINGSYNC_ALLOW_CORE_DUMPS=1 (debugging) the core it writes holds no password it has sent.
//
// The observable is the kernel's own: the process gets SIGABRT (whose default action dumps
// core) in an empty directory of its own, with RLIMIT_CORE raised, on a machine whose
// core_pattern is a plain file name (so the core lands in that directory). Where cores go to a
// program (systemd-coredump, apport) or elsewhere, the test says so and checks nothing.
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "daemon.hpp"
#include "fleet.hpp"

using namespace thingsync::e2e;
namespace fs = std::filesystem;

namespace {

// After its first pass the daemon stays idle: no later pass has a password in hand when the
// signal comes (one that is being sent is in use, and may be in a core).
constexpr auto kIdle = "  pollInterval: 1h\n  fullResyncInterval: 1h\n";
constexpr rlim_t kCoreLimit = rlim_t{1} << 30;  // a dev build's core is some tens of MB

std::string first_line(const char* file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// Why this machine's core dumps cannot be watched from here; "" when they can.
std::string why_cores_are_not_observable() {
  const std::string pattern = first_line("/proc/sys/kernel/core_pattern");
  if (pattern.empty() || pattern.front() == '|') {
    return "kernel.core_pattern hands cores to a program ('" + pattern + "')";
  }
  if (pattern.find('/') != std::string::npos) {
    return "kernel.core_pattern writes cores outside the working directory ('" + pattern + "')";
  }
  // 1 dumps every process, dumpable or not; 2 dumps them for root to a safe place only.
  if (const auto s = first_line("/proc/sys/fs/suid_dumpable"); s != "0") {
    return "fs.suid_dumpable is " + s + ", not 0";
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_CORE, &limit) != 0 || limit.rlim_max < kCoreLimit) {
    return "the hard RLIMIT_CORE is below 1 GiB";
  }
  return {};
}

// For its lifetime, processes started are started in `dir`, may dump core (the soft
// RLIMIT_CORE raised; ASan, which turns core dumps off for itself, told not to).
class CoreDumpsInto {
 public:
  explicit CoreDumpsInto(const fs::path& dir) : old_cwd_(fs::current_path()) {
    ::getrlimit(RLIMIT_CORE, &old_limit_);
    rlimit raised = old_limit_;
    raised.rlim_cur = std::min(raised.rlim_max, kCoreLimit);
    ::setrlimit(RLIMIT_CORE, &raised);
    if (const char* v = std::getenv("ASAN_OPTIONS")) old_asan_ = v;
    const std::string asan = old_asan_ ? *old_asan_ + ":disable_coredump=0" : "disable_coredump=0";
    ::setenv("ASAN_OPTIONS", asan.c_str(), 1);
    fs::current_path(dir);
  }
  ~CoreDumpsInto() {
    std::error_code ec;
    fs::current_path(old_cwd_, ec);
    ::setrlimit(RLIMIT_CORE, &old_limit_);
    if (old_asan_) {
      ::setenv("ASAN_OPTIONS", old_asan_->c_str(), 1);
    } else {
      ::unsetenv("ASAN_OPTIONS");
    }
  }
  CoreDumpsInto(const CoreDumpsInto&) = delete;
  CoreDumpsInto& operator=(const CoreDumpsInto&) = delete;

 private:
  fs::path old_cwd_;
  rlimit old_limit_{};
  std::optional<std::string> old_asan_;
};

// Whether this machine's core dumps can be watched from here; when not, the test says why.
bool cores_observable() {
  auto why = why_cores_are_not_observable();
#ifdef __SANITIZE_THREAD__
  // ThreadSanitizer's runtime keeps its own core-dump policy and shadow mappings; the ASan and
  // optimised builds run these tests.
  why = "a ThreadSanitizer build";
#endif
  if (!why.empty()) WARN("not checked on this machine: " << why);
  return why.empty();
}

// One run of `thingsync run` on a fleet of 10 devices (derive passwords) against a sim, in
// an empty directory of its own, aborted once it has written the desired state.
struct Crash {
  TempDir dir{"thingsync-crash"};      // the daemon's working directory: a core goes here
  std::optional<int> exit_code;        // 128 + SIGABRT
  std::vector<fs::path> cores;         // what the kernel left in `dir`
  std::vector<std::string> passwords;  // every password the daemon sent
  std::string token;                   // the API token it used

  // Starts the daemon with `env`, waits until it is ready (the first full list and reconcile
  // are done) and checks the sim's passwords, then sends SIGABRT and waits for the exit.
  void run(std::vector<std::string> env) {
    Sim sim;
    token = sim.token();
    Fleet fleet(sim, {.extra_sync = kIdle});
    const auto devices = imeis(1, 10);
    fleet.set_desired(devices);
    std::optional<Daemon> daemon;
    {
      CoreDumpsInto here(dir.path());
      daemon.emplace(fleet, std::move(env));
    }
    REQUIRE(eventually([&] { return daemon->ready(); }, std::chrono::seconds(30)));
    const auto remote = thingsync::e2e::passwords(sim);
    for (const auto& d : devices) {
      passwords.push_back(fleet.derived(d));
      REQUIRE(remote.count(d) == 1);
      CHECK(remote.at(d) == passwords.back());
    }
    daemon->proc().signal(SIGABRT);
    exit_code = daemon->proc().wait(std::chrono::seconds(60));  // a core takes a moment
    for (const auto& e : fs::directory_iterator(dir.path())) {
      if (e.is_regular_file()) cores.push_back(e.path());
    }
  }
};

// thingsync-audit-scan (tests/audit) on `core` alone, for `secrets`, in a directory of its
// own: the core must not reach the real audit's artifacts, which hold no core files.
struct Scan {
  int code = -1;  // 0 none found, 1 found
  std::string out;
};
Scan scan_core(const fs::path& core, const std::string& kind,
               const std::vector<std::string>& secrets) {
  TempDir dir("thingsync-core-scan");
  fs::create_directories(dir / "files");
  fs::copy_file(core, dir / "files" / "core");
  {
    std::ofstream reg(dir / "secrets");
    for (const auto& s : secrets) {
      reg << kind << '\t';
      for (const unsigned char c : s) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", c);
        reg << hex;
      }
      reg << '\n';
    }
  }
  Process p({THINGSYNC_AUDIT_SCAN, dir.path().string()});
  Scan s;
  s.code = p.wait(std::chrono::seconds(120)).value_or(-1);
  s.out = p.out() + p.err();
  return s;
}

}  // namespace

TEST_CASE("thingsync run is not dumpable: SIGABRT after its writes leaves no core file",
          "[e2e][hardening]") {
  if (!cores_observable()) return;
  Crash crash;
  crash.run({});
  CHECK(crash.exit_code == 128 + SIGABRT);
  CHECK(crash.cores.empty());
}

TEST_CASE("with THINGSYNC_ALLOW_CORE_DUMPS=1 a core is written, with the token but no password",
          "[e2e][hardening]") {
  if (!cores_observable()) return;
  Crash crash;
  crash.run({"THINGSYNC_ALLOW_CORE_DUMPS=1"});
  CHECK(crash.exit_code == 128 + SIGABRT);
  // The control: this machine does write the core that the test before expects to be absent.
  REQUIRE(crash.cores.size() == 1);
  const auto& core = crash.cores.front();
  INFO("core file: " << fs::file_size(core) << " bytes");

  // The scan can see into a core: the token is in use (cached by the token file provider),
  // so it is there.
  const auto token_scan = scan_core(core, "API token", {crash.token});
  INFO(token_scan.out);
  CHECK(token_scan.code == 1);
  // The passwords were sent, and their request bodies wiped: none is left.
  const auto password_scan = scan_core(core, "derived password", crash.passwords);
  INFO(password_scan.out);
  CHECK(password_scan.code == 0);
  fs::remove(core);
}
