// Load + validate benchmark for the desired state (see README.md).
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/password_resolver.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string imei(std::size_t i) {
  std::string digits = std::to_string(i);
  return "imei:35" + std::string(13 - digits.size(), '0') + digits;
}

void write_file(const fs::path& p, std::size_t first, std::size_t count) {
  std::ofstream out(p);
  out << "defaults:\n  password:\n    derive:\n      keyFile: "
      << "${BENCH_KEY_FILE}\n";
  out << "bindings:\n";
  for (std::size_t i = first; i < first + count; ++i) out << "  - deviceId: " << imei(i) << "\n";
}

void generate(const fs::path& dir, std::size_t n) {
  fs::create_directories(dir / "many");
  std::ofstream(dir / "fleet-key") << "bench-only-fleet-key-0123456789abcdef0123456789\n";
  write_file(dir / "one.yaml", 0, n);
  const std::size_t files = 1000;
  for (std::size_t f = 0; f < files; ++f) {
    const fs::path sub = dir / "many" / ("batch-" + std::to_string(f / 100));
    fs::create_directories(sub);
    write_file(sub / ("part-" + std::to_string(f) + ".yaml"), f * (n / files), n / files);
  }
}

int run_case(const fs::path& path) {
  using thingsync::config::LoadOptions;
  const auto t0 = Clock::now();
  auto loaded = thingsync::config::load_desired_state(path, LoadOptions{});
  const auto t1 = Clock::now();
  auto diags = thingsync::config::validate_sources(loaded.state);
  const auto t2 = Clock::now();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double rss = static_cast<double>(ru.ru_maxrss) * 1024.0;
  const std::size_t n = loaded.state.bindings.size();
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  const double cpu_ms = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                        static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  std::printf(
      "%-9s files=%zu bindings=%zu sources=%zu load=%.0f ms validate=%.1f ms total=%.0f ms"
      " cpu=%.0f ms peak_rss=%.1f MiB (%.0f bytes/binding) diagnostics=%zu\n",
      path.filename().c_str(), loaded.state.files.size(), n, loaded.state.sources.size(),
      ms(t1 - t0), ms(t2 - t1), ms(t2 - t0), cpu_ms, rss / (1024.0 * 1024.0),
      n ? rss / static_cast<double>(n) : 0.0, loaded.diagnostics.size() + diags.size());
  for (std::size_t i = 0; i < loaded.diagnostics.size() && i < 5; ++i) {
    std::printf("  %s\n", loaded.diagnostics[i].to_string().c_str());
  }
  return loaded.ok() && diags.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--case") return run_case(argv[2]);
  if (argc >= 3 && std::string(argv[1]) == "--generate") {  // keep a data set for profiling
    generate(argv[2], argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1'000'000);
    return 0;
  }
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const fs::path dir =
      fs::temp_directory_path() / ("thingsync-load-bench-" + std::to_string(getpid()));
  std::printf("generating %zu bindings twice in %s\n", n, dir.c_str());
  generate(dir, n);
  setenv("BENCH_KEY_FILE", (dir / "fleet-key").c_str(), 1);
  std::printf("hardware threads: %u\n", std::thread::hardware_concurrency());
  std::fflush(stdout);
  int rc = 0;
  for (const char* c : {"one.yaml", "many"}) {
    const std::string target = (dir / c).string();
    char* args[] = {argv[0], const_cast<char*>("--case"), const_cast<char*>(target.c_str()),
                    nullptr};
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, args, environ) != 0) return 1;
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  fs::remove_all(dir);
  return rc;
}
