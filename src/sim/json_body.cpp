#include "json_body.hpp"

#include <cmath>
#include <cstdlib>

namespace thingsync::sim {
namespace {

int hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// The four hex digits at s[i..i+4) as a code unit; -1 when short or not hex.
int hex4(std::string_view s, std::size_t i) {
  if (i + 4 > s.size()) return -1;
  int v = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    const int d = hex_digit(static_cast<unsigned char>(s[i + k]));
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

bool is_digit(std::string_view s, std::size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; }

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

bool json_plain(std::string_view s) {
  for (const char c : s) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

void json_unescape(std::string_view raw, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out.push_back(raw[i]);
      continue;
    }
    const char e = raw[++i];
    switch (e) {
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        auto cp = static_cast<unsigned>(hex4(raw, i + 1));
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a valid string pairs it: "\uDC00".."\uDFFF"
          const auto low = static_cast<unsigned>(hex4(raw, i + 3));
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        }
        append_utf8(out, cp);
        break;
      }
      default: out.push_back(e); break;  // '"', '\\', '/'
    }
  }
}

void BindingBody::ws(std::size_t& pos) const {
  while (pos < in_.size()) {
    const char c = in_[pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
    ++pos;
  }
}

// `pos` is at the opening quote; on success it is past the closing one and `raw` holds what
// lies between them.
bool BindingBody::string_at(std::size_t& pos, std::string_view& raw, bool& escaped) const {
  const std::string_view s = in_;
  const std::size_t n = s.size();
  std::size_t i = pos + 1;
  escaped = false;
  for (;;) {
    if (i >= n) return false;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') break;
    if (c == '\\') {
      escaped = true;
      if (i + 1 >= n) return false;
      switch (s[i + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          i += 2;
          continue;
        case 'u': {
          const int cp = hex4(s, i + 2);
          if (cp < 0) return false;
          i += 6;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 1 >= n || s[i] != '\\' || s[i + 1] != 'u') return false;
            const int low = hex4(s, i + 2);
            if (low < 0xDC00 || low > 0xDFFF) return false;
            i += 6;
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          continue;
        }
        default: return false;
      }
    }
    if (c < 0x20) return false;  // control characters must be escaped
    if (c < 0x80) {
      ++i;
      continue;
    }
    // UTF-8 as RFC 3629 allows it: no overlong forms, no surrogates, nothing past U+10FFFF.
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3;
      lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = 3;
    } else if (c == 0xED) {
      len = 3;
      hi = 0x9F;
    } else if (c == 0xF0) {
      len = 4;
      lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4;
      hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > n) return false;
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (second < lo || second > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      if (cont < 0x80 || cont > 0xBF) return false;
    }
    i += len;
  }
  raw = s.substr(pos + 1, i - pos - 1);
  pos = i + 1;
  return true;
}

bool BindingBody::number_at(std::size_t& pos) const {
  const std::string_view s = in_;
  std::size_t i = pos;
  if (s[i] == '-') ++i;
  if (!is_digit(s, i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (is_digit(s, i)) ++i;
  }
  bool integer = true;
  if (i < s.size() && s[i] == '.') {
    integer = false;
    ++i;
    if (!is_digit(s, i)) return false;
    while (is_digit(s, i)) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    integer = false;
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!is_digit(s, i)) return false;
    while (is_digit(s, i)) ++i;
  }
  // nlohmann refuses a number that overflows a double ("number overflow"); short integers
  // cannot.
  if (!integer || i - pos > 18) {
    const std::string token(s.substr(pos, i - pos));
    if (!std::isfinite(std::strtod(token.c_str(), nullptr))) return false;
  }
  pos = i;
  return true;
}

JsonMember* BindingBody::member(std::string_view raw_key, bool escaped) {
  std::string_view key = raw_key;
  if (escaped) {
    json_unescape(raw_key, key_);
    key = key_;
  }
  if (key == "deviceId") return &device_id;
  if (key == "password") return &password;
  if (key == "clientId") return &client_id;
  if (key == "allowDuplicate") return &allow_duplicate;
  if (key == "modifiedBy") return &modified_by;
  if (key == "modifiedAt") return &modified_at;
  return nullptr;
}

