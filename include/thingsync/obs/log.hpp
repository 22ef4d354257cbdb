#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

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
/// {"ts":"2026-01-01T00:00:00.000Z","level":"info","logger":"api","msg":"..."}
std::unique_ptr<spdlog::formatter> make_json_formatter();

}  // namespace thingsync::obs
