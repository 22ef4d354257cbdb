#pragma once

// A fast path in front of yaml-cpp for the block YAML that desired-state and config files are
// written in. It gives the same events, with the same marks, as yaml-cpp's parser, or it
// declines the text (having given none) and yaml-cpp reads it as before. What it takes:
//
// - block maps and block sequences, nested by indentation (spaces), including a list written
//   at its key's indentation (`key:` then `- item`) and a map that starts on an item's line
//   (`- key: value`);
// - single-line scalars: plain ones (ended as YAML ends them, by ": ", " #" or the line's
//   end; ~, null, Null, NULL read as nothing), 'single-quoted' ones ('' is a quote) and
//   "double-quoted" ones with the one-character escapes (\\ \" \/ \n \t ...);
// - empty values and items, comments, blank lines, a `---` before the document.
//
// It declines everything else: flow collections, anchors, aliases, tags, block scalars, a
// scalar over several lines, `?` keys, a tab, a carriage return or other control character,
// a byte order mark, a second document, indentation that does not match an open collection,
// anything yaml-cpp would report as a syntax error, nesting over 64 levels.

#include <cstdint>
#include <string_view>

namespace thingsync::config::detail {

/// Receives a document's events, as yaml-cpp's EventHandler does, with 0-based marks.
class YEvents {
 public:
  virtual void null_at(std::uint32_t line, std::uint32_t column) = 0;
  virtual void scalar_at(std::uint32_t line, std::uint32_t column, bool quoted,
                         std::string_view value) = 0;
  virtual void seq_start_at(std::uint32_t line, std::uint32_t column) = 0;
  virtual void map_start_at(std::uint32_t line, std::uint32_t column) = 0;
  /// The innermost open sequence or map ends.
  virtual void end() = 0;

 protected:
  ~YEvents() = default;
};

/// Gives `out` the events of `text` and returns true when the text lies in the subset above;
/// otherwise returns false before giving any event. An empty document (only blank lines and
/// comments) gives no event.
bool parse_block_yaml(std::string_view text, YEvents& out);

}  // namespace thingsync::config::detail
