#include "yaml_tree.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <istream>
#include <streambuf>
#include <utility>

#include "echo.hpp"
#include "fast_yaml.hpp"

namespace thingsync::config::detail {
namespace {

// An istream over existing text, without copying it (std::istringstream would).
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(std::string_view text) {
    char* p = const_cast<char*>(text.data());  // read-only use: get area only
    setg(p, p, p + text.size());
  }
};

std::uint32_t to_u32(int v) { return v < 0 ? 0U : static_cast<std::uint32_t>(v); }

}  // namespace

// Builds the tree from yaml-cpp's events, or from the same events given by the fast path.
class YBuilder : public YAML::EventHandler, public YEvents {
 public:
  // The rule and sink are copied (once per parse): a reference member would dangle when a
  // caller passes temporaries, as the second-document check below does.
  YBuilder(YTree& tree, std::uint32_t line_offset, StreamRule rule, ItemSink sink)
      : tree_(tree), line_offset_(line_offset), rule_(std::move(rule)), sink_(std::move(sink)) {
    tree_.used_ = 0;
    tree_.root_ = kNone;
  }

  void OnDocumentStart(const YAML::Mark& /*mark*/) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    null_at(to_u32(mark.line), to_u32(mark.column));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    leaf(add(YNode::Kind::kAlias, to_u32(mark.line), to_u32(mark.column)));
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t /*anchor*/,
                const std::string& value) override {
    last_scalar_ = mark;
    scalar_at(to_u32(mark.line), to_u32(mark.column), tag == "!", value);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value /*style*/) override {
    seq_start_at(to_u32(mark.line), to_u32(mark.column));
  }
  void OnSequenceEnd() override { end(); }
  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {
    map_start_at(to_u32(mark.line), to_u32(mark.column));
  }
  void OnMapEnd() override { end(); }

  void null_at(std::uint32_t line, std::uint32_t column) override {
    leaf(add(YNode::Kind::kNull, line, column));
  }
  void scalar_at(std::uint32_t line, std::uint32_t column, bool quoted,
                 std::string_view value) override {
    const std::uint32_t i = add(YNode::Kind::kScalar, line, column);
    YNode& n = tree_.nodes_[i];
    n.text.assign(value);
    n.quoted = quoted;
    leaf(i);
  }
  void seq_start_at(std::uint32_t line, std::uint32_t column) override {
    const std::uint32_t i = add(YNode::Kind::kSeq, line, column);
    if (rule_ && rule_(tree_, i)) tree_.nodes_[i].streamed = true;
    stack_.push_back(i);
  }
  void map_start_at(std::uint32_t line, std::uint32_t column) override {
    stack_.push_back(add(YNode::Kind::kMap, line, column));
  }
  void end() override { close(); }

  /// Where the last scalar starts (at its anchor or tag, if it has one); pos -1 when none.
  const YAML::Mark& last_scalar() const { return last_scalar_; }

 private:
  // `line` and `column` are 0-based, as yaml-cpp's marks.
  std::uint32_t add(YNode::Kind kind, std::uint32_t line, std::uint32_t column) {
    auto& nodes = tree_.nodes_;
    const std::uint32_t i = tree_.used_++;
    if (i == nodes.size()) nodes.emplace_back();
    YNode& n = nodes[i];
    n.kind = kind;
    n.quoted = false;
    n.streamed = false;
    n.line = line + 1 + line_offset_;
    n.column = column + 1;
    n.first_child = n.last_child = n.next = kNone;
    n.children = 0;
    n.text.clear();
    if (stack_.empty()) {
      n.parent = kNone;
      if (tree_.root_ == kNone) tree_.root_ = i;
      return i;
    }
    const std::uint32_t p = stack_.back();
    n.parent = p;
    YNode& parent = nodes[p];
    if (!parent.streamed) {
      if (parent.last_child == kNone) {
        parent.first_child = i;
      } else {
        nodes[parent.last_child].next = i;
      }
      parent.last_child = i;
    }
    ++parent.children;
    return i;
  }

  // A finished node: if it is an item of a streamed sequence, hand it over and free it
  // (it is the newest subtree, so truncating the arena to it frees exactly its nodes).
  void leaf(std::uint32_t i) {
    const std::uint32_t p = tree_.nodes_[i].parent;
    if (p != kNone && tree_.nodes_[p].streamed) {
      if (sink_) sink_(tree_, i);
      tree_.used_ = i;
    }
  }
  void close() {
    const std::uint32_t i = stack_.back();
    stack_.pop_back();
    leaf(i);
  }

  YTree& tree_;
  std::uint32_t line_offset_;
  StreamRule rule_;
  ItemSink sink_;
  std::vector<std::uint32_t> stack_;
  YAML::Mark last_scalar_ = YAML::Mark::null_mark();
};

