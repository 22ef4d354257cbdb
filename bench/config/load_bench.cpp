// Load + validate benchmark for the desired state, and the incremental reload (see README.md).
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
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

// `edit` changes 10 entries: 1 gives them their own password files, 2 swaps their devices.
void write_file(const fs::path& p, std::size_t first, std::size_t count, int edit = 0) {
  std::ofstream out(p);
  out << "defaults:\n  password:\n    derive:\n      keyFile: "
      << "${BENCH_KEY_FILE}\n";
  out << "bindings:\n";
  for (std::size_t i = first; i < first + count; ++i) {
    const bool edited = edit != 0 && (i - first) % (count / 10) == 0;
    out << "  - deviceId: " << imei(edited && edit == 2 ? i + 100'000'000 : i) << "\n";
    if (edited && edit == 1) out << "    password:\n      file: /secrets/" << i << ".pass\n";
  }
}

fs::path many_file(const fs::path& many, std::size_t f) {
  return many / ("batch-" + std::to_string(f / 100)) / ("part-" + std::to_string(f) + ".yaml");
}

void generate(const fs::path& dir, std::size_t n) {
  fs::create_directories(dir / "many");
  std::ofstream(dir / "fleet-key") << "bench-only-fleet-key-0123456789abcdef0123456789\n";
  write_file(dir / "one.yaml", 0, n);
  const std::size_t files = 1000;
  for (std::size_t f = 0; f < files; ++f) {
    fs::create_directories(many_file(dir / "many", f).parent_path());
    write_file(many_file(dir / "many", f), f * (n / files), n / files);
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

double cpu_now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) * 1024.0;
}

// DesiredStateLoader on the 1,000-file tree: load_all, then edits of one file and a reload of
// just that file, several times over (the machine may be busy: min and median count).
int run_reload_case(const fs::path& many, std::size_t n) {
  using thingsync::config::DesiredStateLoader;
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  DesiredStateLoader loader(many);
  auto t0 = Clock::now();
  double c0 = cpu_now_ms();
  auto state = loader.load_all();
  std::printf(
      "reload    load_all: files=%zu bindings=%zu wall=%.0f ms cpu=%.0f ms"
      " peak_rss=%.1f MiB (%.0f bytes/binding)\n",
      state.files_parsed, state.result.state.bindings.size(), ms(Clock::now() - t0),
      cpu_now_ms() - c0, peak_rss_bytes() / (1024.0 * 1024.0),
      peak_rss_bytes() / static_cast<double>(state.result.state.bindings.size()));
  std::fflush(stdout);
  int rc = state.result.ok() ? 0 : 1;
  const std::size_t files = 1000;
  const std::size_t f = 500;
  const fs::path file = many_file(many, f);
  std::vector<double> walls;
  std::vector<double> cpus;
  for (int round = 0; round < 12; ++round) {
    const int edit = round % 3 == 2 ? 0 : 1 + round % 3;  // 10 passwords, 10 devices, undo
    write_file(file, f * (n / files), n / files, edit);
    t0 = Clock::now();
    c0 = cpu_now_ms();
    auto r = loader.reload({file});
    const double wall = ms(Clock::now() - t0);
    const double cpu = cpu_now_ms() - c0;
    walls.push_back(wall);
    cpus.push_back(cpu);
    std::printf(
        "reload    edit=%-9s files_parsed=%zu affected=%zu bindings=%zu sources=%zu"
        " wall=%.1f ms cpu=%.1f ms\n",
        edit == 1   ? "passwords"
        : edit == 2 ? "devices"
                    : "undo",
        r.files_parsed, r.affected.size(), r.result.state.bindings.size(),
        r.result.state.sources.size(), wall, cpu);
    if (!r.result.ok() || r.files_parsed != 1) rc = 1;
    // The caller holds the last state, as the daemon does.
    std::swap(state, r);
  }
  std::sort(walls.begin(), walls.end());
  std::sort(cpus.begin(), cpus.end());
  std::printf(
      "reload    one file of %zu: wall min=%.1f median=%.1f ms, cpu min=%.1f median=%.1f"
      " ms; peak_rss=%.1f MiB (%.0f bytes/binding)\n",
      files, walls.front(), walls[walls.size() / 2], cpus.front(), cpus[cpus.size() / 2],
      peak_rss_bytes() / (1024.0 * 1024.0),
      peak_rss_bytes() / static_cast<double>(state.result.state.bindings.size()));
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--case") return run_case(argv[2]);
  if (argc == 5 && std::string(argv[1]) == "--reload-case") {
    return run_reload_case(argv[2], std::strtoull(argv[3], nullptr, 10));
  }
  if (argc >= 3 && std::string(argv[1]) == "--generate") {  // keep a data set for profiling
    generate(argv[2], argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1'000'000);
    return 0;
  }
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  std::vector<std::string> cases;  // default: all three
  for (int i = 2; i < argc; ++i) cases.emplace_back(argv[i]);
  if (cases.empty()) cases = {"one.yaml", "many", "reload"};
  const fs::path dir =
      fs::temp_directory_path() / ("thingsync-load-bench-" + std::to_string(getpid()));
  std::printf("generating %zu bindings twice in %s\n", n, dir.c_str());
  generate(dir, n);
  setenv("BENCH_KEY_FILE", (dir / "fleet-key").c_str(), 1);
  std::printf("hardware threads: %u\n", std::thread::hardware_concurrency());
  std::fflush(stdout);
  int rc = 0;
  const std::string count = std::to_string(n);
  for (const auto& c : cases) {
    const bool reload = c.rfind("reload", 0) == 0;
    const std::string target = (dir / (reload ? "many" : c)).string();
    char* args[] = {argv[0],
                    const_cast<char*>(reload ? "--reload-case" : "--case"),
                    const_cast<char*>(target.c_str()),
                    const_cast<char*>(count.c_str()),
                    const_cast<char*>(c.c_str()),
                    nullptr};
    if (!reload) args[3] = nullptr;
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, args, environ) != 0) return 1;
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  fs::remove_all(dir);
  return rc;
}
