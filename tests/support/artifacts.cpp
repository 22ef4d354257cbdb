#include "artifacts.hpp"

#include <errno.h>  // program_invocation_short_name
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/password_resolver.hpp"

namespace thingsync::testsupport::audit {
namespace fs = std::filesystem;

namespace {

// What this test process has recorded into one artifacts directory (a test may point
// THINGSYNC_TEST_ARTIFACTS elsewhere for a while: tests/audit does).
struct State {
  fs::path dir;
  unsigned seq = 0;
  std::unordered_set<std::string> secrets;   // kind + '\t' + value
  std::unordered_set<std::size_t> recorded;  // hashes of recorded contents
  std::unordered_set<std::size_t> appended;  // hashes of name + appended content
};

struct Recorder {
  std::mutex mu;
  State s;
};

Recorder& recorder() {
  static Recorder r;
  return r;
}

std::string run_prefix() {
  return std::string(program_invocation_short_name) + "." + std::to_string(::getpid());
}

std::string sanitize(std::string name) {
  for (auto& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return name;
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const fs::path& file, const std::string& text, std::ios::openmode mode) {
  std::ofstream out(file, std::ios::binary | mode);
  out << text;
  if (!out) throw std::runtime_error("cannot write the test artifact " + file.string());
}

// This process's command line, so that a finding can name the test case (ctest passes it).
std::string command_line() {
  std::string raw = read_all("/proc/self/cmdline");
  std::string out;
  std::size_t start = 0;
  while (start < raw.size()) {
    auto end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    const auto arg = raw.substr(start, end - start);
    if (!out.empty()) out += ' ';
    out += arg.find_first_of(" \t\"") == std::string::npos ? arg : "\"" + arg + "\"";
    start = end + 1;
  }
  return out + "\n";
}

// The recorder for the current artifacts directory, locked by `lock`; nullptr: nothing is
// recorded. A directory used for the first time by this process gets its layout and the
// process's command line.
State* begin(std::unique_lock<std::mutex>& lock) {
  const auto dir = artifacts_dir();
  if (!dir) return nullptr;
  auto& r = recorder();
  lock = std::unique_lock(r.mu);
  if (r.s.dir != *dir) {
    r.s = State{};
    r.s.dir = *dir;
    fs::create_directories(*dir / "files");
    fs::create_directories(*dir / "runs");
    write_all(*dir / "runs" / (run_prefix() + ".cmdline"), command_line(), std::ios::trunc);
  }
  return &r.s;
}

fs::path next_file(State& s, const std::string& name) {
  return s.dir / "files" / (run_prefix() + "." + std::to_string(++s.seq) + "." + sanitize(name));
}

std::string trim(std::string_view v) {
  const auto b = v.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = v.find_last_not_of(" \t\r");
  return std::string(v.substr(b, e - b + 1));
}

std::string lower(std::string v) {
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

// The scalar after "value:" on one YAML line, quoted or plain.
std::optional<std::string> yaml_value_scalar(std::string_view line) {
  auto t = trim(line);
  if (t.rfind("- ", 0) == 0) t = trim(t.substr(2));
  if (t.rfind("value:", 0) != 0) return std::nullopt;
  const auto v = trim(t.substr(6));
  if (v.empty()) return std::nullopt;
  std::string out;
  if (v[0] == '"') {
    for (std::size_t i = 1; i < v.size() && v[i] != '"'; ++i) {
      if (v[i] == '\\' && i + 1 < v.size()) ++i;
      out += v[i];
    }
  } else if (v[0] == '\'') {
    for (std::size_t i = 1; i < v.size(); ++i) {
      if (v[i] == '\'') {
        if (i + 1 < v.size() && v[i + 1] == '\'') {
          out += '\'';
          ++i;
          continue;
        }
        break;
      }
      out += v[i];
    }
  } else {
    out = trim(v.substr(0, std::min(v.find(" #"), v.size())));
  }
  return out;
}

// The passwords a desired-state file makes thingsync send, as thingsync's own loader and
// resolver give them (derived from the key file it names, read from a file or the
// environment). A file that does not load, or a source that does not resolve, gives none.
std::vector<std::string> desired_passwords(const fs::path& file, const std::string& text) {
  std::vector<std::string> out;
  const auto loaded = config::parse_desired_state_file(text, file.string(), config::process_env());
  if (loaded.state.bindings.empty()) return out;
  config::PasswordResolver resolver(loaded.state);
  for (const auto& entry : loaded.state.bindings) {
    if (auto password = resolver.resolve(entry)) out.push_back(password->reveal());
  }
  return out;
}

}  // namespace

std::optional<fs::path> artifacts_dir() {
  const char* v = std::getenv("THINGSYNC_TEST_ARTIFACTS");
  if (v == nullptr || *v == '\0') return std::nullopt;
  return fs::path(v);
}

void register_secrets(const std::string& kind, const std::vector<std::string>& values) {
  std::unique_lock<std::mutex> lock;
  State* s = begin(lock);
  if (s == nullptr) return;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string lines;
  for (const auto& v : values) {
    if (v.empty() || !s->secrets.insert(kind + '\t' + v).second) continue;
    for (const char c : kind) lines += (c == '\t' || c == '\n') ? ' ' : c;
    lines += '\t';
    for (const unsigned char c : v) {
      lines += kHex[c >> 4];
      lines += kHex[c & 15];
    }
    lines += '\n';
  }
  if (lines.empty()) return;
  // Several test processes append at once: one write under an exclusive lock per batch.
  const auto file = s->dir / "secrets";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot open " + file.string());
  ::flock(fd, LOCK_EX);
  std::size_t off = 0;
  while (off < lines.size()) {
    const auto n = ::write(fd, lines.data() + off, lines.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  if (off != lines.size()) throw std::runtime_error("cannot write " + file.string());
}

void register_secret(const std::string& kind, const std::string& value) {
  register_secrets(kind, {value});
}

void record(const std::string& name, const std::string& content) {
  std::unique_lock<std::mutex> lock;
  State* s = begin(lock);
  if (s == nullptr || content.empty()) return;
  if (!s->recorded.insert(std::hash<std::string>{}(content)).second) return;
  write_all(next_file(*s, name), content, std::ios::trunc);
}

void record_append(const std::string& name, const std::string& content) {
  std::unique_lock<std::mutex> lock;
  State* s = begin(lock);
  if (s == nullptr || content.empty()) return;
  if (!s->appended.insert(std::hash<std::string>{}(name + '\0' + content)).second) return;
  write_all(s->dir / "files" / (run_prefix() + "." + sanitize(name)), content + "\n",
            std::ios::app);
}

void record_file(const fs::path& file, const std::string& name) {
  if (!artifacts_dir()) return;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return;
  record(name, read_all(file));
}

std::optional<CapturePaths> capture_paths(const std::string& program) {
  std::unique_lock<std::mutex> lock;
  State* s = begin(lock);
  if (s == nullptr) return std::nullopt;
  const auto base = next_file(*s, fs::path(program).filename().string());
  return CapturePaths{base.string() + ".stdout", base.string() + ".stderr"};
}

void register_file_secrets(const fs::path& file, const std::string& text) {
  if (!artifacts_dir()) return;
  const auto name = lower(file.filename().string());
  std::vector<std::string> values;
  std::istringstream lines(text);
  std::string line;
  // Desired-state YAML, also under a temporary name ("fleet.yaml.new", renamed in place).
  if (name.find(".yaml") != std::string::npos || name.find(".yml") != std::string::npos) {
    // Every literal, also one the policy refuses (thingsync must not echo that either).
    while (std::getline(lines, line)) {
      if (auto v = yaml_value_scalar(line)) values.push_back(std::move(*v));
    }
    register_secrets("literal password (YAML value)", values);
    register_secrets("password of the desired state", desired_passwords(file, text));
    return;
  }
  static const char* const kWords[] = {"key", "token", "secret", "pass", "cred"};
  if (std::none_of(std::begin(kWords), std::end(kWords),
                   [&](const char* w) { return name.find(w) != std::string::npos; })) {
    return;
  }
  // The whole content (one trailing newline aside, as thingsync reads such files) and, for
  // multi-line files such as PEM keys, each line but the armour.
  std::string whole = text;
  if (!whole.empty() && whole.back() == '\n') whole.pop_back();
  if (!whole.empty() && whole.back() == '\r') whole.pop_back();
  values.push_back(whole);
  while (std::getline(lines, line)) {
    line = trim(line);
    if (line.size() >= 8 && line.rfind("-----", 0) != 0) values.push_back(line);
  }
  register_secrets("content of " + file.filename().string(), values);
}

void record_thingsync_outputs(const fs::path& dir, const std::string& name) {
  if (!artifacts_dir()) return;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const auto& p = it->path();
    std::ifstream in(p, std::ios::binary);
    char head[40] = {};
    in.read(head, sizeof head);
    const std::string_view h(head, static_cast<std::size_t>(in.gcount()));
    const bool output = h.find("\"format\":\"thingsync-state\"") != std::string_view::npos ||
                        h.rfind("# Exported by thingsync", 0) == 0 ||
                        p.extension() == ".journal" || p.extension() == ".jsonl";
    if (output) record_file(p, name + "." + fs::relative(p, dir, ec).string());
  }
}

}  // namespace thingsync::testsupport::audit