std::string_view describe(YNode::Kind k) {
  switch (k) {
    case YNode::Kind::kNull:
      return "nothing";
    case YNode::Kind::kScalar:
      return "a scalar";
    case YNode::Kind::kMap:
      return "a map";
    case YNode::Kind::kSeq:
      return "a list";
    case YNode::Kind::kAlias:
      return "an alias (aliases are not supported)";
  }
  return "?";
}

namespace {

std::string_view line_of(std::string_view text, int line) {
  std::size_t pos = 0;
  for (int l = 0; l < line && pos != std::string_view::npos; ++l) {
    pos = text.find('\n', pos);
    if (pos != std::string_view::npos) ++pos;
  }
  if (pos == std::string_view::npos || pos > text.size()) return {};
  const std::size_t end = text.find('\n', pos);
  return text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// yaml-cpp 0.7 takes a quoted scalar that is still open at the end of the input, when only
// line breaks and spaces follow its last line, as ending there: 'key: "abc' plus a newline
// reads as "abc ". True when the scalar at `start` (the last one of the input) is such a one.
bool open_quote_at_end(std::string_view text, const YAML::Mark& start) {
  if (start.is_null() || start.pos < 0) return false;
  // yaml-cpp counts characters after decoding and without a BOM: only UTF-8 maps to bytes.
  const bool bom = text.substr(0, 3) == "\xEF\xBB\xBF";
  if (text.substr(0, 4).find('\0') != std::string_view::npos || text.substr(0, 2) == "\xFE\xFF" ||
      text.substr(0, 2) == "\xFF\xFE") {
    return false;
  }
  std::size_t i = static_cast<std::size_t>(start.pos) + (bom ? 3 : 0);
  // Past the node's properties (&anchor, !tag) to its first character.
  while (i < text.size() && (is_blank(text[i]) || text[i] == '&' || text[i] == '!')) {
    if (is_blank(text[i])) {
      ++i;
    } else {
      while (i < text.size() && !is_blank(text[i])) ++i;
    }
  }
  if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return false;
  const char quote = text[i];
  for (++i; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;  // an escape: the next character is not the end
    } else if (text[i] == quote) {
      if (quote == '"' || i + 1 == text.size() || text[i + 1] != '\'') return false;
      ++i;  // '' in a single-quoted scalar is a quote
    }
  }
  return true;
}

std::string_view rtrim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

bool parse_yaml(std::string_view text, const std::string& filename, std::uint32_t line_offset,
                YTree& tree, core::Diagnostics& diags, const StreamRule& rule,
                const ItemSink& sink) {
  return parse_yaml_fast(text, line_offset, tree, rule, sink) ||
         parse_yaml_cpp(text, filename, line_offset, tree, diags, rule, sink);
}

bool parse_yaml_fast(std::string_view text, std::uint32_t line_offset, YTree& tree,
                     const StreamRule& rule, const ItemSink& sink) {
  YBuilder builder(tree, line_offset, rule, sink);
  return parse_block_yaml(text, builder);
}

bool parse_yaml_cpp(std::string_view text, const std::string& filename, std::uint32_t line_offset,
                    YTree& tree, core::Diagnostics& diags, const StreamRule& rule,
                    const ItemSink& sink) {
  // Desired state and config are UTF-8. yaml-cpp would also take UTF-16/32, with a byte order
  // mark or guessed from NUL bytes among the first four: a stray NUL near the start of a UTF-8
  // file would turn all of it into one comment (an empty file), and a large file cut into parts
  // would be read in two encodings. So a UTF-16/32 byte order mark, or a NUL anywhere (no YAML
  // character), is an error at its place.
  if (text.starts_with("\xFE\xFF") || text.starts_with("\xFF\xFE") ||
      text.starts_with(std::string_view("\0\0\xFE\xFF", 4))) {
    diags.push_back({filename, 1 + line_offset, 1, core::Severity::kError,
                     "a UTF-16/UTF-32 byte order mark: the file must be UTF-8 text"});
    return false;
  }
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const std::size_t line_start = text.rfind('\n', nul) + 1;  // npos + 1 == 0
    const auto line = static_cast<std::uint32_t>(
        std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n'));
    diags.push_back({filename, line + 1 + line_offset,
                     static_cast<std::uint32_t>(nul - line_start) + 1, core::Severity::kError,
                     "a NUL byte: the file must be UTF-8 text"});
    return false;
  }
  ViewBuf buf(text);
  std::istream in(&buf);
  YBuilder builder(tree, line_offset, rule, sink);
  try {
    YAML::Parser parser(in);
    if (!parser.HandleNextDocument(builder)) return true;
    // A second document in the same file is almost always a mistake (a stray '---').
    YTree scratch;
    YBuilder second(scratch, line_offset, {}, {});
    if (parser.HandleNextDocument(second) && scratch.root() != kNone) {
      const YNode& r = scratch[scratch.root()];
      diags.push_back({filename, r.line, r.column, core::Severity::kError,
                       "a second YAML document ('---') in one file is not supported"});
      return false;
    }
    if (const YAML::Mark& m = builder.last_scalar(); open_quote_at_end(text, m)) {
      diags.push_back({filename, to_u32(m.line) + 1 + line_offset, to_u32(m.column) + 1,
                       core::Severity::kError,
                       "YAML syntax error: a quoted value starts here and is never closed"});
      return false;
    }
    return true;
  } catch (const YAML::Exception& e) {
    std::string msg = "YAML syntax error: " + e.msg;
    const std::string_view raw_line = line_of(text, e.mark.line);
    const std::string_view line = rtrim(raw_line);
    if (e.mark.line >= 0 && !line.empty() && line.back() == ':' &&
        line.find(": ") != std::string_view::npos) {
      msg += "; quote device IDs that end in ':' (write deviceId: \"urn:dev:IMEI:...:\")";
    }
    const bool located = !e.mark.is_null() && e.mark.line >= 0;
    // At the end of the input yaml-cpp may place the error past the last byte: keep it on the
    // line, at its end.
    const std::size_t column = std::min<std::size_t>(to_u32(e.mark.column), raw_line.size());
    diags.push_back({filename, located ? to_u32(e.mark.line) + 1 + line_offset : 0,
                     located ? static_cast<std::uint32_t>(column) + 1 : 0, core::Severity::kError,
                     std::move(msg)});
    return false;
  }
}

std::string dump(const YTree& tree, std::uint32_t node) {
  if (node == kNone) return "(none)\n";
  const YNode& n = tree[node];
  std::string out = std::to_string(node) + ' ' + std::string(describe(n.kind));
  if (n.quoted) out += " quoted";
  if (n.streamed) out += " streamed";
  out += " at " + std::to_string(n.line) + ':' + std::to_string(n.column);
  out += " parent " + (n.parent == kNone ? std::string("-") : std::to_string(n.parent));
  out += " children " + std::to_string(n.children);
  if (n.kind == YNode::Kind::kScalar) {
    out += " text ";
    for (const char c : n.text) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f || c == '\\') {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\x";
        out += kHex[u >> 4];
        out += kHex[u & 15];
      } else {
        out += c;
      }
    }
  }
  out += '\n';
  for (std::uint32_t c = n.first_child; c != kNone; c = tree[c].next) out += dump(tree, c);
  return out;
}

