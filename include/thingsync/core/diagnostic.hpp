#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace thingsync::core {

enum class Severity : std::uint8_t { kError, kWarning };

/// One finding about user input, located in a file. line and column are 1-based;
/// 0 means "the whole file" (for example an unreadable file).
struct Diagnostic {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  Severity severity = Severity::kError;
  std::string message;

  /// "file:line:column: error: message" (line/column left out when 0).
  std::string to_string() const;
};

using Diagnostics = std::vector<Diagnostic>;

bool has_errors(const Diagnostics& d);

/// Sorts by file, line, column; stable for equal locations.
void sort_diagnostics(Diagnostics& d);

}  // namespace thingsync::core
