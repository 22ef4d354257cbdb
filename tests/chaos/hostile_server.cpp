#include "hostile_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "thingsync/core/device_id.hpp"
#include "thingsync/core/time.hpp"

namespace thingsync::chaos {
namespace {

using nlohmann::json;

int listen_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 128) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("hostile server: cannot listen");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 409: return "Conflict";
    default: return "Whatever";
  }
}

void respond(int fd, int status, const std::string& body,
             const std::string& type = "application/json") {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  if (!body.empty()) head += "Content-Type: " + type + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n";
  if (status == 401) head += "WWW-Authenticate: Bearer realm=\"hostile\"\r\n";
  send_all(fd, head + "\r\n" + body);
}

void problem(int fd, int status, const std::string& detail) {
  respond(fd, status,
          json{{"type", "/problems/x"}, {"title", reason(status)}, {"status", status},
               {"detail", detail}}
              .dump(),
          "application/problem+json");
}

std::string query_param(const std::string& target, const std::string& name) {
  const auto q = target.find('?');
  if (q == std::string::npos) return {};
  std::size_t pos = q + 1;
  while (pos < target.size()) {
    const auto amp = std::min(target.find('&', pos), target.size());
    const auto eq = target.find('=', pos);
    if (eq < amp && target.compare(pos, eq - pos, name) == 0) {
      std::string v = target.substr(eq + 1, amp - eq - 1);
      for (std::size_t i; (i = v.find("%3A")) != std::string::npos;) v.replace(i, 3, ":");
      return v;
    }
    pos = amp + 1;
  }
  return {};
}

std::string canonical_of(const std::string& spelling) {
  const auto d = core::DeviceId::parse(spelling);
  return d ? d->canonical() : std::string();
}

// Bodies that parse as JSON but not as a page of bindings, in turn.
std::string wrong_types_body(int n) {
  static const char* kBodies[] = {
      R"({"items":{"id":"x","deviceId":"imei:350000000000001"}})",
      R"({"items":[{"id":42,"deviceId":"imei:350000000000001"}]})",
      R"({"items":[{"id":"d8f0a3a6-0000-4000-8000-000000000001","deviceId":["imei:350000000000001"]}]})",
      R"({"items":[{"id":"d8f0a3a6-0000-4000-8000-000000000002","deviceId":"imei:350000000000002","modifiedAt":1700000000000}]})",
      R"({"items":[],"next":{"href":"/mqtt/bindings?cursor=x"}})",
      R"([{"id":"d8f0a3a6-0000-4000-8000-000000000003","deviceId":"imei:350000000000003"}])",
      R"("items")",
  };
  constexpr int kCount = sizeof kBodies / sizeof kBodies[0];
  return kBodies[n % kCount];
}

}  // namespace

HostileServer::HostileServer(std::string token, std::size_t page_size)
    : token_(std::move(token)), page_size_(page_size) {
  listen_fd_ = listen_loopback(port_);
  foreign_fd_ = listen_loopback(foreign_port_);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HostileServer::~HostileServer() {
  stopping_ = true;
  {
    std::lock_guard lock(mu_);
    for (const int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    mode_changed_.notify_all();
  }
  acceptor_.join();
  for (auto& w : workers_) w.thread.join();
  ::close(listen_fd_);
  ::close(foreign_fd_);
}

void HostileServer::set_mode(Mode m) {
  std::lock_guard lock(mu_);
  mode_ = m;
  mode_changed_.notify_all();
}

std::int64_t HostileServer::tick() {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  last_ms_ = std::max(last_ms_ + 1, now);
  return last_ms_;
}

void HostileServer::add(const std::string& device) {
  std::lock_guard lock(mu_);
  char id[40];
  std::snprintf(id, sizeof id, "7f000001-0000-4000-8000-%012llx",
                static_cast<unsigned long long>(next_id_++));
  const auto t = tick();
  store_.push_back({id, device, canonical_of(device), t, t});
}

bool HostileServer::remove(const std::string& device) {
  std::lock_guard lock(mu_);
  const auto c = canonical_of(device);
  return std::erase_if(store_, [&](const Binding& b) { return b.canonical == c; }) > 0;
}

bool HostileServer::has(const std::string& device) const { return bindings_of(device) > 0; }

std::size_t HostileServer::bindings_of(const std::string& device) const {
  std::lock_guard lock(mu_);
  const auto c = canonical_of(device);
  return static_cast<std::size_t>(std::count_if(
      store_.begin(), store_.end(), [&](const Binding& b) { return b.canonical == c; }));
}

HostileServer::Counts HostileServer::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

void HostileServer::accept_loop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {foreign_fd_, POLLIN, 0}};
    if (::poll(fds, 2, 50) <= 0) continue;
    if (fds[1].revents & POLLIN) {
      // The other origin: whoever comes here was sent a link it must not follow.
      const int fd = ::accept4(foreign_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        {
          std::lock_guard lock(mu_);
          ++counts_.foreign_connections;
        }
        ::close(fd);
      }
    }
    if (fds[0].revents & POLLIN) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      reap_workers();
      std::lock_guard lock(mu_);
      open_fds_.insert(fd);
      auto& w = workers_.emplace_back();
      w.thread = std::thread([this, fd, &w] {
        serve(fd);
        w.done = true;
      });
    }
  }
}

