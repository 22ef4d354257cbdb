#include "thingsync/sys/tree_watcher.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <string>
#include <system_error>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace thingsync::sys {
namespace net = boost::asio;
namespace fs = std::filesystem;

namespace {
// A directory of the tree: every change of what its files say.
constexpr std::uint32_t kDirMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |
                                   IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF |
                                   IN_MOVE_SELF | IN_ONLYDIR;
// A directory holding a name on the way to the root: that name appearing, vanishing or
// renamed, and the directory itself going away.
constexpr std::uint32_t kNameEvents = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
constexpr std::uint32_t kSelfEvents = IN_DELETE_SELF | IN_MOVE_SELF;
constexpr std::uint32_t kWayMask = kNameEvents | kSelfEvents | IN_ONLYDIR;
// Warnings kept for one report; the rest are counted (a tree over the watch limit fails on
// every directory).
constexpr std::size_t kMaxWarnings = 8;

bool hidden(const fs::path& p) {
  const auto name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// Where the root resolves, which decides what is watched: the canonical path, and the inode
// of the directory watched (the root, or the directory a file root is in).
struct Resolution {
  enum class Kind : std::uint8_t { kMissing, kFile, kDirectory };
  Kind kind = Kind::kMissing;
  fs::path canonical;
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const Resolution&, const Resolution&) = default;
};

Resolution resolve(const fs::path& root) {
  std::error_code ec;
  fs::path canonical = fs::canonical(root, ec);
  struct stat st {};
  if (ec || ::stat(canonical.c_str(), &st) != 0) return {};
  const bool dir = S_ISDIR(st.st_mode);
  if (!dir && ::stat(canonical.parent_path().c_str(), &st) != 0) return {};
  return {dir ? Resolution::Kind::kDirectory : Resolution::Kind::kFile, std::move(canonical),
          st.st_dev, st.st_ino};
}

// The directories whose entries lead to the root, each with the name it holds: the root's
// parent, and the parent of every symbolic link among the root's ancestors.
std::vector<std::pair<fs::path, std::string>> ways_to(const fs::path& root) {
  std::vector<std::pair<fs::path, std::string>> out;
  std::error_code ec;
  fs::path abs = fs::absolute(root, ec).lexically_normal();
  if (!abs.has_filename()) abs = abs.parent_path();  // "fleet/"
  if (ec || !abs.has_filename()) return out;
  out.emplace_back(abs.parent_path(), abs.filename().string());
  fs::path prefix = abs.root_path();
  for (const auto& part : abs.parent_path().relative_path()) {
    prefix /= part;
    if (fs::is_symlink(prefix, ec)) out.emplace_back(prefix.parent_path(), part.string());
  }
  return out;
}
}  // namespace

struct TreeWatcher::Impl {
  // One inotify watch: one directory, watched for one or more reasons.
  struct Watch {
    fs::path dir;                    // a directory of the tree, named under the root as given
    std::string only;                // the directory of a file root: that file's name here
    std::vector<std::string> names;  // names on the way to the root that this directory holds
    bool root = false;               // the root directory, or the one a file root is in
  };

  Impl(net::any_io_executor ex, fs::path r) : root(std::move(r)), stream(ex) {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    stream.assign(fd);
    arm();
  }

  // Drops every watch and watches what the root resolves to now, and the way to it.
  void arm() {
    for (const auto& [wd, w] : watches) ::inotify_rm_watch(stream.native_handle(), wd);
    watches.clear();
    resolved = resolve(root);
    if (resolved.kind == Resolution::Kind::kDirectory) {
      if (Watch* w = add_tree(root)) w->root = true;
    } else if (resolved.kind == Resolution::Kind::kFile) {
      // Where the file resolves: a symbolic link's target is the file that is edited.
      if (Watch* w = add(resolved.canonical.parent_path(), kDirMask)) {
        w->only = resolved.canonical.filename().string();
        w->root = true;
      }
    }
    for (auto& [dir, name] : ways_to(root)) {
      if (Watch* w = add(dir, kWayMask)) w->names.push_back(std::move(name));
    }
  }

  // Re-arms when the root resolves elsewhere than at the last arming, and says so in `out`.
  void recheck_root(TreeChanges& out) {
    if (resolve(root) == resolved) return;
    arm();
    out.root_changed = true;
    out.paths.push_back(root);
  }

  // One directory may be watched for several reasons: the masks add up (IN_MASK_ADD).
  Watch* add(const fs::path& dir, std::uint32_t mask) {
    const int wd = ::inotify_add_watch(stream.native_handle(), dir.c_str(), mask | IN_MASK_ADD);
    if (wd < 0) {
      warn(dir, errno);
      return nullptr;
    }
    return &watches[wd];
  }

