// thingsync-audit-scan: the check of the secrets audit (the recording side is
// tests/support/artifacts.hpp).
//
//   thingsync-audit-scan DIR
//
// Searches every file under DIR/files for every secret registered in
// DIR/secrets: as written, and in the forms a secret takes on its way out (JSON string escapes,
// URL and form encoding, base64 and base64url at any alignment, as inside "user:secret").
// A finding names the file, the line, the secret's kind, its first 3 characters and length, the
// form, and the test whose run wrote the file; the secret itself is never printed. Secrets
// shorter than 8 bytes are not searched for (they would match by chance); they are counted.
//
// Exit status: 0 no finding, 1 findings, 2 usage or I/O error (an unreadable registry must not
// pass as "no secret").

#include <algorithm>
#include <bitset>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMinLength = 8;

struct Secret {
  std::string kind;
  std::string value;
};

struct Form {
  std::string text;
  std::size_t secret;  // index into the secrets
  std::string how;
};

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot read " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// DIR/secrets: "KIND<TAB>HEX(VALUE)" lines, in any order, with repeats.
std::vector<Secret> load_secrets(const fs::path& file) {
  std::vector<Secret> out;
  if (!fs::exists(file)) return out;
  std::istringstream lines(read_all(file));
  std::string line;
  std::set<std::string> seen;
  for (std::size_t n = 1; std::getline(lines, line); ++n) {
    const auto tab = line.find('\t');
    const auto hex = tab == std::string::npos ? std::string() : line.substr(tab + 1);
    if (tab == std::string::npos || hex.empty() || hex.size() % 2 != 0) {
      throw Error(file.string() + ":" + std::to_string(n) + ": not KIND<TAB>HEX");
    }
    std::string value;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      const int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
      if (hi < 0 || lo < 0) throw Error(file.string() + ":" + std::to_string(n) + ": bad hex");
      value += static_cast<char>(hi * 16 + lo);
    }
    // One secret registered under several kinds is searched for once, under the first.
    if (seen.insert(value).second) out.push_back({line.substr(0, tab), std::move(value)});
  }
  return out;
}

std::string json_escaped(const std::string& s, bool escape_slash) {
  std::string out;
  for (const unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '/': out += escape_slash ? "\\/" : "/"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string url_encoded(const std::string& s, bool upper, bool form) {
  std::string out;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else if (form && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

// The base64 characters that depend only on the secret when it starts `skew` bytes (0..2)
// into a 3-byte group of a longer encoded text: the characters whose 6 bits all come from it.
std::string base64_core(const std::string& s, std::size_t skew, bool url) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(skew, '\0');
  bytes += s;
  const std::size_t total_bits = bytes.size() * 8;
  bytes.append(2, '\0');
  std::string enc;
  for (std::size_t i = 0; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) enc += alphabet[(v >> (6 * k)) & 63];
  }
  const std::size_t first = (skew * 8 + 5) / 6;  // the first character with no prefix bit
  const std::size_t last = total_bits / 6;       // one past the last with no suffix bit
  return last > first ? enc.substr(first, last - first) : std::string();
}

std::vector<Form> forms_of(const std::vector<Secret>& secrets) {
  std::vector<Form> forms;
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    const auto& s = secrets[i].value;
    std::set<std::string> texts;
    auto add = [&](std::string text, std::string how) {
      if (text.size() >= kMinLength && texts.insert(text).second) {
        forms.push_back({std::move(text), i, std::move(how)});
      }
    };
    add(s, "as is");
    add(json_escaped(s, false), "JSON-escaped");
    add(json_escaped(s, true), "JSON-escaped");
    add(url_encoded(s, true, false), "URL-encoded");
    add(url_encoded(s, false, false), "URL-encoded");
    add(url_encoded(s, true, true), "form-encoded");
    for (std::size_t skew = 0; skew < 3; ++skew) {
      add(base64_core(s, skew, false), "base64");
      add(base64_core(s, skew, true), "base64url");
    }
  }
  return forms;
}

std::uint64_t head8(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::size_t head2(const char* p) {
  return static_cast<std::size_t>(static_cast<unsigned char>(p[0])) << 8 |
         static_cast<unsigned char>(p[1]);
}

// Every form at once: a 2-byte filter, then the forms that share the first 8 bytes.
class Matcher {
 public:
  explicit Matcher(const std::vector<Form>& forms) : forms_(forms) {
    for (std::size_t i = 0; i < forms.size(); ++i) {
      first2_.set(head2(forms[i].text.data()));
      by_head_[head8(forms[i].text.data())].push_back(i);
    }
  }

  /// The first occurrence of each secret in `text`: secret index -> (offset, form index).
  std::map<std::size_t, std::pair<std::size_t, std::size_t>> find(const std::string& text) const {
    std::map<std::size_t, std::pair<std::size_t, std::size_t>> hits;
    if (text.size() < kMinLength) return hits;
    const char* p = text.data();
    for (std::size_t off = 0; off + kMinLength <= text.size(); ++off) {
      if (!first2_.test(head2(p + off))) continue;
      const auto it = by_head_.find(head8(p + off));
      if (it == by_head_.end()) continue;
      for (const auto f : it->second) {
        const auto& t = forms_[f].text;
        if (text.compare(off, t.size(), t) == 0) hits.emplace(forms_[f].secret, std::make_pair(off, f));
      }
    }
    return hits;
  }

 private:
  const std::vector<Form>& forms_;
  std::bitset<65536> first2_;
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> by_head_;
};

// DIR/runs/<prefix>.cmdline: which test run wrote the files named "<prefix>.…".
std::map<std::string, std::string> load_runs(const fs::path& dir) {
  std::map<std::string, std::string> runs;
  if (!fs::is_directory(dir)) return runs;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".cmdline") continue;
    auto text = read_all(e.path());
    while (!text.empty() && text.back() == '\n') text.pop_back();
    runs[e.path().stem().string()] = text;
  }
  return runs;
}

