#include "thingsync/obs/log.hpp"

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace thingsync::obs {
namespace {

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        msg.time.time_since_epoch())
                        .count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[32];
    const auto n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string stamp(ts, n);
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
    stamp += frac;

    nlohmann::json line{
        {"ts", std::move(stamp)},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                              spdlog::level::to_string_view(msg.level).size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    // Invalid UTF-8 in a message must not throw out of a log call.
    const auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

struct Registry {
  std::mutex mu;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  LogOptions options;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;

  void apply(spdlog::logger& l) {
    l.sinks().assign(1, sink);
    l.set_level(options.level);
    if (options.format == LogFormat::kJson) {
      l.set_formatter(make_json_formatter());
    } else {
      l.set_formatter(std::make_unique<spdlog::pattern_formatter>(
          "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%n] %v"));
    }
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view s) {
  if (s == "trace") return spdlog::level::trace;
  if (s == "debug") return spdlog::level::debug;
  if (s == "info") return spdlog::level::info;
  if (s == "warn") return spdlog::level::warn;
  if (s == "error") return spdlog::level::err;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view s) {
  if (s == "text") return LogFormat::kText;
  if (s == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<JsonFormatter>();
}

void set_sink(spdlog::sink_ptr sink, const LogOptions& options) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.sink = std::move(sink);
  r.options = options;
  for (auto& [name, l] : r.loggers) r.apply(*l);
}

void setup_logging(const LogOptions& options) {
  set_sink(std::make_shared<spdlog::sinks::stderr_sink_mt>(), options);
}

std::shared_ptr<spdlog::logger> logger(std::string_view module) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  if (auto it = r.loggers.find(module); it != r.loggers.end()) return it->second;
  auto l = std::make_shared<spdlog::logger>(std::string(module));
  r.apply(*l);
  r.loggers.emplace(std::string(module), l);
  return l;
}

}  // namespace thingsync::obs
