#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "thingsync/core/diagnostic.hpp"
#include "thingsync/obs/secret_format.hpp"

namespace thingsync::obs {

enum class LogFormat { kText, kJson };

struct LogOptions {
  spdlog::level::level_enum level = spdlog::level::info;
  LogFormat format = LogFormat::kText;
};

/// "trace|debug|info|warn|error" → level; nullopt for anything else.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view s);
/// "text|json" → format; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view s);

/// Points every module logger at stderr with the given level and format. Call once from main;
/// loggers created before or after follow it. Not thread-safe against concurrent logger().
void setup_logging(const LogOptions& options);

/// Routes every module logger to `sink` instead (tests capture logs this way).
void set_sink(spdlog::sink_ptr sink, const LogOptions& options);

/// The logger of one module ("api", "config", "reconcile", "sim", ...), created on first use.
/// Loggers are thread-safe (spdlog *_mt sinks).
std::shared_ptr<spdlog::logger> logger(std::string_view module);

/// A formatter that writes one JSON object per line:
/// {"ts":"2026-01-01T00:00:00.000Z","level":"info","logger":"api","msg":"...", fields...}
/// Each key=value (or key="text") of the message becomes a field; the other words are "msg".
std::unique_ptr<spdlog::formatter> make_json_formatter();

/// On stderr (setup_logging), one live status line kept below the log lines ("" removes it):
/// a progress bar on a terminal. Every log line clears it first and redraws it after.
void set_status_line(std::string status);

/// A finding about user input ("file:line:column: error: message") on stderr, as a log line
/// of its own: under --log-format json one JSON object with file, line and column; under
/// systemd with its journal priority.
void report_diagnostic(const core::Diagnostic& diagnostic);

}  // namespace thingsync::obs