std::string_view suggest(std::string_view key, std::initializer_list<std::string_view> names) {
  // No known key is near one this long, and the distance would cost its length times theirs.
  if (key.size() > kEchoBytes) return {};
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  std::string_view best;
  std::size_t best_d = std::string_view::npos;
  std::vector<std::size_t> row;
  for (std::string_view name : names) {
    // Levenshtein distance, case-insensitive (a wrong case is a typo too).
    row.resize(name.size() + 1);
    for (std::size_t j = 0; j <= name.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= key.size(); ++i) {
      std::size_t diag = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= name.size(); ++j) {
        const std::size_t up = row[j];
        const std::size_t cost = lower(key[i - 1]) == lower(name[j - 1]) ? 0 : 1;
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
        diag = up;
      }
    }
    if (row[name.size()] < best_d) {
      best_d = row[name.size()];
      best = name;
    }
  }
  const std::size_t limit = std::max<std::size_t>(2, best.size() / 3);
  return best_d <= limit ? best : std::string_view{};
}

void Checker::error(std::uint32_t node, std::string message) {
  error_at(tree_[node].line, tree_[node].column, std::move(message));
}
void Checker::error_at(std::uint32_t line, std::uint32_t column, std::string message) {
  diags_.push_back({file_, line, column, core::Severity::kError, std::move(message)});
}
void Checker::warning(std::uint32_t node, std::string message) {
  diags_.push_back(
      {file_, tree_[node].line, tree_[node].column, core::Severity::kWarning, std::move(message)});
}

