#include "thingsync/config/desired_state.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "desired_state_impl.hpp"
#include "echo.hpp"
#include "yaml_tree.hpp"

namespace thingsync::config {
namespace {

namespace fs = std::filesystem;
using detail::Checker;
using detail::FileParse;
using detail::kNone;
using detail::YNode;
using detail::YTree;

// An entry whose binding names no password: it takes the file's defaults.password.
constexpr std::uint32_t kUseDefault = 0xffffffffU;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

bool valid_env_name(std::string_view s) {
  return !s.empty() && !(s[0] >= '0' && s[0] <= '9') && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

/// What one piece of one file declares. Source indexes in `entries` are local to `sources`.
struct ChunkResult {
  std::vector<DesiredEntry> entries;
  std::vector<PasswordSource> sources;
  std::uint32_t default_source = kNone;
  bool default_written = false;  // defaults.password is there, even if it is broken
  core::Diagnostics diags;
  bool syntax_ok = true;
};

/// Parses one chunk of a file: the whole file (`first`), or a run of `bindings` items cut out
/// of it (then the text is a bare YAML list and `line_offset` places it in the file).
class ChunkParser {
 public:
  ChunkParser(const std::string& filename, std::uint32_t file_index, const EnvLookup& env,
              ChunkResult& out)
      : file_(filename), file_index_(file_index), env_(env), out_(out) {}

  void run(std::string_view text, std::uint32_t line_offset, bool first) {
    YTree tree;
    Checker checker(file_, tree, out_.diags, text, line_offset);
    c_ = &checker;
    detail::StreamRule rule = [first](const YTree& t, std::uint32_t seq) {
      const std::uint32_t parent = t[seq].parent;
      if (!first) return parent == kNone;
      // The value of the root map's "bindings" key. Its key, a scalar, is the node just before.
      return parent != kNone && parent == t.root() && t[parent].kind == YNode::Kind::kMap &&
             t[parent].children % 2 == 0 && t[seq - 1].parent == parent &&
             t[seq - 1].kind == YNode::Kind::kScalar && t[seq - 1].text == "bindings";
    };
    detail::ItemSink sink = [this](const YTree&, std::uint32_t item) { binding(item); };
    out_.syntax_ok = detail::parse_yaml(text, file_, line_offset, tree, out_.diags, rule, sink);
    if (first && out_.syntax_ok) root(tree.root());
    c_ = nullptr;
    order_sources();
  }

 private:
  const YTree& t() const { return c_->tree(); }

  void root(std::uint32_t r) {
    if (r == kNone || t()[r].kind == YNode::Kind::kNull) {
      out_.diags.push_back(
          {file_, 1, 1, core::Severity::kWarning, "the file is empty: it declares no bindings"});
      return;
    }
    if (!c_->expect_map(r, "a desired-state file", "with 'defaults' and 'bindings'")) return;
    c_->for_each_key(
        r, "a desired-state file", {"defaults", "bindings"},
        [&](std::string_view key, std::uint32_t v) {
          if (key == "defaults") defaults(v);
          if (key == "bindings" && !t()[v].streamed && t()[v].kind != YNode::Kind::kNull) {
            c_->error(v, "bindings must be a list (- deviceId: ID), found " +
                             std::string(detail::describe(t()[v].kind)));
          }
        });
  }

  void defaults(std::uint32_t m) {
    if (!c_->expect_map(m, "defaults", "with password")) return;
    c_->for_each_key(m, "defaults", {"password"}, [&](std::string_view, std::uint32_t v) {
      out_.default_written = true;
      out_.default_source = source(v);
    });
  }

  void binding(std::uint32_t item) {
    const YNode& n = t()[item];
    if (n.kind != YNode::Kind::kMap) {
      std::string msg = "a binding must be a map (- deviceId: ID), found " +
                        std::string(detail::describe(n.kind));
      if (n.kind == YNode::Kind::kScalar) {
        const std::string shown = detail::echo(n.text);
        msg += " '" + shown + "'; write '- deviceId: " + shown + "'";
      }
      c_->error(item, std::move(msg));
      return;
    }
    std::uint32_t id_node = kNone;
    std::uint32_t src = kUseDefault;
    bool bad_source = false;
    bool urn_as_key = false;
    t().for_each_pair(item, [&](std::uint32_t k, std::uint32_t v) {
      const YNode& key = t()[k];
      // `- urn:dev:IMEI:350266800610993:` parses as a map whose key is the device ID.
      if (key.kind == YNode::Kind::kScalar && t()[v].kind == YNode::Kind::kNull &&
          (starts_with_nocase(key.text, "urn:") || core::DeviceId::parse(key.text))) {
        const std::string id = detail::echo(key.text);
        c_->error(k, "device ID '" + id +
                         ":' was read as a map key: quote device IDs that end in ':' (write "
                         "- deviceId: \"" +
                         id + ":\")");
        urn_as_key = true;  // reported; no "needs a deviceId" on top
      }
    });
    if (urn_as_key) return;
    const bool known = c_->for_each_key(item, "a binding", {"deviceId", "password"},
                                        [&](std::string_view key, std::uint32_t v) {
                                          if (key == "deviceId") {
                                            id_node = v;
                                          } else {
                                            const std::uint32_t s = source(v);
                                            if (s == kNone) bad_source = true;
                                            src = s;
                                          }
                                        });
    if (id_node == kNone) {
      if (known) c_->error(item, "a binding needs a deviceId");
      return;
    }
    const YNode& id = t()[id_node];
    if (id.kind != YNode::Kind::kScalar) {
      std::string msg =
          "deviceId must be a single value, found " + std::string(detail::describe(id.kind));
      if (id.kind == YNode::Kind::kMap) msg += "; quote device IDs that end in ':'";
      c_->error(id_node, std::move(msg));
      return;
    }
    auto parsed = core::DeviceId::parse_with_reason(id.text);
    if (!parsed.id) {
      c_->error(id_node, "invalid device ID '" + detail::echo(id.text) + "': " + parsed.reason);
      return;
    }
    if (bad_source) return;
    out_.entries.push_back({core::PackedDevice(*parsed.id), src, file_index_, id.line, id.column});
  }

  // Returns the local index of the source written at `node`, or kNone after an error.
  std::uint32_t source(std::uint32_t node) {
    if (!c_->expect_map(node, "password", "with one of derive, file, env, value")) return kNone;
    PasswordSource s;
    s.file = file_index_;
    s.line = t()[node].line;
    s.column = t()[node].column;
    int kinds = 0;
    bool ok = true;
    const bool known = c_->for_each_key(
        node, "password", {"derive", "file", "env", "value"},
        [&](std::string_view key, std::uint32_t v) {
          if (++kinds > 1) return;
          if (key == "derive") {
            s.kind = PasswordSource::Kind::kDerive;
            if (!c_->expect_map(v, "derive", "with keyFile")) {
              ok = false;
              return;
            }
            bool has_key = false;
            const bool key_known =
                c_->for_each_key(v, "derive", {"keyFile"}, [&](std::string_view, std::uint32_t f) {
                  has_key = true;
                  ok = c_->expect_scalar(f, "derive.keyFile") &&
                       c_->expand_path(f, "derive.keyFile", env_, s.ref) && ok;
                });
            if (!has_key) {
              if (key_known) c_->error(v, "derive needs a keyFile (the fleet key)");
              ok = false;
            }
          } else if (key == "file") {
            s.kind = PasswordSource::Kind::kFile;
            ok = c_->expect_scalar(v, "password file") &&
                 c_->expand_path(v, "password file", env_, s.ref);
          } else if (key == "env") {
            s.kind = PasswordSource::Kind::kEnv;
            ok = c_->expect_scalar(v, "password env");
            if (ok && !valid_env_name(t()[v].text)) {
              c_->error(v,
                        "'" + detail::echo(t()[v].text) + "' is not an environment variable name");
              ok = false;
            }
            if (ok) s.ref = t()[v].text;
          } else {
            s.kind = PasswordSource::Kind::kValue;
            ok = c_->expect_scalar(v, "password value");
            if (ok) {
              s.value = core::Secret(t()[v].text);
              c_->warning(
                  v, "password is a literal value: a secret in Git; prefer derive, file or env");
            }
          }
        });
    if (kinds != 1) {
      if (kinds == 0 && !known) return kNone;
      c_->error(node, kinds == 0 ? "password needs one of derive, file, env or value"
                                 : "password must have exactly one of derive, file, env or "
                                   "value, found " +
                                       std::to_string(kinds));
      return kNone;
    }
    if (!ok) return kNone;
    if (s.kind != PasswordSource::Kind::kValue) {
      for (std::uint32_t i = 0; i < out_.sources.size(); ++i) {
        PasswordSource& seen = out_.sources[i];
        if (seen.kind != s.kind || seen.ref != s.ref) continue;
        // A shared source is where it is first written (defaults are checked last).
        if (std::tie(s.line, s.column) < std::tie(seen.line, seen.column)) {
          seen.line = s.line;
          seen.column = s.column;
        }
        return i;
      }
    }
    out_.sources.push_back(std::move(s));
    return static_cast<std::uint32_t>(out_.sources.size() - 1);
  }

  // Numbers the sources in the order they are written. Bindings are checked as they are read
  // and `defaults` only at the end, so otherwise the numbering of a file would depend on
  // whether it was parsed whole or in parts (a large file), that is, on its size and the
  // number of threads.
  void order_sources() {
    auto& sources = out_.sources;
    auto before = [&](std::uint32_t a, std::uint32_t b) {
      return std::tie(sources[a].line, sources[a].column) <
             std::tie(sources[b].line, sources[b].column);
    };
    std::vector<std::uint32_t> order(sources.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    if (std::is_sorted(order.begin(), order.end(), before)) return;
    std::stable_sort(order.begin(), order.end(), before);
    std::vector<std::uint32_t> index(sources.size());
    std::vector<PasswordSource> sorted;
    sorted.reserve(sources.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) {
      index[order[i]] = i;
      sorted.push_back(std::move(sources[order[i]]));
    }
    sources = std::move(sorted);
    for (auto& e : out_.entries) {
      if (e.source != kUseDefault) e.source = index[e.source];
    }
    if (out_.default_source != kNone) out_.default_source = index[out_.default_source];
  }

  const std::string& file_;
  std::uint32_t file_index_;
  const EnvLookup& env_;
  ChunkResult& out_;
  Checker* c_ = nullptr;
};

/// A piece of a file to parse: [begin, end) of its text, starting at line `line_offset` + 1.
struct Chunk {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::uint32_t line_offset = 0;
};

// Finds where a large file can be cut into independent parts: only when `bindings:` is the
// last top-level key and every line after it is a list item at one indentation, a line
// indented deeper, a comment or blank. A cut is made only before an item line. If a part
// then fails to parse, the whole file is parsed again in one piece.
std::vector<Chunk> split_chunks(std::string_view text, std::size_t parts) {
  std::vector<Chunk> whole{{0, text.size(), 0}};
  if (parts < 2) return whole;
  // Lines end at '\n' here. A lone '\r' is a line break to YAML as well, and a byte order
  // mark inside the text may be read differently in a part: cut no file that has either.
  for (auto cr = text.find('\r'); cr != std::string_view::npos; cr = text.find('\r', cr + 1)) {
    if (cr + 1 == text.size() || text[cr + 1] != '\n') return whole;
  }
  if (text.find("\xEF\xBB\xBF", 1) != std::string_view::npos) return whole;
  // Pass 1: the last line with content in column 0 must be "bindings:".
  std::size_t last_top = std::string_view::npos;
  std::uint32_t last_top_line = 0;
  std::uint32_t line = 0;
  for (std::size_t pos = 0; pos < text.size(); ++line) {
    const char c = text[pos];
    if (c != ' ' && c != '#' && c != '\n' && c != '\r' && c != '-') {
      last_top = pos;
      last_top_line = line;
    }
    const std::size_t nl = text.find('\n', pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  if (last_top == std::string_view::npos) return whole;
  std::string_view head = text.substr(last_top, text.find('\n', last_top) - last_top);
  if (head.rfind("bindings:", 0) != 0) return whole;
  head.remove_prefix(9);
  while (!head.empty() && (head.front() == ' ' || head.back() == '\r')) {
    head.front() == ' ' ? head.remove_prefix(1) : head.remove_suffix(1);
  }
  if (!head.empty() && head.front() != '#') return whole;

  // Pass 2: the items after it.
  const std::size_t target = text.size() / parts;
  std::vector<Chunk> chunks;
  chunks.push_back({0, 0, 0});
  std::size_t indent = std::string_view::npos;
  std::size_t pos = text.find('\n', last_top);
  line = last_top_line + 1;
  if (pos == std::string_view::npos) return whole;
  for (++pos; pos < text.size(); ++line) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view l = text.substr(pos, nl - pos);
    const std::size_t ind = l.find_first_not_of(' ');
    const bool blank = ind == std::string_view::npos || l[ind] == '\r' || l[ind] == '#';
    if (!blank) {
      const bool item =
          l[ind] == '-' && (ind + 1 == l.size() || l[ind + 1] == ' ' || l[ind + 1] == '\r');
      if (indent == std::string_view::npos) {
        if (!item) return whole;
        indent = ind;
      }
      if (ind < indent || (ind == indent && !item) || l[ind] == '\t') return whole;
      if (ind == indent && pos >= target * chunks.size() && chunks.size() < parts &&
          text.size() - pos > target / 2) {
        chunks.back().end = pos;
        chunks.push_back({pos, 0, line});
      }
    }
    pos = nl + 1;
  }
  chunks.back().end = text.size();
  return chunks.size() > 1 ? chunks : whole;
}

// Runs f(i) for i in [0, n) on up to `threads` threads; rethrows the first exception.
template <typename F>
void parallel_for(std::size_t n, unsigned threads, F&& f) {
  threads = static_cast<unsigned>(std::min<std::size_t>(std::max(1U, threads), n));
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) f(i);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

/// Shares sources: equal derive/file/env sources (same kind and reference) get one index; each
/// literal value is its own.
class SourceTable {
 public:
  explicit SourceTable(std::vector<PasswordSource>& sources) : sources_(sources) {}

  std::uint32_t add(PasswordSource s) {
    if (s.kind != PasswordSource::Kind::kValue) {
      auto [it, inserted] =
          index_.try_emplace({s.kind, s.ref}, static_cast<std::uint32_t>(sources_.size()));
      if (!inserted) return it->second;
    }
    sources_.push_back(std::move(s));
    return static_cast<std::uint32_t>(sources_.size() - 1);
  }

 private:
  std::vector<PasswordSource>& sources_;
  std::map<std::pair<PasswordSource::Kind, std::string>, std::uint32_t> index_;
};

/// Joins the chunks of one file (in order; the first holds the defaults) into its parse:
/// numbers its sources, gives the defaults to the bindings that name none.
FileParse combine_chunks(std::vector<ChunkResult>& chunks, const std::string& filename) {
  FileParse f;
  std::uint32_t default_source = kNone;
  bool default_written = false;
  if (chunks.size() == 1) {  // the chunk's numbering is the file's
    ChunkResult& c = chunks.front();
    default_written = c.default_written || !c.syntax_ok;
    default_source = c.default_source;
    f.sources = std::move(c.sources);
    f.diags = std::move(c.diags);
    f.entries = std::move(c.entries);
  } else {
    SourceTable table(f.sources);
    std::size_t total = 0;
    for (const auto& c : chunks) total += c.entries.size();
    f.entries.reserve(total);
    for (auto& c : chunks) {
      // After a syntax error the defaults may be unseen: do not blame every binding.
      default_written = default_written || c.default_written || !c.syntax_ok;
      std::vector<std::uint32_t> map(c.sources.size());
      for (std::size_t i = 0; i < c.sources.size(); ++i)
        map[i] = table.add(std::move(c.sources[i]));
      if (c.default_source != kNone) default_source = map[c.default_source];
      for (auto& d : c.diags) f.diags.push_back(std::move(d));
      for (auto& e : c.entries) {
        if (e.source != kUseDefault) e.source = map[e.source];
        f.entries.push_back(std::move(e));
      }
      c = ChunkResult{};
    }
  }
  std::size_t w = 0;
  for (std::size_t i = 0; i < f.entries.size(); ++i) {
    DesiredEntry& e = f.entries[i];
    if (e.source == kUseDefault) {
      if (default_source == kNone) {
        if (default_written) continue;  // the broken default is reported where it is
        f.diags.push_back({filename, e.line, e.column, core::Severity::kError,
                           "binding for " + e.device.unpack().canonical() +
                               " has no password source: add 'password:' to it or 'defaults: "
                               "password:' to the file"});
        continue;
      }
      e.source = default_source;
    }
    if (w != i) f.entries[w] = std::move(e);
    ++w;
  }
  f.entries.erase(f.entries.begin() + static_cast<std::ptrdiff_t>(w), f.entries.end());
  return f;
}

ChunkResult parse_chunk(std::string_view text, const std::string& filename,
                        std::uint32_t file_index, const Chunk& chunk, bool first,
                        const EnvLookup& env) {
  ChunkResult r;
  ChunkParser(filename, file_index, env, r)
      .run(text.substr(chunk.begin, chunk.end - chunk.begin), chunk.line_offset, first);
  return r;
}

// Parses a file's chunks; if a cut turns out not to parse, parses the whole file instead.
void reparse_if_cut_badly(std::string_view text, const std::string& filename,
                          std::uint32_t file_index, const EnvLookup& env,
                          std::vector<ChunkResult>& chunks) {
  if (chunks.size() < 2) return;
  const bool all_ok =
      std::all_of(chunks.begin(), chunks.end(), [](const ChunkResult& c) { return c.syntax_ok; });
  if (all_ok) return;
  chunks.clear();
  chunks.push_back(parse_chunk(text, filename, file_index, {0, text.size(), 0}, true, env));
}

std::vector<std::uint32_t> identity(std::size_t n) {
  std::vector<std::uint32_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint32_t>(i);
  return v;
}

// All entries of all parses in one vector, each parse's vector freed as it is moved.
std::vector<DesiredEntry> gather_entries(std::vector<FileParse>& parses) {
  if (parses.size() == 1) return std::move(parses.front().entries);
  std::size_t total = 0;
  for (const auto& p : parses) total += p.entries.size();
  std::vector<DesiredEntry> all;
  all.reserve(total);
  for (auto& p : parses) {
    std::move(p.entries.begin(), p.entries.end(), std::back_inserter(all));
    std::vector<DesiredEntry>().swap(p.entries);
  }
  return all;
}

}  // namespace

namespace detail {

unsigned thread_count(const LoadOptions& options) {
  return options.threads != 0 ? options.threads : std::max(1U, std::thread::hardware_concurrency());
}

bool EntryLess::operator()(const DesiredEntry& a, const DesiredEntry& b) const {
  if (const auto c = canonical_order(a.device, b.device); c != 0) return c < 0;
  return std::tuple((*rank)[a.file], a.line, a.column) <
         std::tuple((*rank)[b.file], b.line, b.column);
}

// Sorts in `threads` runs at once, then merges them.
void parallel_sort(std::vector<DesiredEntry>& v, const EntryLess& less, unsigned threads) {
  const std::size_t parts = v.size() < 100'000 ? 1 : std::max(1U, threads);
  std::vector<std::size_t> bounds;
  for (std::size_t i = 0; i <= parts; ++i) bounds.push_back(v.size() * i / parts);
  parallel_for(parts, threads, [&](std::size_t i) {
    std::sort(v.begin() + static_cast<std::ptrdiff_t>(bounds[i]),
              v.begin() + static_cast<std::ptrdiff_t>(bounds[i + 1]), less);
  });
  for (std::size_t i = 1; i < parts; ++i) {
    std::inplace_merge(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(bounds[i]),
                       v.begin() + static_cast<std::ptrdiff_t>(bounds[i + 1]), less);
  }
}

namespace {

// What a caller keeps of a file for long (its sources and diagnostics: a few dozen bytes) is
// copied on this thread. Left where a parsing thread allocated it, it would keep most of that
// thread's malloc arena resident long after the transient parse data is gone (~2 MB for 1,000
// files, measured). All copies are made before any original is freed: glibc's per-thread cache
// would hand a just-freed chunk of the same size straight back to the copy.
void rehome_kept_parts(std::vector<FileParse>& parses) {
  std::vector<FileParse> copies(parses.size());
  for (std::size_t f = 0; f < parses.size(); ++f) {
    copies[f].sources = parses[f].sources;
    copies[f].diags = parses[f].diags;
  }
  for (std::size_t f = 0; f < parses.size(); ++f) {
    copies[f].sources.swap(parses[f].sources);
    copies[f].diags.swap(parses[f].diags);
  }
}

}  // namespace

std::vector<FileParse> parse_files(const std::vector<std::string>& paths,
                                   const std::vector<std::uint32_t>& ids,
                                   const LoadOptions& options, unsigned threads) {
  const std::size_t n = paths.size();

  // Read every file and plan its chunks (in parallel: reading is I/O, planning a scan).
  std::vector<std::string> texts(n);
  std::vector<std::vector<Chunk>> plans(n);
  std::vector<std::string> read_errors(n);
  // A thread costs more than reading or parsing a few small files: a daemon's reload after a
  // one-file edit, every simulated reload (tests/simulation) run on the calling thread.
  constexpr std::size_t kFilesPerThread = 16;
  constexpr std::size_t kBytesPerThread = std::size_t{256} << 10;
  parallel_for(n, n < kFilesPerThread ? 1U : threads, [&](std::size_t i) {
    if (!detail::read_file(paths[i], texts[i], read_errors[i])) return;
    const std::size_t parts = std::min<std::size_t>(
        texts[i].size() / std::max<std::size_t>(1, options.split_bytes), 4U * threads);
    plans[i] = split_chunks(texts[i], parts);
  });

  // Parse all chunks of all files as one pool of tasks.
  std::vector<FileParse> out(n);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> tasks;  // (file, chunk)
  std::vector<std::vector<ChunkResult>> results(n);
  for (std::uint32_t f = 0; f < n; ++f) {
    if (!read_errors[f].empty()) {
      out[f].diags.push_back({paths[f], 0, 0, core::Severity::kError,
                              "cannot read desired-state file: " + read_errors[f]});
      continue;
    }
    results[f].resize(plans[f].size());
    for (std::uint32_t c = 0; c < plans[f].size(); ++c) tasks.emplace_back(f, c);
  }
  // Largest first, so that a big file's parts do not start last.
  std::stable_sort(tasks.begin(), tasks.end(), [&](const auto& a, const auto& b) {
    const Chunk& x = plans[a.first][a.second];
    const Chunk& y = plans[b.first][b.second];
    return x.end - x.begin > y.end - y.begin;
  });
  std::size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  // A caller that asks for small parts (split_bytes) wants them parsed side by side.
  const std::size_t worth_threads = std::min(kBytesPerThread, options.split_bytes);
  parallel_for(tasks.size(), bytes < worth_threads ? 1U : threads, [&](std::size_t i) {
    const auto [f, c] = tasks[i];
    results[f][c] = parse_chunk(texts[f], paths[f], ids[f], plans[f][c], c == 0, options.env);
  });

  for (std::uint32_t f = 0; f < n; ++f) {
    if (!read_errors[f].empty()) continue;
    reparse_if_cut_badly(texts[f], paths[f], ids[f], options.env, results[f]);
    std::string().swap(texts[f]);
    out[f] = combine_chunks(results[f], paths[f]);
    std::vector<ChunkResult>().swap(results[f]);
  }
  rehome_kept_parts(out);
  return out;
}

namespace {

using Numbering = DesiredBindings::Numbering;

// File ids to places, file-local sources to shared ones, in path order: the sources come out
// in order of first appearance, whichever files were parsed last. Appends the files' own
// diagnostics.
Numbering number_files(std::vector<PasswordSource>& sources, core::Diagnostics& diagnostics,
                       const std::vector<std::uint32_t>& order,
                       const std::vector<FileParse>& parses) {
  Numbering n;
  n.rank.assign(parses.size(), kNone);
  n.first_source.assign(parses.size(), 0);
  std::vector<std::vector<std::uint32_t>> source_of(parses.size());
  SourceTable table(sources);
  for (std::uint32_t r = 0; r < order.size(); ++r) {
    const std::uint32_t id = order[r];
    const auto& f = parses[id];
    n.rank[id] = r;
    source_of[id].reserve(f.sources.size());
    for (const auto& s : f.sources) {
      PasswordSource g = s;
      g.file = r;
      source_of[id].push_back(table.add(std::move(g)));
    }
    diagnostics.insert(diagnostics.end(), f.diags.begin(), f.diags.end());
  }
  for (std::size_t id = 0; id < source_of.size(); ++id) {
    n.first_source[id] = static_cast<std::uint32_t>(n.sources.size());
    n.sources.insert(n.sources.end(), source_of[id].begin(), source_of[id].end());
  }
  return n;
}

// The first entry of each device counts; each other one is reported as a duplicate of it.
// Calls keep(r) for every first entry r, after its duplicates were reported; returns how
// many were kept.
template <typename Keep>
std::size_t keep_firsts(const std::vector<std::string>& files, const Numbering& n,
                        const std::vector<DesiredEntry>& v, core::Diagnostics& diagnostics,
                        Keep&& keep) {
  auto location = [&](const auto& e) {
    return files[n.rank[e.file]] + ':' + std::to_string(e.line) + ':' + std::to_string(e.column);
  };
  std::size_t kept = 0;
  for (std::size_t r = 0; r < v.size();) {
    std::size_t s = r + 1;
    for (; s < v.size() && v[s].device == v[r].device; ++s) {
      const auto& d = v[s];
      diagnostics.push_back({files[n.rank[d.file]], d.line, d.column, core::Severity::kError,
                             "duplicate device " + d.device.unpack().canonical() +
                                 "; first listed at " + location(v[r])});
    }
    keep(r);
    ++kept;
    r = s;
  }
  return kept;
}

}  // namespace

void assemble(DesiredState& out, core::Diagnostics& diagnostics,
              const std::vector<std::uint32_t>& order, const std::vector<FileParse>& parses,
              std::shared_ptr<const std::vector<DesiredEntry>> entries) {
  auto n = std::make_shared<Numbering>(number_files(out.sources, diagnostics, order, parses));
  const auto& v = *entries;
  const std::size_t kept = keep_firsts(out.files, *n, v, diagnostics, [](std::size_t) {});
  if (kept == v.size()) {
    out.bindings = DesiredBindings(std::move(entries), std::move(n));  // shared, not copied
  } else {  // duplicates (an error): a state of its own, for the messages that name places
    std::vector<DesiredEntry> own;
    own.reserve(kept);
    core::Diagnostics again;  // the same duplicates, reported above
    keep_firsts(out.files, *n, v, again, [&](std::size_t r) {
      DesiredEntry e = v[r];
      e.source = n->source(e);
      e.file = n->rank[e.file];
      own.push_back(e);
    });
    out.bindings = DesiredBindings(std::move(own));
  }
  core::sort_diagnostics(diagnostics);
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.' && name != "." && name != "..";
}

bool is_yaml(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

void list_yaml_files(const fs::path& dir, std::vector<std::string>& files, std::error_code& ec) {
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& e = *it;
    if (is_hidden(e.path())) {
      if (e.is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    std::error_code fec;
    if (e.is_regular_file(fec) && is_yaml(e.path())) files.push_back(e.path().string());
  }
}

Discovery discover(const fs::path& path) {
  Discovery d;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    d.errors.push_back({path.string(), 0, 0, core::Severity::kError,
                        "cannot read desired state: " +
                            (ec ? ec.message() : std::string("No such file or directory"))});
    return d;
  }
  if (!fs::is_directory(status)) {
    d.kind = RootKind::kFile;
    d.files.push_back(path.string());
    return d;
  }
  d.kind = RootKind::kDirectory;
  list_yaml_files(path, d.files, ec);
  if (ec) {
    d.errors.push_back({path.string(), 0, 0, core::Severity::kError,
                        "cannot list desired-state directory: " + ec.message()});
  }
  std::sort(d.files.begin(), d.files.end());
  return d;
}

core::Diagnostic no_files_error(const fs::path& dir) {
  // An empty desired state with prune on would delete every binding: never guess that.
  return {dir.string(), 0, 0, core::Severity::kError,
          "no *.yaml or *.yml files in the desired-state directory"};
}

}  // namespace detail

std::string_view to_string(PasswordSource::Kind k) {
  switch (k) {
    case PasswordSource::Kind::kDerive:
      return "derive";
    case PasswordSource::Kind::kFile:
      return "file";
    case PasswordSource::Kind::kEnv:
      return "env";
    case PasswordSource::Kind::kValue:
      return "value";
  }
  return "?";
}

DesiredBindings::DesiredBindings(std::vector<DesiredEntry> own)
    : v_(std::make_shared<const std::vector<DesiredEntry>>(std::move(own))) {}

DesiredBindings::DesiredBindings(std::shared_ptr<const std::vector<DesiredEntry>> shared,
                                 std::shared_ptr<const Numbering> numbering)
    : v_(std::move(shared)), numbering_(std::move(numbering)) {}

DesiredEntry DesiredBindings::operator[](std::size_t i) const {
  DesiredEntry e = (*v_)[i];
  if (numbering_) {
    e.source = numbering_->source(e);  // before `file` becomes the state's index
    e.file = numbering_->rank[e.file];
  }
  return e;
}

std::size_t DesiredBindings::lower_bound(const core::PackedDevice& d) const {
  if (!v_) return 0;
  const auto it = std::lower_bound(v_->begin(), v_->end(), d,
                                   [](const DesiredEntry& e, const core::PackedDevice& x) {
                                     return canonical_order(e.device, x) < 0;
                                   });
  return static_cast<std::size_t>(it - v_->begin());
}

std::size_t DesiredBindings::find(const core::PackedDevice& d) const {
  const std::size_t i = lower_bound(d);
  return i < size() && device(i) == d ? i : size();
}

std::string DesiredState::location(const DesiredEntry& e) const {
  return files[e.file] + ':' + std::to_string(e.line) + ':' + std::to_string(e.column);
}

LoadResult parse_desired_state_file(std::string_view text, std::string_view filename,
                                    const EnvLookup& env) {
  LoadResult out;
  out.state.files.emplace_back(filename);
  std::vector<ChunkResult> chunks;
  chunks.push_back(parse_chunk(text, out.state.files[0], 0, {0, text.size(), 0}, true, env));
  std::vector<FileParse> parses;
  parses.push_back(combine_chunks(chunks, out.state.files[0]));
  const auto order = identity(1);
  auto entries = gather_entries(parses);
  detail::parallel_sort(entries, detail::EntryLess{&order}, 1);
  detail::assemble(out.state, out.diagnostics, order, parses,
                   std::make_shared<std::vector<DesiredEntry>>(std::move(entries)));
  return out;
}

LoadResult load_desired_state(const fs::path& path, const LoadOptions& options) {
  return load_desired_state(std::vector<fs::path>{path}, options);
}

LoadResult load_desired_state(const std::vector<fs::path>& paths, const LoadOptions& options) {
  LoadResult out;
  const unsigned threads = detail::thread_count(options);
  // The files of every path in one list, so that one assembly sees them all (duplicates
  // across paths included). A file that an earlier path already gave is not read twice.
  std::set<std::pair<dev_t, ino_t>> given;
  for (const auto& path : paths) {
    auto found = detail::discover(path);
    if (found.kind == detail::RootKind::kDirectory && found.files.empty() &&
        found.errors.empty()) {
      found.errors.push_back(detail::no_files_error(path));
    }
    std::move(found.errors.begin(), found.errors.end(), std::back_inserter(out.diagnostics));
    std::vector<std::pair<dev_t, ino_t>> mine;
    for (auto& f : found.files) {
      struct stat st {};
      if (paths.size() > 1 && ::stat(f.c_str(), &st) == 0) {
        if (given.count({st.st_dev, st.st_ino}) != 0) continue;
        mine.emplace_back(st.st_dev, st.st_ino);
      }
      out.state.files.push_back(std::move(f));
    }
    given.insert(mine.begin(), mine.end());
  }
  const auto order = identity(out.state.files.size());
  auto parses = detail::parse_files(out.state.files, order, options, threads);
  auto entries = gather_entries(parses);
  detail::parallel_sort(entries, detail::EntryLess{&order}, threads);
  detail::assemble(out.state, out.diagnostics, order, parses,
                   std::make_shared<std::vector<DesiredEntry>>(std::move(entries)));
  return out;
}

}  // namespace thingsync::config
