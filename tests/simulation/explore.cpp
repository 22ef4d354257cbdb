// thingsync-simulate: plays seeded histories of the simulated world (docs/reliability.md,
// "Simulation"). Run through scripts/simulate.sh.
//
//   thingsync-simulate --seconds N [--from SEED]   new seeds until N seconds have passed
//   thingsync-simulate --count N [--from SEED]     N seeds
//   thingsync-simulate --seed SEED                 one seed, its story printed
//   thingsync-simulate --replay CODE               one encoded (shrunk) history, its story printed
//   --no-shrink                                    failures are printed as found
//   --first                                        stop at the first failure
//   --offset-cursors                               the API pages by offset (a binding deleted
//                                                  behind the cursor is skipped)
//
// Exit status: 0 when every history held, 1 when one failed, 64 on a usage error.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <string_view>

#include "history.hpp"
#include "shrink.hpp"
#include "world.hpp"

using namespace thingsync::simulation;

namespace {

int usage() {
  std::cerr << "usage: thingsync-simulate (--seconds N | --count N) [--from SEED] [--no-shrink] [--first]\n"
               "       [--offset-cursors]\n"
               "       thingsync-simulate --seed SEED | --replay CODE\n";
  return 64;
}

int replay(const History& h) {
  const auto o = play(h);
  std::cout << render(h, o);
  std::cout << (o.violation ? "FAILED: " + o.violation->invariant : std::string("held")) << " ("
            << o.requests << " requests)\n";
  return o.violation ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0;
  std::uint64_t count = 0;
  std::uint64_t from = 0;
  bool have_from = false;
  bool do_shrink = true;
  bool first_only = false;
  bool offset_cursors = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--no-shrink") {
      do_shrink = false;
    } else if (a == "--offset-cursors") {
      offset_cursors = true;
    } else if (a == "--first") {
      first_only = true;
    } else if (a == "--seconds" && has_value) {
      seconds = std::strtod(argv[++i], nullptr);
    } else if (a == "--count" && has_value) {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--from" && has_value) {
      from = std::strtoull(argv[++i], nullptr, 10);
      have_from = true;
    } else if (a == "--seed" && has_value) {
      auto h = generate(std::strtoull(argv[++i], nullptr, 10));
      h.setup.offset_cursor = offset_cursors;
      return replay(h);
    } else if (a == "--replay" && has_value) {
      const auto h = decode(argv[++i]);
      if (!h) return usage();
      return replay(*h);
    } else {
      return usage();
    }
  }
  if (seconds <= 0 && count == 0) return usage();
  if (!have_from) {
    // New seeds each run, far from the fixed ones of CI (1..2000).
    from = (std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)) >> 8;
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::uint64_t played = 0, failed = 0, requests = 0, steps = 0;
  std::map<std::string, std::uint64_t> by_invariant;
  std::cout << "exploring from seed " << from << "\n" << std::flush;
  for (std::uint64_t seed = from;; ++seed) {
    if (count ? played >= count : elapsed() >= seconds) break;
    auto h = generate(seed);
    h.setup.offset_cursor = offset_cursors;
    const auto o = play(h);
    ++played;
    requests += o.requests;
    steps += h.steps.size();
    if (!o.violation) continue;
    ++failed;
    ++by_invariant[o.violation->invariant];
    std::cout << "FAILED seed " << seed << ": " << o.violation->invariant << ": "
              << o.violation->detail << "\n";
    if (do_shrink && by_invariant[o.violation->invariant] <= 3) {
      const auto s = shrink(h, o);
      std::cout << "shrunk from " << h.steps.size() << " steps and " << fault_count(h)
                << " faults to " << s.history.steps.size() << " steps and "
                << fault_count(s.history) << " faults in " << s.plays << " plays:\n"
                << render(s.history, s.outcome) << std::flush;
    }
    if (first_only) break;
  }
  const double t = elapsed();
  std::cout << played << " histories (" << steps << " steps, " << requests << " requests) in "
            << t << " s: " << (t > 0 ? static_cast<double>(played) / t : 0.0)
            << " histories/s; " << failed << " failed\n";
  for (const auto& [inv, n] : by_invariant) std::cout << "  " << n << "  " << inv << "\n";
  return failed ? 1 : 0;
}
