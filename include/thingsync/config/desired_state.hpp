#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/config/env.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/diagnostic.hpp"
#include "thingsync/core/packed.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::config {

/// Where a binding's password comes from (docs/reference.md, "Desired state").
struct PasswordSource {
  enum class Kind : std::uint8_t { kDerive, kFile, kEnv, kValue };
  Kind kind = Kind::kDerive;
  /// kDerive: the fleet key file; kFile: the password file (both resolved paths);
  /// kEnv: the variable name; kValue: empty.
  std::string ref;
  core::Secret value;  ///< kValue only
  /// Where the source is first written (an index into DesiredState::files, 1-based line/column).
  std::uint32_t file = 0;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};
std::string_view to_string(PasswordSource::Kind k);

/// One desired binding, in 36 bytes: the device packed (no heap string), the rest indices.
/// A fleet of a million fits in ~36 MB.
struct DesiredEntry {
  core::PackedDevice device;
  std::uint32_t source = 0;  ///< index into DesiredState::sources
  std::uint32_t file = 0;    ///< index into DesiredState::files
  std::uint32_t line = 0;    ///< of the deviceId value, 1-based
  std::uint32_t column = 0;
};

/// The bindings of a DesiredState: sorted by device (canonical order), each device once.
/// Read-only and cheap to copy. The entries may be shared with the loader that made them, in
/// its numbering (file ids and file-local source indices, translated on access), so that a
/// long-running process holds one copy of its fleet instead of two.
class DesiredBindings {
 public:
  /// How a loader's file ids and file-local source indices become a state's indices.
  struct Numbering {
    std::vector<std::uint32_t> rank;          ///< file id -> index into DesiredState::files
    std::vector<std::uint32_t> first_source;  ///< file id -> where its sources start in `sources`
    std::vector<std::uint32_t> sources;       ///< -> index into DesiredState::sources
    /// The state's source index of entry `e` (in the loader's numbering).
    std::uint32_t source(const DesiredEntry& e) const {
      return sources[first_source[e.file] + e.source];
    }
  };

  /// Walks the entries in order, giving each by value (in the state's numbering).
  class const_iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = DesiredEntry;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = DesiredEntry;
    const_iterator() = default;
    const_iterator(const DesiredBindings* b, std::size_t i) : b_(b), i_(i) {}
    DesiredEntry operator*() const { return (*b_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator was = *this;
      ++i_;
      return was;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.i_ == b.i_;
    }

   private:
    const DesiredBindings* b_ = nullptr;
    std::size_t i_ = 0;
  };

  DesiredBindings() = default;
  /// Entries in the state's numbering, owned; they must be sorted by device, each once.
  explicit DesiredBindings(std::vector<DesiredEntry> own);
  /// Entries in a loader's numbering, shared with it.
  DesiredBindings(std::shared_ptr<const std::vector<DesiredEntry>> shared,
                  std::shared_ptr<const Numbering> numbering);

  std::size_t size() const { return v_ ? v_->size() : 0; }
  bool empty() const { return size() == 0; }
  /// Entry `i`, in the state's numbering.
  DesiredEntry operator[](std::size_t i) const;
  const core::PackedDevice& device(std::size_t i) const { return (*v_)[i].device; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size()}; }
  /// The first index whose device is not before `d` in canonical order; size() if none.
  std::size_t lower_bound(const core::PackedDevice& d) const;
  /// The index of `d`'s entry; size() when there is none.
  std::size_t find(const core::PackedDevice& d) const;
  /// True when both hold the same entries in memory (not a copy).
  bool shares_entries(const DesiredBindings& other) const { return v_ && v_ == other.v_; }

 private:
  std::shared_ptr<const std::vector<DesiredEntry>> v_;
  std::shared_ptr<const Numbering> numbering_;  ///< null: `v_` is in the state's numbering
};

/// Everything the desired-state files say: the one form of the desired state, which
/// `validate`, `plan`, `apply` and the daemon all use. Sources are shared: a file's
/// `defaults.password` is one entry for all its bindings, and equal derive/file/env sources
/// across files are one entry.
struct DesiredState {
  std::vector<std::string> files;
  std::vector<PasswordSource> sources;
  DesiredBindings bindings;  ///< sorted by device (canonical order), each device once

  /// "file:line:column" of a binding, for messages.
  std::string location(const DesiredEntry& e) const;
};

struct LoadResult {
  DesiredState state;
  core::Diagnostics diagnostics;  ///< sorted by file, line, column; errors and warnings
  bool ok() const { return !core::has_errors(diagnostics); }
};

