// Fuzzes desired-state loading: config::parse_desired_state_file (one file's text), and, on
// the same text, config::load_desired_state with the large-file splitter forced on (the text
// goes through a memfd, so nothing touches the disk).
// Invariants: nothing throws; every diagnostic points inside the input, in order; ok() means
// "no errors"; bindings are sorted, unique, located inside the input, in canonical form and
// point at a valid source; sources are well formed; a file cut into parts loads exactly as
// it parses whole; and the fast YAML path either declines the text or reads it exactly as
// yaml-cpp does (the same tree and sink calls under each streaming rule, and no error).

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "fuzz_support.hpp"
#include "thingsync/config/desired_state.hpp"
#include "yaml_paths.hpp"

namespace {

namespace config = thingsync::config;
namespace core = thingsync::core;
using thingsync::fuzz::check_diagnostics;

std::optional<std::string> env(std::string_view name) {
  if (name == "THINGSYNC_FLEET_KEY_FILE") return "/etc/thingsync/fleet-key";
  if (name == "SECRETS") return "secrets";
  if (name == "EMPTY") return "";
  if (name == "TRICKY") return "${SECRETS}$$";
  return std::nullopt;
}

// The input as a file: load_desired_state reads a path. The name doubles as the file name in
// diagnostics of both calls, so that their results can be compared as they are.
struct MemFile {
  int fd = -1;
  std::string path;
  MemFile() {
    fd = memfd_create("desired-state.yaml", 0);
    if (fd < 0) thingsync::fuzz::fail("memfd_create", "cannot create a memfd", __FILE__, __LINE__);
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  void write(std::string_view text) const {
    bool ok = ftruncate(fd, 0) == 0;
    for (std::size_t off = 0; ok && off < text.size();) {
      const ssize_t n = pwrite(fd, text.data() + off, text.size() - off, static_cast<off_t>(off));
      ok = n > 0;
      off += ok ? static_cast<std::size_t>(n) : 0;
    }
    if (!ok) thingsync::fuzz::fail("pwrite", "cannot write the memfd", __FILE__, __LINE__);
  }
};

void check_place(std::string_view text, std::uint32_t line, std::uint32_t column, bool bytes,
                 const std::string& what) {
  std::string_view l;
  FUZZ_CHECK(line >= 1 && column >= 1 && thingsync::fuzz::nth_line(text, line, l),
             "place outside the input: " + what);
  if (bytes) FUZZ_CHECK(column <= l.size() + 1, "column past the end of its line: " + what);
}

void check_result(const config::LoadResult& r, std::string_view text, const std::string& file) {
  const bool bytes = thingsync::fuzz::yaml_reads_as_utf8(text);
  check_diagnostics(r.diagnostics, text, file, bytes);
  FUZZ_CHECK(r.ok() == !core::has_errors(r.diagnostics), "ok() disagrees with the diagnostics");
  const auto& s = r.state;
  FUZZ_CHECK(s.files.size() == 1 && s.files[0] == file, "files is not the one file");

  for (std::size_t i = 0; i < s.sources.size(); ++i) {
    const config::PasswordSource& src = s.sources[i];
    const std::string what = "source " + std::to_string(i) + " (" +
                             std::string(config::to_string(src.kind)) + " '" + src.ref + "')";
    FUZZ_CHECK(src.file == 0, what);
    check_place(text, src.line, src.column, bytes, what);
    switch (src.kind) {
      case config::PasswordSource::Kind::kValue:
        FUZZ_CHECK(src.ref.empty(), what);
        break;
      case config::PasswordSource::Kind::kEnv:
        FUZZ_CHECK(!src.ref.empty() && src.value.empty(), what);
        for (char c : src.ref) {
          FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                         c == '_',
                     "an invalid environment variable name: " + what);
        }
        break;
      case config::PasswordSource::Kind::kDerive:
      case config::PasswordSource::Kind::kFile:
        FUZZ_CHECK(!src.ref.empty() && src.value.empty(), what);
        break;
    }
  }

