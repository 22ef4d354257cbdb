#include "thingsync/sys/tree_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <system_error>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace thingsync::sys {
namespace net = boost::asio;
namespace fs = std::filesystem;

namespace {
constexpr std::uint32_t kDirMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |
                                   IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF |
                                   IN_MOVE_SELF | IN_ONLYDIR;
bool hidden(const fs::path& p) {
  const auto name = p.filename().string();
  return !name.empty() && name[0] == '.';
}
}  // namespace

struct TreeWatcher::Impl {
  Impl(net::any_io_executor ex, fs::path r) : root(std::move(r)), stream(ex) {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    stream.assign(fd);
    std::error_code ec;
    single_file = !fs::is_directory(root, ec);
    if (single_file) {
      add_watch(root.parent_path().empty() ? fs::path(".") : root.parent_path());
    } else {
      add_tree(root);
    }
  }

  void add_watch(const fs::path& dir) {
    const int wd = ::inotify_add_watch(stream.native_handle(), dir.c_str(), kDirMask);
    if (wd >= 0) dirs[wd] = dir;
  }

  // Hidden directories (.git) are skipped, as the loader skips them.
  void add_tree(const fs::path& dir, std::vector<fs::path>* found = nullptr) {
    add_watch(dir);
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) {
        if (hidden(it->path())) {
          it.disable_recursion_pending();
          continue;
        }
        add_watch(it->path());
      } else if (found && !hidden(it->path())) {
        found->push_back(it->path());
      }
    }
  }

  // Parses a buffer of inotify events into `out`.
  void parse(const char* buf, std::size_t len, TreeChanges& out) {
    for (std::size_t off = 0; off + sizeof(inotify_event) <= len;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        out.overflow = true;
        continue;
      }
      const auto it = dirs.find(ev->wd);
      if (it == dirs.end()) continue;
      if (ev->mask & IN_IGNORED) {
        dirs.erase(it);
        continue;
      }
      fs::path p = it->second;
      if (ev->len > 0) p /= ev->name;
      if (single_file && p.filename() != root.filename()) continue;
      if (!single_file && ev->len > 0 && hidden(fs::path(ev->name))) continue;
      if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        add_tree(p, &out.paths);  // a new directory may already hold files (git checkout, mv)
      }
      out.paths.push_back(std::move(p));
    }
  }

  fs::path root;
  bool single_file = false;
  bool closed = false;
  net::posix::stream_descriptor stream;
  std::map<int, fs::path> dirs;
};

TreeWatcher::TreeWatcher(net::any_io_executor ex, fs::path root)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(root))) {}

TreeWatcher::~TreeWatcher() = default;

void TreeWatcher::close() {
  impl_->closed = true;
  boost::system::error_code ec;
  impl_->stream.cancel(ec);
}

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
  std::sort(out.paths.begin(), out.paths.end());
  out.paths.erase(std::unique(out.paths.begin(), out.paths.end()), out.paths.end());
  co_return out;
}

}  // namespace thingsync::sys
