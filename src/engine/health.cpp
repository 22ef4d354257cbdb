#include "health.hpp"

#include "thingsync/obs/log.hpp"

namespace thingsync::engine {

void Health::set_counts(std::size_t desired, std::size_t observed, std::size_t drift) {
  desired_ = desired;
  observed_ = observed;
  drift_ = drift;
}

void Health::set_error(std::string e) {
  obs::logger("daemon")->error("{}", e);
  last_error_ = std::move(e);
  update();
}

void Health::set_state_error(std::string e) {
  if (e == state_error_) return;
  if (!e.empty()) obs::logger("daemon")->error("the state cannot be saved, so nothing is written: {}", e);
  state_error_ = std::move(e);
  update();
}

void Health::set_activity(std::string activity) {
  const auto now = std::chrono::steady_clock::now();
  const bool done = activity.empty() && !activity_.empty();
  activity_ = std::move(activity);
  if (!done && now - activity_sent_ < std::chrono::seconds(1)) return;
  activity_sent_ = now;
  update();
}

void Health::set_creates_refused(std::string why) {
  if (why == creates_refused_) return;
  if (!why.empty()) obs::logger("daemon")->error("creates are refused until a restart: {}", why);
  creates_refused_ = std::move(why);
  update();
}

void Health::update() {
  std::string s = activity_.empty() ? "" : activity_ + "; ";
  s += "desired=" + std::to_string(desired_) + " observed=" + std::to_string(observed_) +
       " drift=" + std::to_string(drift_);
  if (observe_only_) s += " mode=observe";
  if (!state_error_.empty()) s += " not writing: the state cannot be saved: " + state_error_;
  if (!creates_refused_.empty()) s += " creates refused: " + creates_refused_;
  if (!last_error_.empty()) s += " last error: " + last_error_;
  notifier_.status(s);
}

obs::HttpReply Health::serve(const obs::HttpGet& g) const {
  if (g.path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (g.path == "/readyz") {
    if (ready()) return {200, "text/plain; charset=utf-8", "ready\n"};
    if (!state_error_.empty()) {
      return {503, "text/plain; charset=utf-8",
              "not ready: the state file cannot be saved, so nothing is written: " +
                  state_error_ + "\n"};
    }
    if (!creates_refused_.empty()) {
      return {503, "text/plain; charset=utf-8",
              "not ready: creates are refused until a restart: " + creates_refused_ + "\n"};
    }
    return {503, "text/plain; charset=utf-8",
            !ready_ ? "not ready: first reconcile not finished\n"
                    : "not ready: the last desired-state load failed\n"};
  }
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

}  // namespace thingsync::engine