std::string run_of(const std::map<std::string, std::string>& runs, const std::string& file) {
  std::string best;
  for (const auto& [prefix, cmdline] : runs) {
    if (file.rfind(prefix + ".", 0) == 0 && prefix.size() > best.size()) best = prefix;
  }
  return best.empty() ? std::string() : runs.at(best);
}

int run(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: thingsync-audit-scan DIR\n";
    return 2;
  }
  const fs::path dir = argv[1];

  const auto secrets = load_secrets(dir / "secrets");
  std::size_t too_short = 0;
  std::vector<Secret> searched;
  for (const auto& s : secrets) {
    if (s.value.size() < kMinLength) {
      ++too_short;
    } else {
      searched.push_back(s);
    }
  }
  const auto forms = forms_of(searched);
  const Matcher matcher(forms);
  const auto runs = load_runs(dir / "runs");

  // (name shown, path)
  std::vector<std::pair<std::string, fs::path>> files;
  if (fs::is_directory(dir / "files")) {
    for (const auto& e : fs::recursive_directory_iterator(dir / "files")) {
      if (e.is_regular_file()) files.emplace_back(fs::relative(e.path(), dir / "files").string(), e.path());
    }
  }
  std::sort(files.begin(), files.end());

  std::size_t bytes = 0, findings = 0;
  for (const auto& [name, path] : files) {
    const auto text = read_all(path);
    bytes += text.size();
    for (const auto& [secret, where] : matcher.find(text)) {
      const auto& [offset, form] = where;
      const auto line = 1 + static_cast<std::size_t>(
                                std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
      const auto& s = searched[secret];
      std::cout << "LEAK " << name << ":" << line << ": " << s.kind << " \""
                << s.value.substr(0, 3) << "...\" (" << s.value.size() << " bytes), "
                << forms[form].how << "\n";
      if (const auto cmd = run_of(runs, name); !cmd.empty()) std::cout << "     written in the run of: " << cmd << "\n";
      ++findings;
    }
  }

  std::cout << "audit: " << files.size() << " files (" << bytes << " bytes) searched for "
            << searched.size() << " secrets in " << forms.size() << " forms";
  if (too_short > 0) std::cout << "; " << too_short << " secrets shorter than " << kMinLength << " bytes not searched for";
  std::cout << "\n";
  if (findings > 0) {
    std::cout << "FAILED: " << findings << " secret(s) found in test outputs\n";
    return 1;
  }
  if (files.empty()) std::cout << "nothing was recorded (no test that runs the binaries ran)\n";
  std::cout << "no secret in any test output\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "thingsync-audit-scan: " << e.what() << "\n";
    return 2;
  }
}