  for (std::size_t i = 0; i < s.bindings.size(); ++i) {
    const config::DesiredEntry& e = s.bindings[i];
    const std::string what = "binding " + e.device.canonical() + " at " + s.location(e);
    FUZZ_CHECK(e.file == 0 && e.source < s.sources.size(), what);
    check_place(text, e.line, e.column, bytes, what);
    const auto again = core::DeviceId::parse(e.device.canonical());
    FUZZ_CHECK(again && e.device.holds(*again), "canonical form does not re-parse: " + what);
    if (i > 0) {
      // PackedDevice's own < is the order of its bytes; bindings are in canonical order.
      FUZZ_CHECK(canonical_order(s.bindings.device(i - 1), e.device) < 0,
                 "bindings not sorted or not unique: " + what);
    }
  }
}

std::string describe(const core::Diagnostics& d) {
  std::string out;
  for (const auto& x : d) out += "\n  " + x.to_string();
  return out;
}

std::string describe(const config::PasswordSource& s) {
  return std::string(config::to_string(s.kind)) + " '" + s.ref + "' at " + std::to_string(s.line) +
         ":" + std::to_string(s.column);
}

std::string describe(const config::DesiredState& state, const config::DesiredEntry& e) {
  return e.device.canonical() + " at " + state.location(e) + " source " + std::to_string(e.source) +
         (e.source < state.sources.size() ? " (" + describe(state.sources[e.source]) + ")" : "");
}

bool same_source(const config::PasswordSource& a, const config::PasswordSource& b) {
  return std::tie(a.kind, a.ref, a.file, a.line, a.column) ==
             std::tie(b.kind, b.ref, b.file, b.line, b.column) &&
         a.value == b.value;
}

// Cutting a file into parts must not change what it means: it is accepted or rejected alike,
// and when accepted it says the same, warnings included. The errors of a rejected file may
// differ: yaml-cpp accepts some truncated structures at the end of its input (an implicit key
// without ':', a plain scalar that would have continued), so a part can fail differently.
void check_same(const config::LoadResult& whole, const config::LoadResult& cut) {
  const auto& d1 = whole.diagnostics;
  const auto& d2 = cut.diagnostics;
  FUZZ_CHECK(whole.ok() == cut.ok(), std::string("a split load is ") +
                                         (cut.ok() ? "accepted" : "rejected") + ", whole " +
                                         (whole.ok() ? "accepted" : "rejected") +
                                         "; whole:" + describe(d1) + "\nsplit:" + describe(d2));
  if (!whole.ok()) return;
  bool same_diags = d1.size() == d2.size();
  for (std::size_t i = 0; same_diags && i < d1.size(); ++i) {
    same_diags = std::tie(d1[i].file, d1[i].line, d1[i].column, d1[i].severity, d1[i].message) ==
                 std::tie(d2[i].file, d2[i].line, d2[i].column, d2[i].severity, d2[i].message);
  }
  FUZZ_CHECK(same_diags,
             "split load diagnostics differ; whole:" + describe(d1) + "\nsplit:" + describe(d2));

  const auto& b1 = whole.state.bindings;
  const auto& b2 = cut.state.bindings;
  FUZZ_CHECK(b1.size() == b2.size(), "split load has " + std::to_string(b2.size()) +
                                         " bindings, whole " + std::to_string(b1.size()));
  for (std::size_t i = 0; i < b1.size(); ++i) {
    const config::DesiredEntry x = b1[i];  // entries come by value
    const config::DesiredEntry y = b2[i];
    FUZZ_CHECK(std::tie(x.device, x.source, x.file, x.line, x.column) ==
                   std::tie(y.device, y.source, y.file, y.line, y.column),
               "split load differs at a binding; whole: " + describe(whole.state, x) +
                   "; split: " + describe(cut.state, y));
  }
  const auto& s1 = whole.state.sources;
  const auto& s2 = cut.state.sources;
  FUZZ_CHECK(s1.size() == s2.size(), "split load has " + std::to_string(s2.size()) +
                                         " sources, whole " + std::to_string(s1.size()));
  for (std::size_t i = 0; i < s1.size(); ++i) {
    FUZZ_CHECK(same_source(s1[i], s2[i]), "split load differs at source " + std::to_string(i) +
                                              "; whole: " + describe(s1[i]) +
                                              "; split: " + describe(s2[i]));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const MemFile file;
  const std::string_view text = thingsync::fuzz::as_text(data, size);

  const auto yaml = thingsync::testsupport::compare_yaml_paths(text);
  FUZZ_CHECK(yaml.difference.empty(),
             "the fast YAML path and yaml-cpp disagree; " + yaml.difference);

  const config::LoadResult whole = config::parse_desired_state_file(text, file.path, env);
  check_result(whole, text, file.path);

  // The same text through the loader: one thread, parts of one byte (at most 4 of them).
  file.write(text);
  config::LoadOptions options;
  options.env = env;
  options.threads = 1;
  options.split_bytes = 1;
  const config::LoadResult cut = config::load_desired_state(file.path, options);
  check_same(whole, cut);
  return 0;
}
