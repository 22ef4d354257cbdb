#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "thingsync/obs/http_server.hpp"
#include "thingsync/sys/notify.hpp"

namespace thingsync::engine {

/// What the daemon tells about itself: /healthz and /readyz, and systemd's STATUS= line.
/// Not thread-safe (the event loop's).
class Health {
 public:
  Health(sys::Notifier& notifier, bool observe_only)
      : notifier_(notifier), observe_only_(observe_only) {}

  void set_counts(std::size_t desired, std::size_t observed, std::size_t drift);
  void set_ready() { ready_ = true; update(); }
  void set_load_ok(bool ok) { load_ok_ = ok; }
  /// Why the state file cannot be saved ("" once it can): while it cannot, nothing is
  /// written to the API and the daemon is not ready.
  void set_state_error(std::string e);
  /// Why creates are refused until a restart ("" for none; a scope.clientId that does not
  /// hold what creates make): the daemon is not ready, and /readyz and STATUS say why.
  void set_creates_refused(std::string why);
  /// Logs `e` (error level) and shows it in the status line until clear_error().
  void set_error(std::string e);
  void clear_error() { last_error_.clear(); }
  /// What the daemon is busy with, first on the STATUS line ("listing: 12000 bindings so far",
  /// "applying 791/2000, ETA 4m"); "" when it is done. Sent at most once a second.
  void set_activity(std::string activity);
  void update();

  bool ready() const {
    return ready_ && load_ok_ && state_error_.empty() && creates_refused_.empty();
  }
  /// /healthz, /readyz; /metrics is served by the caller.
  obs::HttpReply serve(const obs::HttpGet& get) const;

 private:
  sys::Notifier& notifier_;
  bool observe_only_;
  bool ready_ = false;
  bool load_ok_ = false;
  std::size_t desired_ = 0, observed_ = 0, drift_ = 0;
  std::string last_error_;
  std::string state_error_;
  std::string creates_refused_;
  std::string activity_;
  std::chrono::steady_clock::time_point activity_sent_{};
};

}  // namespace thingsync::engine
