// DesiredStateLoader: keeps each file's parse and one sorted vector of every file's entries
// (duplicates included), so that a reload parses only the changed files, splices their entries
// into the vector and re-assembles the result with the code load_desired_state uses.

#include <sys/stat.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "desired_state_impl.hpp"
#include "thingsync/config/desired_state.hpp"
#include "yaml_tree.hpp"

namespace thingsync::config {
namespace {

namespace fs = std::filesystem;
using detail::FileParse;
using detail::kNone;
using detail::RootKind;

/// Enough of stat(2) to tell that a file was replaced or written since it was parsed.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  timespec ctime{};

  static FileStamp of(const std::string& path) {
    FileStamp s;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return s;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime = st.st_mtim;
    s.ctime = st.st_ctim;
    return s;
  }
  friend bool operator==(const FileStamp& a, const FileStamp& b) {
    return a.size >= 0 && a.dev == b.dev && a.ino == b.ino && a.size == b.size &&
           a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec &&
           a.ctime.tv_sec == b.ctime.tv_sec && a.ctime.tv_nsec == b.ctime.tv_nsec;
  }
};

/// What the root resolves to: its canonical path, and the inode of the directory it is (or,
/// for a file, the directory it is in). Another checkout behind a swapped symbolic link, or a
/// directory replaced by another, gives another identity; a file root that an editor replaces
/// (writes a copy, renames it over) does not: that is an edit of the file.
struct RootIdentity {
  std::string canonical;  ///< empty when the root does not resolve
  dev_t dev = 0;
  ino_t ino = 0;

  static RootIdentity of(const fs::path& root) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(root, ec);
    if (ec) return {};
    const bool dir = fs::is_directory(canonical, ec);
    const FileStamp s = FileStamp::of((dir ? canonical : canonical.parent_path()).string());
    return {canonical.string(), s.dev, s.ino};
  }
  friend bool operator==(const RootIdentity&, const RootIdentity&) = default;
};

/// How often a load starts over because the root was swapped while it was read.
constexpr int kLoadAttempts = 3;

RootKind kind_of(const fs::path& p) {
  std::error_code ec;
  const auto st = fs::status(p, ec);
  if (ec || !fs::exists(st)) return RootKind::kMissing;
  return fs::is_directory(st) ? RootKind::kDirectory : RootKind::kFile;
}

std::string without_trailing_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

class DesiredStateLoader::Impl {
 public:
  Impl(fs::path root, LoadOptions options)
      : root_(std::move(root)),
        options_(std::move(options)),
        threads_(detail::thread_count(options_)) {
    std::error_code ec;
    root_abs_ = fs::absolute(without_trailing_slashes(root_.string()), ec).lexically_normal();
  }

  // Loads everything; again when the root was swapped during the load, so that a result
  // never mixes two trees (after kLoadAttempts, an error: the caller keeps its last state).
  ReloadResult load_all() {
    const std::optional<RootIdentity> before = root_id_;
    for (int attempt = 1;; ++attempt) {
      const RootIdentity id = RootIdentity::of(root_);
      ReloadResult rr = load_everything();
      root_id_ = id;  // a swap during the load makes the next reload a full one too
      rr.root_changed = before && *before != id;
      if (RootIdentity::of(root_) == id) return rr;
      if (attempt == kLoadAttempts) {
        rr.result.diagnostics.push_back({root_.string(), 0, 0, core::Severity::kError,
                                  "the desired-state path was replaced while it was read, " +
                                      std::to_string(kLoadAttempts) + " times; not loaded"});
        core::sort_diagnostics(rr.result.diagnostics);
        return rr;
      }
    }
  }

  ReloadResult reload(const std::vector<fs::path>& changed) {
    if (!loaded_ || !root_errors_.empty() || kind_of(root_) != root_kind_ || !root_id_ ||
        RootIdentity::of(root_) != *root_id_) {
      return load_all();
    }
    // What to re-parse and what to drop, by name (as load_desired_state names files).
    std::map<std::string, bool> todo;  // name -> parse (true) or drop (false)
    if (root_kind_ == RootKind::kFile) {
      if (!changed.empty()) todo.emplace(root_.string(), true);
    } else {
      for (const auto& p : changed) {
        if (!plan(p, todo)) return load_all();  // a directory could not be listed
      }
    }
    auto rr = apply(todo);
    if (RootIdentity::of(root_) != *root_id_) return load_all();  // swapped meanwhile
    return rr;
  }