bool Checker::expect_map(std::uint32_t node, std::string_view what, std::string_view example) {
  if (tree_[node].kind == YNode::Kind::kMap) return true;
  std::string msg = std::string(what) + " must be a map";
  if (!example.empty()) msg += " (" + std::string(example) + ")";
  msg += ", found ";
  msg += describe(tree_[node].kind);
  error(node, std::move(msg));
  return false;
}

bool Checker::expect_scalar(std::uint32_t node, std::string_view what) {
  if (tree_[node].kind == YNode::Kind::kScalar) return true;
  error(node, std::string(what) + " must be a single value, found " +
                  std::string(describe(tree_[node].kind)));
  return false;
}

bool Checker::check_key(std::uint32_t key, std::string_view context,
                        std::initializer_list<std::string_view> names, SeenKeys& seen) {
  const YNode& k = tree_[key];
  if (k.kind != YNode::Kind::kScalar) {
    error(key, "a key in " + std::string(context) + " must be a plain name, found " +
                   std::string(describe(k.kind)));
    return false;
  }
  if (std::find(names.begin(), names.end(), k.text) == names.end()) {
    std::string msg = "unknown key '" + echo(k.text) + "' in " + std::string(context);
    // Appended piece by piece: `" " + std::string(n)` inlines basic_string::_M_replace, on
    // which GCC 12 at -O3 raises a false -Wrestrict (a known GCC 12 bug).
    if (auto s = suggest(k.text, names); !s.empty()) {
      msg += "; did you mean '";
      msg += s;
      msg += "'?";
    } else {
      msg += " (expected one of:";
      for (auto n : names) {
        msg += ' ';
        msg += n;
      }
      msg += ')';
    }
    error(key, std::move(msg));
    return false;
  }
  for (std::size_t i = 0; i < seen.n; ++i) {
    const YNode& first = tree_[seen.keys[i]];
    if (first.text == k.text) {
      error(key, "key '" + echo(k.text) + "' appears twice in " + std::string(context) +
                     "; first at line " + std::to_string(first.line));
      return false;
    }
  }
  if (seen.n < seen.keys.size()) seen.keys[seen.n++] = key;
  return true;
}

