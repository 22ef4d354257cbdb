#include "fast_yaml.hpp"

#include <array>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

// The marks given are those of yaml-cpp 0.7's tokens (scanner.cpp, scantoken.cpp,
// singledocparser.cpp): a map at its first key, a list at its first '-', a scalar at its first
// character (a quoted one at its quote). A value or item left empty is a null placed at the
// next token: the next line with content, at its indentation, or, at the end of the text, the
// end token of its map or list. yaml-cpp places that at the end of the text when it pops the
// collection there (PopIndentToHere: a map indented deeper than the end's column, a list at
// least as deep), else at column 0 of the last line (EndStream).

namespace thingsync::config::detail {
namespace {

constexpr std::uint32_t kMaxDepth = 64;  // yaml-cpp stops at 500 nested nodes
// yaml-cpp takes no simple key whose ':' is more than 1024 characters after its start.
constexpr std::size_t kMaxKeySpan = 1000;

bool is_null_word(std::string_view s) {
  return s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// yaml-cpp's one-character escapes in a double-quoted scalar (exp.cpp, Escape); 0 for others.
char unescaped(char c) {
  switch (c) {
    case '0':
      return '\0';
    case 'a':
      return '\a';
    case 'b':
      return '\b';
    case 't':
      return '\t';
    case 'n':
      return '\n';
    case 'v':
      return '\v';
    case 'f':
      return '\f';
    case 'r':
      return '\r';
    case 'e':
      return '\x1B';
    case ' ':
    case '"':
    case '\'':
    case '\\':
    case '/':
      return c;
    default:
      return 0;
  }
}
bool simple_escape(char c) { return c == '0' || unescaped(c) != 0; }

// Characters that may end a plain scalar on its line ('\0' stands for the end of the text).
constexpr std::array<bool, 256> kPlainStops = [] {
  std::array<bool, 256> t{};
  t['\n'] = t[':'] = t[' '] = t['\0'] = true;
  return t;
}();

/// A scalar on one line, as found by Parser::scan_scalar.
struct Scalar {
  std::size_t start = 0;  // its first character: the opening quote of a quoted one
  std::string_view raw;   // plain: the text without trailing spaces; quoted: between the quotes
  char quote = 0;         // 0 (plain), '\'' or '"'
  bool escaped = false;   // raw holds '' or backslash escapes
  bool key = false;       // ':' and a blank (or the end) follow: a map key
  std::size_t next = 0;   // where parsing goes on: after a key's ':', else after the scalar
};

// The checking pass gives its events to no one and decodes no escapes.
struct NoEvents {
  static constexpr bool kWantsText = false;
  void null_at(std::uint32_t, std::uint32_t) {}
  void scalar_at(std::uint32_t, std::uint32_t, bool, std::string_view) {}
  void seq_start_at(std::uint32_t, std::uint32_t) {}
  void map_start_at(std::uint32_t, std::uint32_t) {}
  void end() {}
};

struct ToEvents {
  static constexpr bool kWantsText = true;
  YEvents& out;
  void null_at(std::uint32_t l, std::uint32_t c) { out.null_at(l, c); }
  void scalar_at(std::uint32_t l, std::uint32_t c, bool q, std::string_view v) {
    out.scalar_at(l, c, q, v);
  }
  void seq_start_at(std::uint32_t l, std::uint32_t c) { out.seq_start_at(l, c); }
  void map_start_at(std::uint32_t l, std::uint32_t c) { out.map_start_at(l, c); }
  void end() { out.end(); }
};

// A recursive descent over lines. Every function returns false to decline the text.
// Between nodes, pos_ is at the content of the next line with content (its column indent_),
// or eof_ is set.
template <typename Out>
class Parser {
 public:
  Parser(std::string_view text, Out& out) : s_(text), out_(out) {
    const std::size_t last_break = s_.rfind('\n');  // npos + 1 == 0
    eof_column_ = static_cast<std::uint32_t>(s_.size() - (last_break + 1));
  }

  bool run() {
    if (!skip_to_content()) return false;
    if (eof_) return true;  // no document at all
    if (indent_ == 0 && s_.compare(pos_, 3, "---") == 0 && blank_or_end(pos_ + 3)) {
      pos_ += 3;
      if (!finish_line() || !next_content()) return false;
      if (eof_) {
        out_.null_at(line_, 0);
        return true;
      }
    } else if (indent_ == 0 && doc_marker(pos_)) {
      return false;
    }
    if (!node(0, true)) return false;
    return eof_;  // anything after the root node is an error or a second document
  }

 private:
  char at(std::size_t i) const { return i < s_.size() ? s_[i] : '\0'; }
  bool blank_or_end(std::size_t i) const {
    const char c = at(i);
    return c == ' ' || c == '\n' || c == '\0';
  }
  bool is_entry(std::size_t i) const { return at(i) == '-' && blank_or_end(i + 1); }
  bool doc_marker(std::size_t i) const {
    return (s_.compare(i, 3, "---") == 0 || s_.compare(i, 3, "...") == 0) && blank_or_end(i + 3);
  }
  std::uint32_t column(std::size_t i) const { return static_cast<std::uint32_t>(i - line_start_); }

  void new_line(std::size_t start) {
    pos_ = line_start_ = start;
    ++line_;
  }
  void skip_spaces() {
    while (at(pos_) == ' ') ++pos_;
  }
  // Past blank and comment lines to the next content (pos_ at a line's start).
  bool skip_to_content() {
    for (;;) {
      std::size_t i = pos_;
      while (i < s_.size() && s_[i] == ' ') ++i;
      if (i < s_.size() && s_[i] == '#') i = s_.find('\n', i);
      if (i >= s_.size()) {
        pos_ = s_.size();
        eof_ = true;
        return true;
      }
      if (s_[i] == '\n') {
        new_line(i + 1);
        continue;
      }
      pos_ = i;
      indent_ = column(i);
      return true;
    }
  }
  bool next_content() { return skip_to_content() && (eof_ || indent_ != 0 || !doc_marker(pos_)); }
  // The rest of a line after a node: spaces and a comment only.
  bool finish_line() {
    skip_spaces();
    if (at(pos_) == '#') pos_ = s_.find('\n', pos_);
    if (pos_ >= s_.size()) {
      pos_ = s_.size();
      return true;
    }
    if (s_[pos_] != '\n') return false;
    new_line(pos_ + 1);
    return true;
  }

  // A node that starts a line: a list, a map, or (the root only) a scalar.
  bool node(std::uint32_t depth, bool root) {
    if (is_entry(pos_)) return sequence(indent_, depth);
    Scalar sc;
    if (!scan_scalar(pos_, sc)) return false;
    if (sc.key) return map(indent_, sc, depth);
    if (!root) return false;  // a value below its key: yaml-cpp reads it with another indent
    emit(sc);
    pos_ = sc.next;
    return finish_line() && next_content();
  }

  // A block map at column c whose first key, on the current line, is `key`.
  bool map(std::uint32_t c, Scalar key, std::uint32_t depth) {
    if (depth > kMaxDepth) return false;
    out_.map_start_at(line_, c);
    for (;;) {
      emit(key);
      pos_ = key.next;
      if (!value(c, depth)) return false;
      if (eof_ || indent_ < c) break;
      if (indent_ > c || is_entry(pos_)) return false;
      if (!scan_scalar(pos_, key) || !key.key) return false;
    }
    out_.end();
    return true;
  }

  // The value after a key's ':' in a map at column c.
  bool value(std::uint32_t c, std::uint32_t depth) {
    skip_spaces();
    const char ch = at(pos_);
    if (ch == '\n' || ch == '\0' || ch == '#') {
      if (!finish_line() || !next_content()) return false;
      if (eof_) {
        out_.null_at(line_, c > eof_column_ ? eof_column_ : 0);
      } else if (indent_ > c) {
        return node(depth + 1, false);
      } else if (indent_ == c && is_entry(pos_)) {
        return sequence(c, depth + 1);  // a list at its key's indentation
      } else {
        out_.null_at(line_, indent_);
      }
      return true;
    }
    Scalar sc;
    if (!scan_scalar(pos_, sc) || sc.key) return false;  // `a: b: c` is an error
    emit(sc);
    pos_ = sc.next;
    // A line indented deeper would continue a plain scalar, or be an error.
    return finish_line() && next_content() && (eof_ || indent_ <= c);
  }

  // A block list at column n; pos_ is at its first '-'.
  bool sequence(std::uint32_t n, std::uint32_t depth) {
    if (depth > kMaxDepth) return false;
    out_.seq_start_at(line_, n);
    for (;;) {
      ++pos_;  // the '-'
      skip_spaces();
      const char ch = at(pos_);
      if (ch == '\n' || ch == '\0' || ch == '#') {
        if (!finish_line() || !next_content()) return false;
        if (eof_) {
          out_.null_at(line_, n >= eof_column_ ? eof_column_ : 0);
        } else if (indent_ > n) {
          if (!node(depth + 1, false)) return false;
        } else {
          out_.null_at(line_, indent_);
        }
      } else {
        if (is_entry(pos_)) return false;  // a list as an item on the same line
        Scalar sc;
        if (!scan_scalar(pos_, sc)) return false;
        if (sc.key) {
          if (!map(column(pos_), sc, depth + 1)) return false;
        } else {
          emit(sc);
          pos_ = sc.next;
          if (!finish_line() || !next_content()) return false;
        }
      }
      if (eof_) break;
      if (indent_ > n) return false;
      if (indent_ < n || !is_entry(pos_)) break;
    }
    out_.end();
    return true;
  }

  // A scalar starting at i and ending on its line, and whether it is a key.
  bool scan_scalar(std::size_t i, Scalar& sc) const {
    sc = Scalar{};
    sc.start = i;
    const char c = at(i);
    if (c == '"' || c == '\'') return scan_quoted(i, sc);
    // yaml-cpp's Exp::PlainScalar (block context): no indicator first, and no '-', '?', ':'
    // followed by a blank. Plain scalars that yaml-cpp would read from other starts are not
    // taken here either.
    switch (c) {
      case ',':
      case '[':
      case ']':
      case '{':
      case '}':
      case '#':
      case '&':
      case '*':
      case '!':
      case '|':
      case '>':
      case '%':
      case '@':
      case '`':
      case ' ':
      case '\n':
      case '\0':
        return false;
      case '-':
      case '?':
      case ':':
        if (blank_or_end(i + 1)) return false;
        break;
      default:
        break;
    }
    std::size_t j = i + 1;
    for (;; ++j) {
      const char d = at(j);
      if (!kPlainStops[static_cast<unsigned char>(d)]) continue;
      if (d == '\n' || d == '\0') break;
      if (d == ':' && blank_or_end(j + 1)) {
        sc.key = true;
        break;
      }
      if (d == ' ' && at(j + 1) == '#') break;
    }
    std::size_t e = j;
    while (s_[e - 1] == ' ') --e;
    sc.raw = s_.substr(i, e - i);
    if (sc.key && j - i > kMaxKeySpan) return false;
    sc.next = sc.key ? j + 1 : j;
    return true;
  }

  bool scan_quoted(std::size_t i, Scalar& sc) const {
    const char q = s_[i];
    sc.quote = q;
    std::size_t j = i + 1;
    for (;; ++j) {
      const char d = at(j);
      if (d == '\n' || d == '\0') return false;  // over several lines, or never closed
      if (d == q) {
        if (q == '\'' && at(j + 1) == '\'') {
          sc.escaped = true;
          ++j;
          continue;
        }
        break;
      }
      if (q == '"' && d == '\\') {
        if (!simple_escape(at(j + 1))) return false;
        sc.escaped = true;
        ++j;
      }
    }
    sc.raw = s_.substr(i + 1, j - i - 1);
    std::size_t k = j + 1;
    while (at(k) == ' ') ++k;
    if (at(k) == ':' && blank_or_end(k + 1)) {
      if (k - i > kMaxKeySpan) return false;
      sc.key = true;
      sc.next = k + 1;
    } else {
      sc.next = j + 1;
    }
    return true;
  }

  void emit(const Scalar& sc) {
    const std::uint32_t col = column(sc.start);
    if (sc.quote == 0) {
      if (is_null_word(sc.raw)) {
        out_.null_at(line_, col);
      } else {
        out_.scalar_at(line_, col, false, sc.raw);
      }
      return;
    }
    if constexpr (Out::kWantsText) {
      if (sc.escaped) {
        text_.clear();
        for (std::size_t k = 0; k < sc.raw.size(); ++k) {
          const char d = sc.raw[k];
          if ((sc.quote == '"' && d == '\\') || (sc.quote == '\'' && d == '\'')) {
            ++k;
            text_.push_back(sc.quote == '"' ? unescaped(sc.raw[k]) : '\'');
          } else {
            text_.push_back(d);
          }
        }
        out_.scalar_at(line_, col, true, text_);
        return;
      }
    }
    out_.scalar_at(line_, col, true, sc.raw);
  }

  std::string_view s_;
  Out& out_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  std::uint32_t line_ = 0;
  std::uint32_t indent_ = 0;
  bool eof_ = false;
  std::uint32_t eof_column_ = 0;  // the end's column: the length of an unfinished last line
  std::string text_;              // an unescaped quoted scalar
};

// What the parser cannot see past: a tab or carriage return (lines, indentation), another
// control character (yaml-cpp reads \x04 as the end), a first byte that yaml-cpp would take
// for a byte order mark or another encoding.
bool plain_bytes(std::string_view text) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) return false;
  if (!text.empty() && static_cast<unsigned char>(text[0]) >= 0x80) return false;
  unsigned char bad = 0;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    bad |= static_cast<unsigned char>(u < 0x20 && u != '\n');
  }
  return bad == 0;
}

}  // namespace

bool parse_block_yaml(std::string_view text, YEvents& out) {
  if (!plain_bytes(text)) return false;
  NoEvents none;
  if (!Parser<NoEvents>(text, none).run()) return false;
  ToEvents to{out};
  if (!Parser<ToEvents>(text, to).run()) {
    throw std::logic_error("fast YAML parser: the second pass declined what the first took");
  }
  return true;
}

}  // namespace thingsync::config::detail