 private:
  ReloadResult load_everything() {
    ReloadResult rr;
    rr.full = true;
    loaded_ = false;
    parses_.clear();
    stamps_.clear();
    names_.clear();
    free_.clear();
    by_name_.clear();
    entries_ = std::make_shared<std::vector<DesiredEntry>>();
    auto& all = *entries_;

    auto found = detail::discover(root_);
    root_kind_ = found.kind;
    root_errors_ = std::move(found.errors);
    const std::size_t n = found.files.size();
    std::vector<std::uint32_t> ids(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      ids[i] = i;
      by_name_.emplace(found.files[i], i);
      stamps_.push_back(FileStamp::of(found.files[i]));
    }
    parses_ = detail::parse_files(found.files, ids, options_, threads_);
    names_ = std::move(found.files);
    rr.files_parsed = n;

    std::size_t total = 0;
    for (const auto& p : parses_) total += p.entries.size();
    all.reserve(total + total / 64);  // room for a fleet that grows a little
    for (auto& p : parses_) {
      all.insert(all.end(), p.entries.begin(), p.entries.end());
      std::vector<DesiredEntry>().swap(p.entries);
    }
    update_order();
    detail::parallel_sort(all, detail::EntryLess{&rank_}, threads_);
    loaded_ = true;
    assemble(rr);
    return rr;
  }

  // Decides what the change of `p` means; false when a directory cannot be listed.
  bool plan(const fs::path& p, std::map<std::string, bool>& todo) {
    std::error_code ec;
    const fs::path abs = fs::absolute(without_trailing_slashes(p.string()), ec).lexically_normal();
    const fs::path rel = abs.lexically_relative(root_abs_);
    if (ec || rel.empty() || *rel.begin() == "..") return true;  // outside the tree
    const bool whole = rel == ".";
    // The name the directory walk gives it, and whether the walk reaches it at all: hidden
    // entries are skipped and symbolic links to directories are not followed.
    fs::path name = root_;
    bool reachable = true;
    if (!whole) {
      std::size_t depth = 0;
      const std::size_t parts = static_cast<std::size_t>(std::distance(rel.begin(), rel.end()));
      for (const auto& part : rel) {
        if (is_hidden_name(part)) return true;  // ignored, like the walk ignores it
        name /= part;
        if (++depth < parts && reachable && !fs::is_directory(fs::symlink_status(name, ec))) {
          reachable = false;
        }
      }
    }
    const std::string key = whole ? std::string() : name.string();

    std::vector<std::string> now;  // the YAML files at or under p on disk
    bool named_file = false;
    if (reachable) {
      if (whole || fs::is_directory(fs::symlink_status(name, ec))) {
        detail::list_yaml_files(name, now, ec);
        if (ec) return false;
      } else if (fs::is_regular_file(fs::status(name, ec)) && detail::is_yaml(name)) {
        now.push_back(key);
        named_file = true;
      }
    }
    std::sort(now.begin(), now.end());

    // Known files at or under p that are gone.
    const std::string under = whole ? std::string() : key + '/';
    for (auto it = whole ? by_name_.begin() : by_name_.lower_bound(key); it != by_name_.end();
         ++it) {
      if (!whole && it->first != key && !starts_with(it->first, under)) {
        if (it->first > under) break;
        continue;  // e.g. "a.yaml.bak" between "a.yaml" and "a.yaml/"
      }
      if (!std::binary_search(now.begin(), now.end(), it->first))
        todo.try_emplace(it->first, false);
    }
    // Files on disk: new ones, the one named, and those that changed since they were parsed.
    for (auto& f : now) {
      const auto known = by_name_.find(f);
      const bool parse =
          named_file || known == by_name_.end() || !(FileStamp::of(f) == stamps_[known->second]);
      if (parse) todo[f] = true;
    }
    return true;
  }