BindingBody::Status BindingBody::parse(std::string_view body) {
  for (JsonMember* m :
       {&device_id, &password, &client_id, &allow_duplicate, &modified_by, &modified_at}) {
    m->type = JsonType::kAbsent;
    m->boolean = false;
    m->text = {};
  }
  in_ = body;
  stack_.clear();
  const std::size_t n = body.size();
  std::size_t pos = 0;
  if (n > 0 && static_cast<unsigned char>(body[0]) == 0xEF) {  // a UTF-8 byte order mark
    if (n < 3 || static_cast<unsigned char>(body[1]) != 0xBB ||
        static_cast<unsigned char>(body[2]) != 0xBF) {
      return Status::kInvalid;
    }
    pos = 3;
  }
  bool top_object = false;
  JsonMember* target = nullptr;  // the member the next value is for
  enum class Next { kValue, kKey, kAfterValue } next = Next::kValue;
  for (;;) {
    switch (next) {
      case Next::kValue: {
        ws(pos);
        if (pos >= n) return Status::kInvalid;
        JsonMember* m = target;
        target = nullptr;
        if (m) {
          m->boolean = false;
          m->text = {};
        }
        auto set = [m](JsonType t) {
          if (m) m->type = t;
        };
        auto literal = [&](std::string_view word) {
          if (body.substr(pos, word.size()) != word) return false;
          pos += word.size();
          return true;
        };
        next = Next::kAfterValue;
        switch (body[pos]) {
          case '{':
          case '[': {
            const bool object = body[pos] == '{';
            if (object && stack_.empty()) top_object = true;
            set(object ? JsonType::kObject : JsonType::kArray);
            stack_.push_back(body[pos]);
            ++pos;
            ws(pos);
            if (pos < n && body[pos] == (object ? '}' : ']')) {  // empty
              ++pos;
              stack_.pop_back();
            } else {
              next = object ? Next::kKey : Next::kValue;
            }
            break;
          }
          case '"': {
            std::string_view raw;
            bool escaped = false;
            if (!string_at(pos, raw, escaped)) return Status::kInvalid;
            set(JsonType::kString);
            if (m && escaped) {
              json_unescape(raw, m->decoded);
              m->text = m->decoded;
            } else if (m) {
              m->text = raw;
            }
            break;
          }
          case 't':
            if (!literal("true")) return Status::kInvalid;
            set(JsonType::kBoolean);
            if (m) m->boolean = true;
            break;
          case 'f':
            if (!literal("false")) return Status::kInvalid;
            set(JsonType::kBoolean);
            break;
          case 'n':
            if (!literal("null")) return Status::kInvalid;
            set(JsonType::kNull);
            break;
          default:
            if (body[pos] != '-' && !is_digit(body, pos)) return Status::kInvalid;
            if (!number_at(pos)) return Status::kInvalid;
            set(JsonType::kNumber);
            break;
        }
        break;
      }
      case Next::kKey: {
        if (pos >= n || body[pos] != '"') return Status::kInvalid;
        std::string_view raw;
        bool escaped = false;
        if (!string_at(pos, raw, escaped)) return Status::kInvalid;
        if (stack_.size() == 1) target = member(raw, escaped);
        ws(pos);
        if (pos >= n || body[pos] != ':') return Status::kInvalid;
        ++pos;
        next = Next::kValue;
        break;
      }
      case Next::kAfterValue: {
        ws(pos);
        if (stack_.empty()) {
          // Unlike nlohmann, which takes a NUL byte for the end of the input, nothing may follow.
          if (pos < n) return Status::kInvalid;
          return top_object ? Status::kObject : Status::kNotObject;
        }
        if (pos >= n) return Status::kInvalid;
        const bool in_object = stack_.back() == '{';
        if (body[pos] == ',') {
          ++pos;
          ws(pos);
          next = in_object ? Next::kKey : Next::kValue;
        } else if (body[pos] == (in_object ? '}' : ']')) {
          ++pos;
          stack_.pop_back();
        } else {
          return Status::kInvalid;
        }
        break;
      }
    }
  }
}

}  // namespace thingsync::sim
