#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace thingsync::sys {

/// What changed under a watched tree since the last call.
struct TreeChanges {
  /// Files (and directories) touched, deduplicated, named under the root as it was given
  /// (through its symbolic links, not where they lead). Holds the root itself when
  /// `root_changed`.
  std::vector<std::filesystem::path> paths;
  bool overflow = false;  ///< the kernel dropped events: treat everything as changed
  /// The root resolves to another directory or file than before: a symbolic link on its way
  /// was swapped (`ln -s new tmp && mv -T tmp root`), the directory was replaced by another
  /// (`mv root root.bak && mv new root`), or the root appeared or vanished. The watcher has
  /// dropped its watches of the old tree and watches the new one: load everything again.
  bool root_changed = false;
  /// Directories that could not be watched since the last report, one line each, naming the
  /// path and the error (ENOSPC: the fs.inotify.max_user_watches limit is reached). Changes
  /// there go unseen until a full reload: log them as warnings.
  std::vector<std::string> warnings;

  /// Whether the caller must load everything again rather than just `paths`.
  bool full() const { return overflow || root_changed; }
};

/// Watches a desired-state tree with inotify: a directory recursively (directories created
/// later are added as they appear), or one file (through the directory it resolves into, so
/// that editors that write a temp file and rename it over the original are seen).
///
/// The root is resolved again whenever it may have changed: the directory holding the root's
/// name, and the directory holding each symbolic link on the way to it, are watched for that
/// name being created, deleted or renamed, and the root directory for being deleted or moved
/// itself. When the root then resolves elsewhere (see TreeChanges::root_changed) the watcher
/// re-arms on the new tree and reports it. Not thread-safe: use it from the io_context thread.
class TreeWatcher {
 public:
  /// Throws std::system_error when inotify cannot be set up. Directories that cannot be
  /// watched are not an error: see take_warnings().
  TreeWatcher(boost::asio::any_io_executor ex, std::filesystem::path root);
  ~TreeWatcher();
  TreeWatcher(const TreeWatcher&) = delete;
  TreeWatcher& operator=(const TreeWatcher&) = delete;

  /// Waits until something changes, then returns what changed in the events read so far
  /// (with any warnings not yet reported).
  boost::asio::awaitable<TreeChanges> next();
  /// The backstop for events the kernel never delivered (a swap further up the path than the
  /// watched links, a watch that could not be added): resolves the root again now and, when
  /// it resolves elsewhere, re-arms and returns root_changed (with the root in `paths`), as
  /// next() would have. Otherwise returns no change (but any warnings not yet reported).
  /// Cheap (a stat and a realpath), meant to be called on a timer. A change it reports is
  /// not reported again by next(). May be called while next() is waiting.
  TreeChanges check_root();
  /// The warnings not yet reported (the constructor's, say), each once.
  std::vector<std::string> take_warnings();
  /// Makes a pending next() return (with no changes); later calls return at once.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsync::sys