  static bool is_hidden_name(const fs::path& part) {
    const std::string s = part.string();
    return !s.empty() && s[0] == '.' && s != "." && s != "..";
  }

  ReloadResult apply(const std::map<std::string, bool>& todo) {
    ReloadResult rr;
    if (todo.empty()) {
      assemble(rr);
      return rr;
    }
    loaded_ = false;  // until the cache is whole again: after a throw, start over
    // Find the entries of every file that is dropped or parsed again.
    std::vector<char> touched(parses_.size(), 0);
    for (const auto& [name, parse] : todo) {
      if (const auto it = by_name_.find(name); it != by_name_.end()) touched[it->second] = 1;
    }
    const auto& all = writable_entries();
    std::vector<std::size_t> old;  // where their entries are in entries_
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (touched[all[i].file]) old.push_back(i);
    }

    // Update the file table; parse what is to be parsed.
    std::vector<std::string> paths;
    std::vector<std::uint32_t> ids;
    for (const auto& [name, parse] : todo) {
      const auto it = by_name_.find(name);
      if (!parse) {
        if (it == by_name_.end()) continue;
        parses_[it->second] = FileParse{};
        names_[it->second].clear();
        free_.push_back(it->second);
        by_name_.erase(it);
        continue;
      }
      std::uint32_t id = 0;
      if (it != by_name_.end()) {
        id = it->second;
      } else if (!free_.empty()) {
        id = free_.back();
        free_.pop_back();
      } else {
        id = static_cast<std::uint32_t>(parses_.size());
        parses_.emplace_back();
        stamps_.emplace_back();
        names_.emplace_back();
      }
      by_name_[name] = id;
      names_[id] = name;
      stamps_[id] = FileStamp::of(name);  // before reading: a later write shows as a change
      paths.push_back(name);
      ids.push_back(id);
    }
    auto parsed = detail::parse_files(paths, ids, options_, threads_);
    rr.files_parsed = paths.size();
    update_order();

    std::vector<DesiredEntry> fresh;
    for (std::size_t i = 0; i < parsed.size(); ++i) {
      for (const auto& e : parsed[i].entries) {
        fresh.push_back(e);
        rr.affected.push_back(e.device.unpack());
      }
      parsed[i].entries = {};
      parses_[ids[i]] = std::move(parsed[i]);
    }
    splice(old, fresh, rr.affected);