/// Parses one desired-state file's text (pure). `filename` names it in diagnostics and is the
/// base for relative paths: a relative `keyFile:` or `file:` path is resolved against the
/// directory of the file it is written in. A path that starts with `${VAR}` is taken as the
/// variable gives it (absolute, or relative to the working directory, like any shell path).
///
/// Format: a map with optional `defaults: {password: SOURCE}` and `bindings: [{deviceId: ID,
/// password: SOURCE?}, ...]`; SOURCE is a map with exactly one of `derive: {keyFile: PATH}`,
/// `file: PATH`, `env: NAME`, `value: LITERAL` (a warning: a secret in Git). An empty file is a
/// warning (it declares nothing). YAML anchors may be set but aliases are rejected.
LoadResult parse_desired_state_file(std::string_view text, std::string_view filename,
                                    const EnvLookup& env);

struct LoadOptions {
  EnvLookup env = process_env();
  unsigned threads = 0;  ///< 0: std::thread::hardware_concurrency()
  /// A file larger than this is parsed in parts of about this size, on several threads.
  std::size_t split_bytes = std::size_t{4} << 20;
};

/// Loads a directory (recursively: every *.yaml / *.yml, hidden files and directories such as
/// .git skipped, sorted by path) or one file. Files are read and parsed in parallel; a large
/// file is split at top-level `bindings` items and its parts parsed in parallel too. A device
/// listed twice (any spelling, any file) is an error at the later place naming the first.
LoadResult load_desired_state(const std::filesystem::path& path, const LoadOptions& options = {});
/// Loads several paths (directories or files, as above) as one desired state: their files in
/// the order the paths are given, each path's sorted as above. A device listed under two paths
/// is a duplicate as within one directory: an error at the later place naming the first. A
/// file that an earlier path already gave (the same file, in any spelling) is read once.
LoadResult load_desired_state(const std::vector<std::filesystem::path>& paths,
                              const LoadOptions& options = {});

/// What DesiredStateLoader gives on each call.
struct ReloadResult {
  /// The whole desired state, exactly as load_desired_state(root) would give it now: every
  /// file's entries, sources and diagnostics, those of files not parsed again included.
  LoadResult result;
  /// Sorted, each once: the devices whose entry (presence, source or location) may differ
  /// from the previous call's result -- every device a re-parsed or removed file listed before
  /// or lists now (a device whose duplicate status changed is always one of them). Empty when
  /// `full`.
  std::vector<core::DeviceId> affected;
  /// Everything was read again (load_all, or a reload that had to start over): treat every
  /// device as affected.
  bool full = false;
  /// The root resolves to another directory or file than at the previous load (a symbolic
  /// link swapped to a new checkout, a directory replaced by another, the root appeared or
  /// vanished), so everything was read again: `full` is set too. False at the first load.
  bool root_changed = false;
  std::size_t files_parsed = 0;  ///< files this call read and parsed
};

/// Loads a desired-state tree (a directory or one file, as load_desired_state does), keeps
/// each file's parse, and on reload parses only the files that changed: a one-file edit in a
/// million-binding tree costs that file's parse plus a splice of its entries.
/// All-or-nothing stays the caller's business (keep the last good state when `result` has
/// errors); the loader always follows the files on disk, so fixing a broken file recovers.
///
/// The root is resolved again on every call: what it resolves to (its canonical path, and the
/// device and inode of the directory it names, or for a file the directory holding it) is
/// compared with the last load's, so that a symbolic link swapped to a new checkout
/// (`ln -s new tmp && mv -T tmp root`) or a directory replaced by another
/// (`mv root root.bak && mv new root`) is loaded in full (`full` and `root_changed`),
/// whatever paths the caller passes. A file root replaced in its directory (an editor's
/// rename over it) is an edit: reloaded when reported, like any change of it. Files are read through the
/// root as given, so their names stay the same across a swap. A load during which the root
/// is replaced starts over; when that happens three times in a row, the result has an error
/// (and the next call loads in full again).
/// Not thread-safe: one owner calls it.
class DesiredStateLoader {
 public:
  explicit DesiredStateLoader(std::filesystem::path root, LoadOptions options = {});
  ~DesiredStateLoader();
  DesiredStateLoader(DesiredStateLoader&&) noexcept;
  DesiredStateLoader& operator=(DesiredStateLoader&&) noexcept;

  /// Discovers and parses every file (full = true).
  ReloadResult load_all();
  /// `changed`: paths a file watcher reported (files created, written, deleted or renamed
  /// away/in; a directory means "rescan it": its new files and those whose size, times or
  /// inode changed are parsed, its vanished ones dropped; the root itself rescans all).
  /// Re-parses those files, drops the entries of deleted ones, keeps every other file's parse,
  /// and re-merges. Hidden paths, non-YAML files and paths outside the root are ignored. When
  /// the root is one file, any change re-parses it. Falls back to load_all() before the first
  /// load, when the root appeared, vanished, changed type or resolves to another directory or
  /// file than at the last load, or when a directory cannot be listed. `changed` may be empty:
  /// the result is then the same state again (nothing parsed), unless the root changed.
  ReloadResult reload(const std::vector<std::filesystem::path>& changed);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsync::config