bool Checker::expand(std::uint32_t node, const EnvLookup& env, std::string& out) {
  const YNode& n = tree_[node];
  const std::string& s = n.text;
  out.clear();
  if (s.find('$') == std::string::npos) {
    out = s;
    return true;
  }
  bool ok = true;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '$' || i + 1 == s.size()) {
      out.push_back(s[i]);
      continue;
    }
    if (s[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (s[i + 1] != '{') {
      out.push_back('$');
      continue;
    }
    const std::size_t close = s.find('}', i + 2);
    if (close == std::string::npos) {
      error_at(n.line, column_in(node, i, s.size()),
               "unterminated '${' (write ${NAME}, or $$ for a literal '$')");
      return false;
    }
    const std::uint32_t col = column_in(node, i, close + 1);
    const std::string name = s.substr(i + 2, close - i - 2);
    const bool valid_name = !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
                            std::all_of(name.begin(), name.end(), [](char c) {
                              return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                     (c >= '0' && c <= '9') || c == '_';
                            });
    if (!valid_name) {
      error_at(n.line, col,
               "'${" + echo(name) + "}' is not a valid environment variable reference");
      ok = false;
    } else if (auto v = env ? env(name) : std::nullopt) {
      out += *v;
    } else {
      error_at(n.line, col, "environment variable " + echo(name) + " is not set");
      ok = false;
    }
    i = close;
  }
  return ok;
}

std::string_view Checker::source_line(std::uint32_t line) {
  if (source_.empty() || line <= line_offset_) return {};
  if (line_starts_.empty()) {
    line_starts_.push_back(0);
    for (std::size_t p = source_.find('\n'); p != std::string_view::npos;
         p = source_.find('\n', p + 1)) {
      line_starts_.push_back(p + 1);
    }
  }
  const std::size_t l = line - line_offset_ - 1;
  if (l >= line_starts_.size()) return {};
  const std::size_t begin = line_starts_[l];
  const std::size_t end = l + 1 < line_starts_.size() ? line_starts_[l + 1] - 1 : source_.size();
  return source_.substr(begin, end - begin);
}

std::uint32_t Checker::column_in(std::uint32_t node, std::size_t i, std::size_t len) {
  const YNode& n = tree_[node];
  const std::uint32_t first = n.column + (n.quoted ? 1U : 0U);  // after an opening quote
  const std::string_view line = source_line(n.line);
  const std::string_view value = std::string_view(n.text).substr(0, len);
  if (first - 1 <= line.size() && line.substr(first - 1, len) == value) {
    return first + static_cast<std::uint32_t>(i);
  }
  return n.column;
}

bool Checker::expand_path(std::uint32_t node, std::string_view what, const EnvLookup& env,
                          std::string& out) {
  if (!expand(node, env, out)) return false;
  if (out.empty()) {
    error(node, std::string(what) + " must not be empty");
    return false;
  }
  if (tree_[node].text.rfind("${", 0) == 0) {
    out = std::filesystem::path(out).lexically_normal().string();
  } else {
    out = resolve_path(file_, out);
  }
  return true;
}

std::string resolve_path(std::string_view filename, std::string_view path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (p.empty() || p.is_absolute()) return p.lexically_normal().string();
  const fs::path dir = fs::path(filename).parent_path();
  return (dir / p).lexically_normal().string();
}

bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    why = std::strerror(errno);
    return false;
  }
  out.clear();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) out.reserve(static_cast<std::size_t>(size));
  char buf[1 << 16];
  for (;;) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f);
    out.append(buf, n);
    if (n < sizeof buf) break;
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    why = std::strerror(err);
    return false;
  }
  return true;
}

}  // namespace thingsync::config::detail
