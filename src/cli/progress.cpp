#include "cli/progress.hpp"

#include <cstdio>
#include <string>

#include "thingsync/obs/log.hpp"

namespace thingsync::cli {

ProgressReport::ProgressReport(bool terminal) : terminal_(terminal), start_(Clock::now()) {}

ProgressReport::~ProgressReport() {
  if (terminal_) obs::set_status_line("");
}

void ProgressReport::update(const engine::Progress& p) {
  const auto now = Clock::now();
  const auto every = terminal_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10'000);
  if (now - last_ < every) return;
  if (last_ == Clock::time_point{} && !terminal_ && now - start_ < every) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(p.done) / secs : 0;
  const double eta = rate > 0 ? static_cast<double>(p.total - p.done) / rate : 0;
  if (terminal_) {
    char line[160];
    std::snprintf(line, sizeof line, "  %zu/%zu devices  %.1f/s  ETA %.0fs  %zu failed", p.done,
                  p.total, rate, eta, p.failed);
    obs::set_status_line(line);
    return;
  }
  obs::logger("main")->info("progress done={} total={} rate={:.1f} eta_s={:.0f} failed={}", p.done,
                            p.total, rate, eta, p.failed);
}

}  // namespace thingsync::cli
