// Plans 1,000,000 desired bindings against 1,000,000 observed and 1,000,000 applied ones
// (about 1% creates, updates and deletes each), then derives and fingerprints 1,000,000
// passwords. Prints wall time and peak RSS. Usage: thingsync_plan_bench [bindings] [repeats]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "thingsync/core/password.hpp"
#include "thingsync/core/plan.hpp"

using namespace thingsync::core;

namespace {

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// User plus system CPU seconds of this process: on a shared machine it shows how much of the
// wall time was our own work.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A bijection on 64-bit integers, so distinct counters give distinct device IDs.
std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::string hex(std::uint64_t v, int digits) {
  static const char kHex[] = "0123456789abcdef";
  std::string s(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = kHex[v & 15];
  return s;
}

std::string uuid(std::uint64_t n) {
  const std::uint64_t a = splitmix(n);
  const std::uint64_t b = splitmix(a);
  const std::string h = hex(a, 16) + hex(b, 16);
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-' + h.substr(16, 4) +
         '-' + h.substr(20, 12);
}

DeviceId device(std::uint64_t n) {
  std::string s;
  switch (n % 4) {
    case 0: s = "imei:35" + std::to_string(1'000'000'000'000ULL + n); break;  // 15 digits
    case 1: s = "deveui:" + hex(splitmix(n), 16); break;
    case 2: s = "dvnuuid:" + uuid(n); break;
    default: s = uuid(n); break;
  }
  return *DeviceId::parse(s);
}

Fingerprint fingerprint_of(std::uint64_t n) {
  Fingerprint fp{};
  const std::uint64_t a = splitmix(n ^ 0xF00D);
  for (std::size_t i = 0; i < 8; ++i) fp[i] = static_cast<std::uint8_t>(a >> (8 * i));
  return fp;
}

struct Fleet {
  std::vector<DesiredBinding> desired;
  std::vector<RemoteBinding> observed;
  std::vector<AppliedBinding> applied;
};

// Devices 0..n-1 are desired. 1% of them have no remote binding (creates); 1% of the remote
// ones carry a stale fingerprint (updates) and 0.1% a second, newer binding (duplicates);
// 1% of the remote bindings belong to devices no longer desired (deletes). Files, API pages
// and the state file list devices in orders unrelated to device order, so each list is built
// in its own random order (and its strings allocated in that order, as a loader would).
Fleet make_fleet(std::size_t n, std::mt19937_64& rng) {
  struct Remote {
    std::uint64_t dev;
    std::uint64_t binding;
    std::int64_t created;
    bool recorded, stale;
  };
  std::vector<Remote> remotes;
  remotes.reserve(n + n / 100 + n / 1000);
  std::uint64_t next_binding = 1ULL << 40;
  for (std::size_t i = 0; i < n; ++i) {
    const auto roll = rng() % 1000;
    if (roll < 10) continue;  // create
    remotes.push_back({i, next_binding++, 1'700'000'000'000 + static_cast<std::int64_t>(i), true,
                       roll < 20});
    if (roll == 20) remotes.push_back({i, next_binding++, 1'800'000'000'000, false, false});
  }
  for (std::size_t i = 0; i < n / 100; ++i) {
    remotes.push_back({n + i, next_binding++, 1'600'000'000'000, true, false});
  }

  Fleet f;
  std::vector<std::uint64_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  f.desired.reserve(n);
  for (const auto i : order) {
    f.desired.push_back({device(i), fingerprint_of(i), static_cast<std::uint32_t>(i)});
  }
  std::shuffle(remotes.begin(), remotes.end(), rng);
  f.observed.reserve(remotes.size());
  for (const auto& r : remotes) {
    f.observed.push_back({uuid(r.binding), device(r.dev), r.created, r.created});
  }
  std::shuffle(remotes.begin(), remotes.end(), rng);
  f.applied.reserve(remotes.size());
  for (const auto& r : remotes) {
    if (!r.recorded) continue;
    f.applied.push_back({uuid(r.binding), device(r.dev), fingerprint_of(r.stale ? r.dev + 1 : r.dev)});
  }
  return f;
}

void print_plan(const char* label, const Plan& p, double secs, double cpu) {
  std::printf("%-28s %6.3f s (cpu %.3f s)  creates=%zu updates=%zu deletes=%zu blocked=%zu unchanged=%zu "
              "unmanaged=%zu\n",
              label, secs, cpu, p.creates.size(), p.updates.size(), p.deletes.size(), p.blocked.size(),
              p.unchanged, p.unmanaged);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  std::mt19937_64 rng(2025);

  auto t0 = std::chrono::steady_clock::now();
  const Fleet f = make_fleet(n, rng);
  std::printf("generated %zu desired, %zu observed, %zu applied in %.2f s; peak RSS %.0f MiB\n",
              f.desired.size(), f.observed.size(), f.applied.size(), seconds_since(t0),
              peak_rss_mib());
  // The packed forms make_plan reads (a one-shot command fills them as the list arrives).
  const ObservedList observed(f.observed);
  const AppliedList applied(f.applied);
  const ObservedList none_observed;
  const AppliedList none_applied;
  const double rss_inputs = peak_rss_mib();

  const SyncPolicy policy{true, {DeleteLimit::Kind::kPercent, 5.0}};
  double best = 1e9, best_cpu = 1e9;
  for (int r = 0; r < repeats; ++r) {
    t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    const Plan p = make_fleet_plan(f.desired, observed, applied, policy);
    const double secs = seconds_since(t0);
    const double cpu = cpu_seconds() - c0;
    best = std::min(best, secs);
    best_cpu = std::min(best_cpu, cpu);
    print_plan("make_plan (steady state)", p, secs, cpu);
  }
  std::printf("make_plan best of %d: %.3f s (cpu %.3f s); peak RSS %.0f MiB (%.0f MiB above the "
              "inputs)\n",
              repeats, best, best_cpu, peak_rss_mib(), peak_rss_mib() - rss_inputs);

  {
    t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    const Plan lost = make_fleet_plan(f.desired, observed, none_applied, policy);
    print_plan("make_plan (lost state file)", lost, seconds_since(t0), cpu_seconds() - c0);
  }
  {
    t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    const Plan first = make_fleet_plan(f.desired, none_observed, none_applied, policy);
    print_plan("make_plan (first adoption)", first, seconds_since(t0), cpu_seconds() - c0);
  }
  std::printf("peak RSS after all plans: %.0f MiB\n", peak_rss_mib());

  PasswordDeriver derive(Secret("bench fleet key"));
  Fingerprinter fingerprint("bench salt");
  t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  unsigned checksum = 0;
  std::vector<DeviceId> devices;
  devices.reserve(f.desired.size());
  for (const auto& d : f.desired) devices.push_back(d.device.unpack());
  t0 = std::chrono::steady_clock::now();
  for (const auto& d : devices) {
    const Secret pw = derive.derive(d);
    checksum += static_cast<unsigned char>(pw.reveal()[0]);
  }
  const double derive_secs = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const Secret pw("Abcdefghijklmnopqrstuvw1-Abcdefg");
  for (const auto& d : devices) checksum += fingerprint(d, pw)[0];
  const double fp_secs = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  for (const auto& d : devices) checksum += fingerprint(d, derive.derive(d))[0];
  const double both_secs = seconds_since(t0);
  std::printf("derive %zu passwords: %.3f s; fingerprint: %.3f s; derive+fingerprint: %.3f s "
              "(cpu for all three %.3f s; checksum %u)\n",
              f.desired.size(), derive_secs, fp_secs, both_secs, cpu_seconds() - c0, checksum);
  std::printf("peak RSS: %.0f MiB\n", peak_rss_mib());
  return 0;
}
