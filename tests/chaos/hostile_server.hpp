#pragma once

// A small HTTP/1.1 server on plain POSIX sockets (a thread per connection, "Connection: close")
// that speaks just enough of the Things MQTT Bindings API for `thingsync run`: paged lists,
// create, update, delete, bearer tokens. In a hostile mode it answers the second page of every
// list walk badly, after a first page that is fine, so that a client which acted on what it
// had would plan creates for the devices it did not see.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace thingsync::chaos {

class HostileServer {
 public:
  enum class Mode {
    kGood,
    kHugeBody,       ///< 10 MB of JSON, no Content-Length, then close
    kTruncatedJson,  ///< a page cut off in the middle, with a matching Content-Length
    kWrongTypes,     ///< well-formed JSON with the wrong types (a different shape each time)
    kNextLoop,       ///< a page whose next link is the page itself
    kForeignNext,    ///< a page whose next link points to another origin
    kStall,          ///< the status line and headers, then nothing until the mode changes
  };

  struct Counts {
    int pages = 0;                ///< list pages asked for
    int first_pages = 0;          ///< list walks started (requests without a cursor)
    int hostile = 0;              ///< hostile answers given
    int writes = 0;               ///< POST, PUT and DELETE requests
    int posts = 0;                ///< of which POST (creates)
    int deletes = 0;              ///< of which DELETE
    int unauthorized = 0;         ///< requests without the expected bearer token
    int foreign_connections = 0;  ///< connections to the other origin
  };

  explicit HostileServer(std::string token, std::size_t page_size = 4);
  ~HostileServer();
  HostileServer(const HostileServer&) = delete;
  HostileServer& operator=(const HostileServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::uint16_t foreign_port() const { return foreign_port_; }

  void set_mode(Mode m);
  /// A binding made by someone else (not through the API: not counted as a write).
  void add(const std::string& device);
  /// Deletes the binding of `device` behind the client's back.
  bool remove(const std::string& device);
  bool has(const std::string& device) const;
  /// How many bindings hold `device` (any spelling).
  std::size_t bindings_of(const std::string& device) const;
  Counts counts() const;

 private:
  struct Binding {
    std::string id, device, canonical;
    std::int64_t created_ms = 0, modified_ms = 0;
  };
  struct Request {
    std::string method, target, authorization, body;
  };

  void accept_loop();
  void serve(int fd);
  void answer(int fd, const Request& req);
  void list(int fd, const Request& req);
  void send_hostile_page(int fd, const std::string& good_page);
  void reap_workers();
  std::string page_json(std::size_t offset, const std::string& device_filter,
                        const std::string& next_override, bool* more) const;
  std::int64_t tick();  ///< a strictly increasing timestamp (ms)

  std::string token_;
  std::size_t page_size_;
  int listen_fd_ = -1, foreign_fd_ = -1;
  std::uint16_t port_ = 0, foreign_port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Worker> workers_;  // the acceptor thread's only

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable mode_changed_;
  Mode mode_ = Mode::kGood;
  std::vector<Binding> store_;  // oldest first
  std::int64_t last_ms_ = 0;
  std::uint64_t next_id_ = 1;
  Counts counts_;
  std::set<int> open_fds_;
};

}  // namespace thingsync::chaos