void HostileServer::reap_workers() {
  // Only the acceptor thread adds or removes workers: no lock needed for the list itself.
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();
    it = workers_.erase(it);
  }
}

void HostileServer::serve(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string raw;
  char buf[8192];
  std::size_t head_end = std::string::npos;
  while ((head_end = raw.find("\r\n\r\n")) == std::string::npos && raw.size() < 65536) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  if (head_end != std::string::npos) {
    Request req;
    const auto sp1 = raw.find(' ');
    const auto sp2 = raw.find(' ', sp1 + 1);
    req.method = raw.substr(0, sp1);
    req.target = raw.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t content_length = 0;
    for (std::size_t pos = raw.find("\r\n") + 2; pos < head_end;) {
      const auto eol = raw.find("\r\n", pos);
      const auto line = raw.substr(pos, eol - pos);
      const auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (name == "content-length") content_length = std::stoul(value);
      if (name == "authorization") req.authorization = value;
      pos = eol + 2;
    }
    req.body = raw.substr(head_end + 4);
    while (req.body.size() < content_length) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      req.body.append(buf, static_cast<std::size_t>(n));
    }
    answer(fd, req);
  }
  std::lock_guard lock(mu_);
  open_fds_.erase(fd);
  ::close(fd);
}

void HostileServer::answer(int fd, const Request& req) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  const std::string collection = "/mqtt/bindings";
  if (req.method != "GET") {
    std::lock_guard lock(mu_);
    ++counts_.writes;
    counts_.posts += req.method == "POST";
    counts_.deletes += req.method == "DELETE";
  }
  if (req.authorization != "Bearer " + token_) {
    {
      std::lock_guard lock(mu_);
      ++counts_.unauthorized;
    }
    problem(fd, 401, "no or wrong bearer token");
    return;
  }
  if (path == collection && req.method == "GET") {
    list(fd, req);
    return;
  }
  const auto j = json::parse(req.body, nullptr, false);
  std::unique_lock lock(mu_);
  if (path == collection && req.method == "POST") {
    const std::string device = j.is_object() ? j.value("deviceId", "") : "";
    const auto c = canonical_of(device);
    if (c.empty() || !j.contains("password")) {
      lock.unlock();
      problem(fd, 400, "bad binding");
      return;
    }
    for (const auto& b : store_) {
      if (b.canonical == c) {
        const std::string body = json{{"status", 409}, {"bindingId", b.id}}.dump();
        lock.unlock();
        respond(fd, 409, body, "application/problem+json");
        return;
      }
    }
    lock.unlock();
    add(device);
    lock.lock();
    const auto& b = store_.back();
    const std::string body = json{{"id", b.id},
                                  {"deviceId", b.device},
                                  {"createdAt", core::format_iso8601_ms(b.created_ms)},
                                  {"modifiedAt", core::format_iso8601_ms(b.modified_ms)}}
                                 .dump();
    lock.unlock();
    respond(fd, 201, body);
    return;
  }
  if (path.rfind(collection + "/", 0) == 0) {
    const auto id = path.substr(collection.size() + 1);
    auto it = std::find_if(store_.begin(), store_.end(), [&](const Binding& b) { return b.id == id; });
    if (it == store_.end()) {
      lock.unlock();
      problem(fd, 404, "no such binding");
      return;
    }
    if (req.method == "DELETE") {
      store_.erase(it);
      lock.unlock();
      respond(fd, 204, "");
      return;
    }
    if (req.method == "PUT") it->modified_ms = tick();
    const std::string body = json{{"id", it->id},
                                  {"deviceId", it->device},
                                  {"createdAt", core::format_iso8601_ms(it->created_ms)},
                                  {"modifiedAt", core::format_iso8601_ms(it->modified_ms)}}
                                 .dump();
    lock.unlock();
    respond(fd, 200, body);
    return;
  }
  lock.unlock();
  problem(fd, 404, "no such resource");
}