    std::sort(rr.affected.begin(), rr.affected.end());
    rr.affected.erase(std::unique(rr.affected.begin(), rr.affected.end()), rr.affected.end());
    loaded_ = true;
    assemble(rr);
    return rr;
  }

  // Replaces the entries at `old` (ascending positions in entries_) by `fresh`; the replaced
  // devices go to `gone`.
  void splice(const std::vector<std::size_t>& old, std::vector<DesiredEntry>& fresh,
              std::vector<core::DeviceId>& gone) {
    auto& all = writable_entries();
    const detail::EntryLess less{&rank_};
    std::sort(fresh.begin(), fresh.end(), less);
    // An edit that keeps the file's devices (passwords changed, say) keeps every place in
    // entries_: swap the entries in place and check the order around them.
    if (old.size() == fresh.size()) {
      for (std::size_t k = 0; k < old.size(); ++k) std::swap(all[old[k]], fresh[k]);
      const bool sorted = std::all_of(old.begin(), old.end(), [&](std::size_t p) {
        return (p == 0 || less(all[p - 1], all[p])) &&
               (p + 1 == all.size() || less(all[p], all[p + 1]));
      });
      if (sorted) {
        for (const auto& e : fresh) gone.push_back(e.device.unpack());
        return;
      }
      for (std::size_t k = 0; k < old.size(); ++k) std::swap(all[old[k]], fresh[k]);
    }
    // Else take the old entries out, then merge the new ones in: two linear passes.
    if (!old.empty()) {
      std::size_t w = old.front();
      std::size_t next = 0;
      for (std::size_t r = old.front(); r < all.size(); ++r) {
        if (next < old.size() && old[next] == r) {
          gone.push_back(all[r].device.unpack());
          ++next;
          continue;
        }
        if (w != r) all[w] = std::move(all[r]);
        ++w;
      }
      all.erase(all.begin() + static_cast<std::ptrdiff_t>(w), all.end());
    }
    const std::size_t kept = all.size();
    if (all.capacity() < kept + fresh.size()) {
      const std::size_t want = kept + fresh.size();
      all.reserve(want + want / 64);
    }
    std::move(fresh.begin(), fresh.end(), std::back_inserter(all));
    std::inplace_merge(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(kept), all.end(),
                       less);
  }

  // Files in path order (by_name_ is sorted as the directory walk's result is).
  void update_order() {
    order_.clear();
    rank_.assign(parses_.size(), kNone);
    for (const auto& [name, id] : by_name_) {
      rank_[id] = static_cast<std::uint32_t>(order_.size());
      order_.push_back(id);
    }
  }

  void assemble(ReloadResult& rr) {
    auto& out = rr.result.state;
    auto& diagnostics = rr.result.diagnostics;
    out.files.clear();
    out.sources.clear();
    diagnostics = root_errors_;
    if (root_kind_ == RootKind::kDirectory && by_name_.empty() && root_errors_.empty()) {
      diagnostics.push_back(detail::no_files_error(root_));
    }
    out.files.reserve(order_.size());
    for (const std::uint32_t id : order_) out.files.push_back(names_[id]);
    if (!entries_) entries_ = std::make_shared<std::vector<DesiredEntry>>();
    detail::assemble(out, diagnostics, order_, parses_, entries_);
  }

  fs::path root_;
  fs::path root_abs_;  // absolute and lexically normal: where changed paths are placed
  LoadOptions options_;
  unsigned threads_;
  bool loaded_ = false;
  RootKind root_kind_ = RootKind::kMissing;
  std::optional<RootIdentity> root_id_;  // what the root resolved to at the last load
  core::Diagnostics root_errors_;  // a missing root or an unlistable tree: reload = load_all

  // Per file id: its parse (entries moved to entries_), when it was read, its name ("" when free).
  std::vector<FileParse> parses_;
  std::vector<FileStamp> stamps_;
  std::vector<std::string> names_;
  std::vector<std::uint32_t> free_;
  std::map<std::string, std::uint32_t> by_name_;  // the files now, in path order
  std::vector<std::uint32_t> order_;              // ids in path order
  std::vector<std::uint32_t> rank_;               // id -> place in path order
  // Every valid entry of every file, duplicates included, sorted by EntryLess over rank_;
  // `file` is the file id and `source` indexes that file's sources (36 bytes an entry).
  // Shared with the results made from it (their bindings): a daemon holds one copy of its
  // fleet, not two. Copied before a change while a result still holds it.
  std::shared_ptr<std::vector<DesiredEntry>> entries_;

  std::vector<DesiredEntry>& writable_entries() {
    if (!entries_) {
      entries_ = std::make_shared<std::vector<DesiredEntry>>();
    } else if (entries_.use_count() > 1) {
      auto copy = std::make_shared<std::vector<DesiredEntry>>();
      copy->reserve(entries_->size() + entries_->size() / 64);
      copy->assign(entries_->begin(), entries_->end());
      entries_ = std::move(copy);
    }
    return *entries_;
  }
};

DesiredStateLoader::DesiredStateLoader(fs::path root, LoadOptions options)
    : impl_(std::make_unique<Impl>(std::move(root), std::move(options))) {}
DesiredStateLoader::~DesiredStateLoader() = default;
DesiredStateLoader::DesiredStateLoader(DesiredStateLoader&&) noexcept = default;
DesiredStateLoader& DesiredStateLoader::operator=(DesiredStateLoader&&) noexcept = default;

ReloadResult DesiredStateLoader::load_all() { return impl_->load_all(); }

ReloadResult DesiredStateLoader::reload(const std::vector<fs::path>& changed) {
  return impl_->reload(changed);
}

}  // namespace thingsync::config
