#pragma once

// Shared by the fuzz targets: an invariant check that survives NDEBUG, and the checks every
// diagnostics-producing parser must pass.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>

#include "thingsync/core/diagnostic.hpp"

/// Aborts (a libFuzzer crash, with the input saved) when `cond` is false. `what` is printed.
#define FUZZ_CHECK(cond, what)                                             \
  do {                                                                     \
    if (!(cond)) ::thingsync::fuzz::fail(#cond, what, __FILE__, __LINE__); \
  } while (false)

namespace thingsync::fuzz {

[[noreturn]] inline void fail(const char* cond, std::string_view what, const char* file, int line) {
  std::fprintf(stderr, "\n==fuzz== invariant violated at %s:%d: %s\n==fuzz== %.*s\n", file, line,
               cond, static_cast<int>(what.size()), what.data());
  std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The `line`th line of `text` (1-based, split at '\n' as yaml-cpp counts lines), or nullopt.
inline bool nth_line(std::string_view text, std::uint32_t line, std::string_view& out) {
  std::size_t pos = 0;
  for (std::uint32_t l = 1; l < line; ++l) {
    pos = text.find('\n', pos);
    if (pos == std::string_view::npos) return false;
    ++pos;
  }
  const std::size_t end = text.find('\n', pos);
  out = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
  return true;
}

/// Every diagnostic names `file`, says something, and points at a place inside `text`: a line
/// that exists and a column on it (at most one past its last byte: "end of line"), or 0:0 for
/// the whole file. The list is sorted by place, as the parsers promise.
/// `byte_columns`: false when yaml-cpp decoded the text from UTF-16/32 (columns then count
/// decoded UTF-8 bytes, not input bytes), which leaves only the line to check.
inline void check_diagnostics(const core::Diagnostics& diags, std::string_view text,
                              std::string_view file, bool byte_columns) {
  for (std::size_t i = 0; i < diags.size(); ++i) {
    const core::Diagnostic& d = diags[i];
    const std::string where = d.to_string();
    FUZZ_CHECK(d.file == file, where);
    FUZZ_CHECK(!d.message.empty(), where);
    if (d.line == 0) {
      FUZZ_CHECK(d.column == 0, where);
    } else {
      std::string_view line;
      FUZZ_CHECK(nth_line(text, d.line, line), "line past the end of the input: " + where);
      FUZZ_CHECK(d.column >= 1, where);
      if (byte_columns) {
        FUZZ_CHECK(d.column <= line.size() + 1, "column past the end of its line: " + where +
                                                    " (line is " + std::to_string(line.size()) +
                                                    " bytes)");
      }
    }
    if (i > 0) {
      const core::Diagnostic& p = diags[i - 1];
      FUZZ_CHECK(std::tie(p.line, p.column) <= std::tie(d.line, d.column),
                 "diagnostics out of order: " + p.to_string() + " before " + where);
    }
  }
}

/// True unless yaml-cpp would read `text` as UTF-16 or UTF-32 (a BOM, or a NUL among the first
/// bytes: YAML 1.2 section 5.2 encoding detection).
inline bool yaml_reads_as_utf8(std::string_view text) {
  if (text.size() >= 2 &&
      ((text[0] == '\xFE' && text[1] == '\xFF') || (text[0] == '\xFF' && text[1] == '\xFE'))) {
    return false;
  }
  return text.substr(0, 4).find('\0') == std::string_view::npos;
}

}  // namespace thingsync::fuzz
