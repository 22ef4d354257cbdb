#pragma once

// A small, reusable YAML tree built from yaml-cpp's event API, with 1-based marks. yaml-cpp's own
// node tree is far too slow and large for a million bindings; this one lives in one vector that
// is reused, and a sequence can be "streamed": its items are handed to a callback one by one and
// then forgotten, so memory stays flat however long the list.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/config/env.hpp"
#include "thingsync/core/diagnostic.hpp"

namespace thingsync::config::detail {

inline constexpr std::uint32_t kNone = 0xffffffffU;

struct YNode {
  enum class Kind : std::uint8_t { kNull, kScalar, kMap, kSeq, kAlias };
  Kind kind = Kind::kNull;
  bool quoted = false;    // a quoted (non-plain) scalar
  bool streamed = false;  // a sequence whose items went to the callback
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::uint32_t parent = kNone;
  std::uint32_t first_child = kNone;  // maps: key, value, key, value, ...
  std::uint32_t last_child = kNone;
  std::uint32_t next = kNone;
  std::uint32_t children = 0;
  std::string text;  // scalars only
};

/// "a map", "a list", "a scalar", "nothing (null)", "an alias".
std::string_view describe(YNode::Kind k);

class YTree {
 public:
  const YNode& operator[](std::uint32_t i) const { return nodes_[i]; }
  std::uint32_t root() const { return root_; }

  /// Calls f(key_index, value_index) for each pair of a map.
  template <typename F>
  void for_each_pair(std::uint32_t map, F&& f) const {
    for (std::uint32_t k = nodes_[map].first_child; k != kNone;) {
      const std::uint32_t v = nodes_[k].next;
      f(k, v);
      k = nodes_[v].next;
    }
  }
  template <typename F>
  void for_each_item(std::uint32_t seq, F&& f) const {
    for (std::uint32_t i = nodes_[seq].first_child; i != kNone; i = nodes_[i].next) f(i);
  }

 private:
  friend class YBuilder;
  std::vector<YNode> nodes_;
  std::uint32_t used_ = 0;
  std::uint32_t root_ = kNone;
};

/// Decides, when a sequence starts, whether its items are streamed: (tree, the new sequence).
using StreamRule = std::function<bool(const YTree&, std::uint32_t)>;
/// Receives one finished item of a streamed sequence; the node is valid only during the call.
using ItemSink = std::function<void(const YTree&, std::uint32_t)>;

/// Parses `text` (one YAML document) into `tree`. On a YAML syntax error, or a second
/// document, appends a diagnostic and returns false; the tree then holds what was parsed.
/// `line_offset` is added to every line (for a chunk cut out of a larger file).
bool parse_yaml(std::string_view text, const std::string& filename, std::uint32_t line_offset,
                YTree& tree, core::Diagnostics& diags, const StreamRule& rule = {},
                const ItemSink& sink = {});

/// parse_yaml's fast path (fast_yaml.hpp): for the block YAML it understands it builds the
/// tree yaml-cpp would, with the same sink calls, and returns true (such text has no syntax
/// error). Otherwise it returns false having called neither rule nor sink (`tree` is cleared).
bool parse_yaml_fast(std::string_view text, std::uint32_t line_offset, YTree& tree,
                     const StreamRule& rule = {}, const ItemSink& sink = {});
/// parse_yaml through yaml-cpp alone: any text.
bool parse_yaml_cpp(std::string_view text, const std::string& filename, std::uint32_t line_offset,
                    YTree& tree, core::Diagnostics& diags, const StreamRule& rule = {},
                    const ItemSink& sink = {});

/// The subtree at `node` (its index, kind, flags, place, parent, children and text), one line
/// per node: tests compare the trees of the two paths with it.
std::string dump(const YTree& tree, std::uint32_t node);

/// The key of `names` nearest to `key` by edit distance, or "" when none is near enough.
std::string_view suggest(std::string_view key, std::initializer_list<std::string_view> names);

/// Context for checking one file's tree: filename plus where diagnostics go.
class Checker {
 public:
  /// `source` is the text the tree was parsed from, its first line being line `line_offset` + 1
  /// (a chunk's text and offset, as given to parse_yaml): it places messages about a part of a
  /// scalar.
  Checker(const std::string& filename, const YTree& tree, core::Diagnostics& diags,
          std::string_view source, std::uint32_t line_offset)
      : file_(filename), tree_(tree), diags_(diags), source_(source), line_offset_(line_offset) {}

  const YTree& tree() const { return tree_; }
  const std::string& file() const { return file_; }

  void error(std::uint32_t node, std::string message);
  void warning(std::uint32_t node, std::string message);
  void error_at(std::uint32_t line, std::uint32_t column, std::string message);

  /// True when `node` is a map; else an error "`what` must be a map (...), found a list".
  bool expect_map(std::uint32_t node, std::string_view what, std::string_view example = {});
  /// True when `node` is a scalar; else an error naming what was expected.
  bool expect_scalar(std::uint32_t node, std::string_view what);
  /// Walks a map's pairs: known keys go to f(name, value); unknown ones and repeated ones
  /// are errors (with a suggestion). `context` names the map in messages ("sync").
  /// Returns false when a key was unknown: then a "missing key" error would only repeat it.
  template <typename F>
  bool for_each_key(std::uint32_t map, std::string_view context,
                    std::initializer_list<std::string_view> names, F&& f) {
    SeenKeys seen;
    bool all_known = true;
    tree_.for_each_pair(map, [&](std::uint32_t k, std::uint32_t v) {
      if (!check_key(k, context, names, seen)) {
        all_known = false;
        return;
      }
      f(std::string_view(tree_[k].text), v);
    });
    return all_known;
  }

  /// Expands ${VAR} (and $$) in a scalar; errors name the variable at its column.
  bool expand(std::uint32_t node, const EnvLookup& env, std::string& out);
  /// expand() for a path, then resolves a relative result against the file's directory --
  /// unless the text as written starts with ${VAR}: that value is taken as the variable gives it.
  /// An empty path is an error naming `what`.
  bool expand_path(std::uint32_t node, std::string_view what, const EnvLookup& env,
                   std::string& out);

 private:
  // Known keys seen so far in one map; each known key is kept at most once, and no map has
  // more than 16 known keys, so no allocation per map (a million bindings go through here).
  struct SeenKeys {
    std::array<std::uint32_t, 16> keys{};
    std::size_t n = 0;
  };
  bool check_key(std::uint32_t key, std::string_view context,
                 std::initializer_list<std::string_view> names, SeenKeys& seen);
  /// Line `line` of the source ("" when it is not there).
  std::string_view source_line(std::uint32_t line);
  /// The column of byte `i` of scalar `node`'s value, where the value's first `len` bytes are
  /// written as they are on its first line; elsewhere (escapes, folded lines, block scalars)
  /// the scalar's own column.
  std::uint32_t column_in(std::uint32_t node, std::size_t i, std::size_t len);
  const std::string& file_;
  const YTree& tree_;
  core::Diagnostics& diags_;
  std::string_view source_;
  std::uint32_t line_offset_;
  std::vector<std::size_t> line_starts_;  // of source_, filled on first use
};

/// Resolves `path` against the directory of `filename` when it is relative; lexically normal.
std::string resolve_path(std::string_view filename, std::string_view path);

/// Reads a whole file; on failure returns false and sets `why` to strerror.
bool read_file(const std::string& path, std::string& out, std::string& why);

}  // namespace thingsync::config::detail
