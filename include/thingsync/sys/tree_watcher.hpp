#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <filesystem>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace thingsync::sys {

/// What changed under a watched tree since the last call.
struct TreeChanges {
  std::vector<std::filesystem::path> paths;  ///< files (and directories) touched, deduplicated
  bool overflow = false;  ///< the kernel dropped events: treat everything as changed
};

/// Watches a desired-state tree with inotify: a directory recursively (directories created
/// later are added as they appear), or one file (through its parent directory, so that
/// editors that write a temp file and rename it over the original are seen). Not thread-safe:
/// use it from the io_context thread.
class TreeWatcher {
 public:
  /// Throws std::system_error when inotify cannot be set up.
  TreeWatcher(boost::asio::any_io_executor ex, std::filesystem::path root);
  ~TreeWatcher();
  TreeWatcher(const TreeWatcher&) = delete;
  TreeWatcher& operator=(const TreeWatcher&) = delete;

  /// Waits until something changes, then returns what changed in the events read so far.
  boost::asio::awaitable<TreeChanges> next();
  /// Makes a pending next() return (with no changes); later calls return at once.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsync::sys