  void warn(const fs::path& dir, int err) {
    if (warnings.size() >= kMaxWarnings) {
      ++unreported;
      return;
    }
    const char* why = err == ENOSPC ? " (the limit fs.inotify.max_user_watches is reached)" : "";
    warnings.push_back("cannot watch " + dir.string() + ": " +
                       std::generic_category().message(err) + why +
                       "; changes there are seen by a full reload only");
  }

  std::vector<std::string> take_warnings() {
    if (unreported > 0) {
      warnings.push_back("cannot watch " + std::to_string(unreported) + " more directories");
      unreported = 0;
    }
    return std::exchange(warnings, {});
  }

  // Watches `dir` and the directories under it; hidden ones (.git) are skipped, as the loader
  // skips them. Returns the watch of `dir` (null when it could not be watched).
  Watch* add_tree(const fs::path& dir, std::vector<fs::path>* found = nullptr) {
    Watch* top = add(dir, kDirMask);
    if (top) top->dir = dir;
    std::error_code ec;
    const auto options = fs::directory_options::skip_permission_denied;
    for (fs::recursive_directory_iterator it(dir, options, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) {
        if (hidden(it->path())) {
          it.disable_recursion_pending();
          continue;
        }
        if (Watch* w = add(it->path(), kDirMask)) w->dir = it->path();
      } else if (found && !hidden(it->path())) {
        found->push_back(it->path());
      }
    }
    return top;
  }

  // Parses a buffer of inotify events into `out`.
  void parse(const char* buf, std::size_t len, TreeChanges& out) {
    bool recheck = false;
    for (std::size_t off = 0; off + sizeof(inotify_event) <= len;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        out.overflow = true;
        recheck = true;  // a swap may be among the events lost
        continue;
      }
      const auto it = watches.find(ev->wd);
      if (it == watches.end()) continue;  // unknown, or a watch of a tree dropped by arm()
      Watch& w = it->second;
      const bool on_the_way = w.root || !w.names.empty();
      if (ev->mask & IN_IGNORED) {  // the directory is gone
        recheck = recheck || on_the_way;
        watches.erase(it);
        continue;
      }
      const std::string name = ev->len > 0 ? std::string(ev->name) : std::string();
      if (((ev->mask & kSelfEvents) && on_the_way) ||
          ((ev->mask & kNameEvents) &&
           std::find(w.names.begin(), w.names.end(), name) != w.names.end())) {
        recheck = true;
      }
      if (!w.only.empty()) {
        if (name == w.only) out.paths.push_back(root);
        continue;
      }
      if (w.dir.empty() || hidden(name)) continue;
      fs::path p = w.dir;
      if (!name.empty()) p /= name;
      if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        add_tree(p, &out.paths);  // a new directory may already hold files (git checkout, mv)
      }
      out.paths.push_back(std::move(p));
    }
    if (recheck) recheck_root(out);
  }

  void finish(TreeChanges& out) {
    std::sort(out.paths.begin(), out.paths.end());
    out.paths.erase(std::unique(out.paths.begin(), out.paths.end()), out.paths.end());
    out.warnings = take_warnings();
  }

  fs::path root;
  Resolution resolved;  // at the last arming
  bool closed = false;
  net::posix::stream_descriptor stream;
  std::map<int, Watch> watches;
  std::vector<std::string> warnings;  // not yet reported
  std::size_t unreported = 0;         // failures past kMaxWarnings, not yet reported
};

TreeWatcher::TreeWatcher(net::any_io_executor ex, fs::path root)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(root))) {}

TreeWatcher::~TreeWatcher() = default;

void TreeWatcher::close() {
  impl_->closed = true;
  boost::system::error_code ec;
  impl_->stream.cancel(ec);
}

TreeChanges TreeWatcher::check_root() {
  TreeChanges out;
  impl_->recheck_root(out);
  impl_->finish(out);
  return out;
}

std::vector<std::string> TreeWatcher::take_warnings() { return impl_->take_warnings(); }

net::awaitable<TreeChanges> TreeWatcher::next() {
  TreeChanges out;
  alignas(inotify_event) char buf[16 * 1024];
  while (!impl_->closed) {
    boost::system::error_code ec;
    co_await impl_->stream.async_wait(net::posix::stream_descriptor::wait_read,
                                      net::redirect_error(net::use_awaitable, ec));
    if (ec || impl_->closed) break;
    // Drain everything that is queued now, so that a burst (git pull) is one result.
    for (;;) {
      const auto n = ::read(impl_->stream.native_handle(), buf, sizeof buf);
      if (n <= 0) break;
      impl_->parse(buf, static_cast<std::size_t>(n), out);
    }
    if (!out.paths.empty() || out.overflow) break;
  }
  impl_->finish(out);
  co_return out;
}

}  // namespace thingsync::sys
