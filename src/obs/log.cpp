#include "thingsync/obs/log.hpp"

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace thingsync::obs {
namespace {

std::string iso_stamp(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[40];
  const auto n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(ts + n, sizeof ts - n, ".%03dZ", static_cast<int>(ms % 1000));
  return ts;
}

bool is_key(std::string_view k) {
  if (k.empty() || k.size() > 40 || !(std::islower(static_cast<unsigned char>(k[0])) || k[0] == '_')) {
    return false;
  }
  return std::all_of(k.begin(), k.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_';
  });
}

// A field's text as JSON: a whole number stays a number, anything else a string.
nlohmann::json field_value(std::string v) {
  if (!v.empty() && v.size() < 16 &&
      std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(),
                  [](char c) { return c >= '0' && c <= '9'; }) &&
      v != "-") {
    return std::stoll(v);
  }
  return v;
}

void text_and_fields(std::string_view payload, std::string& text, nlohmann::json& line) {
  // The house style of a log call is "what happened key=value key=\"text\"" (STYLE of the
  // project, docs/reference.md "Logs"): the words are the message, each key=value a field.
  std::size_t i = 0;
  while (i < payload.size()) {
    while (i < payload.size() && payload[i] == ' ') ++i;
    if (i >= payload.size()) break;
    std::size_t end = payload.find(' ', i);
    if (end == std::string_view::npos) end = payload.size();
    const std::string_view token = payload.substr(i, end - i);
    const std::size_t eq = token.find('=');
    if (eq != std::string_view::npos && is_key(token.substr(0, eq))) {
      const std::string key(token.substr(0, eq));
      std::string value;
      std::size_t next = end;
      if (eq + 1 < token.size() && token[eq + 1] == '"') {
        // A quoted value runs to the quote that ends a token (or the payload).
        const std::size_t open = i + eq + 2;
        std::size_t close = open;
        for (;;) {
          close = payload.find('"', close);
          if (close == std::string_view::npos) break;
          if (close + 1 == payload.size() || payload[close + 1] == ' ') break;
          ++close;
        }
        if (close == std::string_view::npos) close = payload.size();
        value = std::string(payload.substr(open, close - open));
        next = std::min(payload.size(), close + 1);
      } else {
        value = std::string(token.substr(eq + 1));
      }
      static constexpr std::string_view kReserved[] = {"ts", "level", "logger", "msg"};
      const bool reserved =
          std::find(std::begin(kReserved), std::end(kReserved), key) != std::end(kReserved);
      line[reserved ? "field_" + key : key] = field_value(std::move(value));
      i = next;
      continue;
    }
    if (!text.empty()) text += ' ';
    text.append(token);
    i = end;
  }
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json line{
        {"ts", iso_stamp(msg.time)},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                              spdlog::level::to_string_view(msg.level).size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
    };
    std::string text;
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    // A message of several lines is not of that style: kept whole.
    if (payload.find('\n') == std::string_view::npos) {
      text_and_fields(payload, text, line);
    } else {
      text = std::string(payload);
    }
    line["msg"] = std::move(text);
    // Invalid UTF-8 in a message must not throw out of a log call.
    const auto out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(out.data(), out.data() + out.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// sd-daemon(3) priorities, for text lines that journald reads from stderr.
int journal_priority(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::critical: return 2;
    case spdlog::level::err: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::info: return 6;
    default: return 7;
  }
}

// True when stderr is the stream systemd connected to the journal (JOURNAL_STREAM names its
// device and inode), so that a "<N>" prefix sets each line's priority.
bool stderr_is_journal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

class JournalPrefixFormatter final : public spdlog::formatter {
 public:
  explicit JournalPrefixFormatter(std::unique_ptr<spdlog::formatter> inner)
      : inner_(std::move(inner)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string prefix = "<" + std::to_string(journal_priority(msg.level)) + ">";
    dest.append(prefix.data(), prefix.data() + prefix.size());
    inner_->format(msg, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JournalPrefixFormatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

// stderr, with one live status line kept below the log lines on a terminal (cargo, apt): each
// log line first clears it, then it is drawn again, so no line is ever cut by it.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_status(std::string status) {
    std::lock_guard lock(mutex_);
    status_ = std::move(status);
    draw();
  }
  void write_raw(std::string_view text) {
    std::lock_guard lock(mutex_);
    clear();
    std::fwrite(text.data(), 1, text.size(), stderr);
    draw();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    clear();
    std::fwrite(buf.data(), 1, buf.size(), stderr);
    draw();
  }
  void flush_() override { std::fflush(stderr); }

 private:
  void clear() {
    if (shown_) std::fputs("\r\x1b[K", stderr);
    shown_ = false;
  }
  void draw() {
    clear();
    if (status_.empty()) return;
    std::fputs(status_.c_str(), stderr);
    std::fflush(stderr);
    shown_ = true;
  }
  std::string status_;
  bool shown_ = false;
};

struct Registry {
  std::mutex mu;
  std::shared_ptr<StderrSink> stderr_sink = std::make_shared<StderrSink>();
  spdlog::sink_ptr sink = stderr_sink;
  bool to_stderr = true;
  bool journal = false;
  LogOptions options;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;

  void apply(spdlog::logger& l) {
    l.sinks().assign(1, sink);
    l.set_level(options.level);
    std::unique_ptr<spdlog::formatter> f;
    if (options.format == LogFormat::kJson) {
      f = make_json_formatter();
    } else {
      f = std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z %l [%n] %v");
      if (journal) f = std::make_unique<JournalPrefixFormatter>(std::move(f));
    }
    l.set_formatter(std::move(f));
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
  r.to_stderr = sink == r.stderr_sink;
  r.journal = r.to_stderr && stderr_is_journal();
  r.sink = std::move(sink);
  r.options = options;
  for (auto& [name, l] : r.loggers) r.apply(*l);
}

void setup_logging(const LogOptions& options) { set_sink(registry().stderr_sink, options); }

void set_status_line(std::string status) {
  auto& r = registry();
  r.stderr_sink->set_status(std::move(status));
}

void report_diagnostic(const core::Diagnostic& d) {
  auto& r = registry();
  std::string out;
  if (r.options.format == LogFormat::kJson) {
    nlohmann::json line{{"ts", iso_stamp(std::chrono::system_clock::now())},
                        {"level", d.severity == core::Severity::kError ? "error" : "warning"},
                        {"logger", "input"},
                        {"file", d.file},
                        {"msg", d.message}};
    if (d.line) line["line"] = d.line;
    if (d.column) line["column"] = d.column;
    out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    if (r.journal) out = d.severity == core::Severity::kError ? "<3>" : "<4>";
    out += d.to_string();
  }
  out += '\n';
  if (r.to_stderr) {
    r.stderr_sink->write_raw(out);
  } else {
    // Tests route logs elsewhere: the diagnostic goes where the log lines go.
    logger("input")->log(d.severity == core::Severity::kError ? spdlog::level::err
                                                            : spdlog::level::warn,
                         "{}", d.to_string());
  }
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
