// thingsync history: the change journal (state.journalPath), filtered by device and time.
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/duration.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/engine/change_journal.hpp"
#include "thingsync/engine/plan_render.hpp"

namespace thingsync::cli {
namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --since: an ISO 8601 time ("2025-05-01T12:00:00Z"), a date ("2025-05-01", UTC midnight),
// or a duration back from now: "90m", "24h", "7d", "1d12h".
std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms) {
  if (auto t = core::parse_iso8601_ms(text)) return t;
  if (text.size() == 10) {
    if (auto t = core::parse_iso8601_ms(text + "T00:00:00Z")) return t;
  }
  std::int64_t days = 0;
  std::string_view rest = text;
  if (const auto d = rest.find('d'); d != std::string_view::npos) {
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + d, days);
    if (ec != std::errc() || end != rest.data() + d || d == 0 || days > 100'000) {
      return std::nullopt;
    }
    rest.remove_prefix(d + 1);
  }
  std::chrono::milliseconds back = std::chrono::hours(24) * days;
  if (!rest.empty() || days == 0) {
    const auto more = core::parse_duration(rest);
    if (!more) return std::nullopt;
    back += *more;
  }
  return now_ms - back.count();
}

std::string stamp(const engine::WriteStamp& s) {
  std::string out = s.modified_at_ms ? core::format_iso8601_ms(s.modified_at_ms) : "?";
  if (!s.modified_by.empty()) out += " by " + engine::printable(s.modified_by);
  return out;
}

// One readable line a write.
std::string text_line(const engine::WriteRecord& r) {
  std::string out = core::format_iso8601_ms(r.time_ms);
  out += "  ";
  out += obs::to_string(r.action);
  out += "  " + r.device + "  " + std::string(engine::to_string(r.result));
  if (r.status != 0) out += " " + std::to_string(r.status);
  if (!r.binding_id.empty()) out += "  id=" + r.binding_id;
  if (!r.reason.empty()) out += "  (" + r.reason + ")";
  if (!r.error.empty()) out += "  error: " + engine::printable(r.error);
  if (r.before) out += "  before: " + stamp(*r.before);
  if (r.after) out += "  after: " + stamp(*r.after);
  if (!r.desired_commit.empty()) out += "  commit " + r.desired_commit.substr(0, 12);
  return out;
}

// Unset variables stay "${NAME}": history reads one path of the config, and an operator's
// shell lacks the service's $CREDENTIALS_DIRECTORY that the credential paths name.
config::EnvLookup lenient_env() {
  return [env = config::process_env()](std::string_view name) -> std::optional<std::string> {
    if (auto v = env(name)) return v;
    return "${" + std::string(name) + "}";
  };
}

}  // namespace

int run_history(const CommandOptions& opts) {
  std::optional<core::DeviceId> device;
  if (!opts.device.empty()) {
    device = core::DeviceId::parse(opts.device);
    if (!device) {
      std::fprintf(stderr, "history: --device '%s' is not a device ID\n",
                   opts.device.substr(0, 100).c_str());
      return kExitUsage;
    }
  }
  std::optional<std::int64_t> since;
  if (!opts.since.empty()) {
    since = parse_since(opts.since, wall_ms());
    if (!since) {
      std::fprintf(stderr,
                   "history: --since '%s' is neither a time (2025-05-01T12:00:00Z, 2025-05-01) "
                   "nor a duration back from now (90m, 24h, 7d)\n",
                   opts.since.substr(0, 100).c_str());
      return kExitUsage;
    }
  }
  auto cfg = config::load_config_file(opts.config_file, lenient_env());
  if (!cfg) {
    print_diagnostics(cfg.error());
    return kExitError;
  }
  const auto id = std::string(engine::kWriteMessageId);
  if (!cfg->journal_path) {
    std::fprintf(stderr,
                 "history: %s sets no state.journalPath, so the change journal goes to journald "
                 "only (journalctl MESSAGE_ID=%s). Set state.journalPath to keep a file that "
                 "history reads\n",
                 opts.config_file.c_str(), id.c_str());
    return kExitError;
  }
  const std::filesystem::path path = *cfg->journal_path;
  // The newest rotation first (logrotate's "path.1"), then the file written now.
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  const std::filesystem::path rotated = path.string() + ".1";
  if (std::filesystem::is_regular_file(rotated, ec)) files.push_back(rotated);
  // Just rotated, the file is made again at the next write: the rotation alone is no error.
  if (files.empty() || std::filesystem::exists(path, ec)) files.push_back(path);
  std::size_t unreadable = 0;
  for (const auto& file : files) {
    std::ifstream in(file);
    if (!in) {
      std::fprintf(stderr,
                   "history: cannot read the change journal %s (state.journalPath): %s. It is "
                   "made at the first write to the API after state.journalPath is set\n",
                   file.c_str(), std::strerror(errno));
      return kExitError;
    }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto r = engine::parse_json_line(line);
      if (!r) {
        ++unreadable;  // a torn last line, or not a record
        continue;
      }
      if (since && r->time_ms < *since) continue;
      if (device && r->device != device->canonical()) continue;
      const std::string out = opts.output == "json" ? line : text_line(*r);
      std::printf("%s\n", out.c_str());
    }
  }
  if (unreadable > 0) {
    std::fprintf(stderr, "history: %zu lines of %s are not change records; skipped\n", unreadable,
                 path.c_str());
  }
  return kExitOk;
}

}  // namespace thingsync::cli