std::string HostileServer::page_json(std::size_t offset, const std::string& device_filter,
                                     const std::string& next_override, bool* more) const {
  std::vector<const Binding*> matching;
  for (const auto& b : store_) {
    if (device_filter.empty() || b.canonical == device_filter) matching.push_back(&b);
  }
  json items = json::array();
  for (std::size_t i = offset; i < matching.size() && i < offset + page_size_; ++i) {
    const auto& b = *matching[i];
    items.push_back({{"id", b.id},
                     {"deviceId", b.device},
                     {"createdAt", core::format_iso8601_ms(b.created_ms)},
                     {"modifiedAt", core::format_iso8601_ms(b.modified_ms)}});
  }
  json page{{"items", items}};
  *more = offset + page_size_ < matching.size();
  if (!next_override.empty()) {
    page["next"] = next_override;
  } else if (*more) {
    page["next"] = "http://127.0.0.1:" + std::to_string(port_) + "/mqtt/bindings?cursor=" +
                   std::to_string(offset + page_size_) +
                   (device_filter.empty() ? "" : "&deviceId=" + device_filter);
  }
  return page.dump();
}

void HostileServer::list(int fd, const Request& req) {
  const auto cursor = query_param(req.target, "cursor");
  const std::size_t offset = cursor.empty() ? 0 : std::stoul(cursor);
  const auto filter = canonical_of(query_param(req.target, "deviceId"));
  const std::string self = "http://127.0.0.1:" + std::to_string(port_) + req.target;
  std::unique_lock lock(mu_);
  ++counts_.pages;
  counts_.first_pages += cursor.empty();
  const bool hostile = mode_ != Mode::kGood && offset == page_size_;
  bool more = false;
  std::string next;
  if (hostile && mode_ == Mode::kNextLoop) next = self;
  if (hostile && mode_ == Mode::kForeignNext) {
    next = "http://127.0.0.1:" + std::to_string(foreign_port_) + "/mqtt/bindings?cursor=" +
           std::to_string(offset + page_size_);
  }
  const auto body = page_json(offset, filter, next, &more);
  if (!hostile || !next.empty()) {
    counts_.hostile += hostile;
    lock.unlock();
    respond(fd, 200, body);
    return;
  }
  ++counts_.hostile;
  lock.unlock();
  send_hostile_page(fd, body);
}

void HostileServer::send_hostile_page(int fd, const std::string& good_page) {
  std::unique_lock lock(mu_);
  const Mode mode = mode_;
  const int n = counts_.hostile;
  lock.unlock();
  switch (mode) {
    case Mode::kHugeBody: {
      // No Content-Length: the body ends when the connection does, after 10 MB.
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"items\":[")) return;
      const std::string item =
          R"({"id":"7f000001-0000-4000-8000-ffffffffffff","deviceId":"imei:350000000099999"},)";
      std::string chunk;
      while (chunk.size() < 64 * 1024) chunk += item;
      for (std::size_t sent = 0; sent < 10 * 1024 * 1024 && !stopping_; sent += chunk.size()) {
        if (!send_all(fd, chunk)) return;
      }
      send_all(fd, R"({"id":"7f000001-0000-4000-8000-fffffffffffe","deviceId":"imei:350000000099998"}]})");
      return;
    }
    case Mode::kTruncatedJson:
      respond(fd, 200, good_page.substr(0, good_page.size() / 2));
      return;
    case Mode::kWrongTypes:
      respond(fd, 200, wrong_types_body(n));
      return;
    case Mode::kStall: {
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(good_page.size()) + "\r\n\r\n");
      lock.lock();
      mode_changed_.wait(lock, [this] { return mode_ != Mode::kStall || stopping_; });
      return;  // closed without a byte of body
    }
    default:
      respond(fd, 200, good_page);
  }
}

}  // namespace thingsync::chaos
