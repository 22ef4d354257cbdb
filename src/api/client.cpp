#include "thingsync/api/client.hpp"

#include <algorithm>
#include <random>
#include <unordered_set>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "fail.hpp"
#include "log.hpp"
#include "wipe.hpp"
#include "thingsync/core/token_bucket.hpp"

namespace thingsync::api {
namespace {

using Clock = std::chrono::steady_clock;

std::uint32_t default_burst(const ClientOptions& o) {
  const auto most = std::max<std::uint32_t>(1, o.concurrency);
  if (o.adaptive) return std::min<std::uint32_t>(2, most);
  const auto tenth = static_cast<std::uint32_t>(std::max(0.0, o.rate_limit / 10));
  return std::clamp<std::uint32_t>(tenth, 1, most);
}

// An answer that says the API took the request at this rate: not a congestion signal, not a
// failure of the API or the network.
bool clean_answer(int status) {
  return status >= 200 && status < 500 && status != 408 && status != 429;
}

}  // namespace

struct ApiClient::Impl {
  Impl(net::any_io_executor ex, ClientOptions opts, std::shared_ptr<TokenProvider> auth, Url base)
      : ex_(ex),
        opts_(std::move(opts)),
        auth_(std::move(auth)),
        base_(std::move(base)),
        http_(ex, opts_.http),
        adaptive_(opts_.adaptive ? std::optional<core::AdaptiveRate>(*opts_.adaptive)
                                 : std::nullopt),
        bucket_(rate(), opts_.burst ? opts_.burst : default_burst(opts_), Clock::now()),
        slot_timer_(ex),
        rng_(std::random_device{}()),
        log_(detail::log()) {
    slot_timer_.expires_at(Clock::time_point::max());
    if (opts_.concurrency == 0) opts_.concurrency = 1;
    if (opts_.backoff.max_attempts == 0) opts_.backoff.max_attempts = 1;
    prefix_ = std::string(base_.path());
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
    if (opts_.on_rate) opts_.on_rate(rate());
  }

  double rate() const { return adaptive_ ? adaptive_->rate() : std::max(0.0, opts_.rate_limit); }

  // The adaptive rate learns from each answer to a request sent at `sent`; `paced`: that
  // request waited for the rate; `pause`: the Retry-After of a congestion signal. A call that
  // got no answer teaches it nothing.
  void adapt(Clock::time_point sent, int status, bool congestion, bool paced,
             std::chrono::milliseconds pause = std::chrono::milliseconds(0)) {
    if (!adaptive_) return;
    const auto now = Clock::now();
    const double before = adaptive_->rate();
    if (congestion) {
      if (!adaptive_->on_congestion(sent, now, pause)) return;  // already cut
      ++stats_.rate_cuts;
      bucket_.set_rate(adaptive_->rate(), now);
      bucket_.drain(now);  // the next request goes at the new pace, not in a burst
      log_->warn("rate limited: cutting the rate rps={:.1f} was={:.1f} status={}",
                 adaptive_->rate(), before, status);
    } else if (clean_answer(status)) {
      adaptive_->on_clean(now, paced);
      if (adaptive_->rate() == before) return;
      bucket_.set_rate(adaptive_->rate(), now);
    } else {
      return;
    }
    if (opts_.on_rate) opts_.on_rate(adaptive_->rate());
  }

  net::awaitable<core::Result<HttpResponse, ApiError>> call(ApiCall c);

  // Concurrency: a counter and a timer parked at max(); release() wakes one waiter.
  // take_slot() is the common case without a wait (and without a coroutine frame).
  bool take_slot() {
    if (stopping_ || in_flight_ >= opts_.concurrency) return false;
    ++in_flight_;
    stats_.max_in_flight = std::max(stats_.max_in_flight, in_flight_);
    return true;
  }
  net::awaitable<bool> acquire_slot() {
    while (in_flight_ >= opts_.concurrency && !stopping_) {
      boost::system::error_code ec;
      co_await slot_timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    co_return take_slot();
  }
  void release_slot() {
    --in_flight_;
    slot_timer_.cancel_one();
  }
  struct SlotGuard {
    Impl* impl;
    ~SlotGuard() { impl->release_slot(); }
  };

  net::awaitable<bool> sleep_until(Clock::time_point when) {
    net::steady_timer timer(ex_);
    sleeping_.insert(&timer);
    const bool ticks = opts_.waiting_tick.count() > 0 && opts_.on_waiting;
    while (!stopping_) {
      // A long wait is cut into ticks, each of them progress for the watchdog.
      const auto now = Clock::now();
      if (now >= when) break;
      timer.expires_at(ticks ? std::min(when, now + opts_.waiting_tick) : when);
      boost::system::error_code ec;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (ticks && !stopping_) opts_.on_waiting();
    }
    sleeping_.erase(&timer);
    co_return !stopping_;
  }

  // A token of the shared bucket when one is there now and no Retry-After pause is running.
  bool try_admit() {
    if (stopping_) return false;
    const auto now = Clock::now();
    return now >= paused_until_ && bucket_.try_acquire(now).count() == 0;
  }
  // Waits out a Retry-After pause, then for a token of the shared bucket.
  net::awaitable<bool> admit() {
    for (;;) {
      if (stopping_) co_return false;
      const auto now = Clock::now();
      if (now < paused_until_) {
        if (!co_await sleep_until(paused_until_)) co_return false;
        continue;
      }
      const auto wait = bucket_.try_acquire(now);
      if (wait.count() == 0) co_return true;
      if (!co_await sleep_until(now + wait)) co_return false;
    }
  }

  // The pause a Retry-After asks for, as pause_all() keeps it (zero when none).
  std::chrono::milliseconds pause_for(const ApiError& err) const {
    if (!err.retry_after) return std::chrono::milliseconds(0);
    return std::min<std::chrono::milliseconds>(*err.retry_after, opts_.max_retry_after);
  }
  void pause_all(std::chrono::milliseconds pause, int status) {
    pause = std::min<std::chrono::milliseconds>(pause, opts_.max_retry_after);
    const auto until = Clock::now() + pause;
    if (until > paused_until_) {
      paused_until_ = until;
      log_->warn("rate limited status={} pausing all requests ms={}", status, pause.count());
    }
    bucket_.drain(until);
  }

  // url_for() that takes over the target's buffer when there is no prefix to add.
  Url url_for(std::string&& target) const {
    if (!prefix_.empty() || target.empty() || target.front() != '/') {
      return url_for(std::string_view(target));
    }
    Url u;
    u.scheme = base_.scheme;
    u.host = base_.host;
    u.port = base_.port;
    u.target = std::move(target);
    return u;
  }
  Url url_for(std::string_view target) const {
    Url u;
    u.scheme = base_.scheme;
    u.host = base_.host;
    u.port = base_.port;
    const bool slash = prefix_.empty() && (target.empty() || target.front() != '/');
    u.target.reserve(prefix_.size() + target.size() + 1);
    if (slash) u.target += '/';
    u.target.append(prefix_).append(target);
    return u;
  }

  net::any_io_executor ex_;
  ClientOptions opts_;
  std::shared_ptr<TokenProvider> auth_;
  Url base_;
  std::string prefix_;
  HttpClient http_;
  std::optional<core::AdaptiveRate> adaptive_;  // sync.rateLimit: auto
  core::TokenBucket bucket_;
  Clock::time_point paused_until_{};
  net::steady_timer slot_timer_;
  std::uint32_t in_flight_ = 0;
  std::unordered_set<net::steady_timer*> sleeping_;
  std::mt19937_64 rng_;
  std::shared_ptr<spdlog::logger> log_;
  TrafficStats stats_;
  bool stopping_ = false;
};

net::awaitable<core::Result<HttpResponse, ApiError>> ApiClient::Impl::call(ApiCall c) {
  // One request for every attempt: only the bearer token changes between them. Its body may
  // hold a password: wiped when the call ends, however it ends.
  HttpRequest req;
  const detail::WipeOnExit wipe_body(req.body);
  if (c.url) {
    req.url = std::move(*c.url);
  } else {
    req.url = url_for(std::move(c.target));
  }
  if (!req.url.same_origin(base_)) {
    // The bearer token goes to the configured API origin and nowhere else.
    co_return detail::fail(make_error(ErrorKind::kProtocol, "refusing to send a request to another origin",
                                      req.url.origin() + " is not " + base_.origin()));
  }
  req.method = std::move(c.method);
  req.headers.push_back({"Accept", "application/json, application/problem+json"});
  if (!c.body.empty()) {
    req.content_type = "application/json";
    req.body = std::move(c.body);
  }
  const bool post = req.method == "POST";
  core::Backoff backoff(opts_.backoff);
  bool refreshed = false;
  std::chrono::milliseconds sleep_for{0};
  for (std::uint32_t attempt = 1;; ++attempt) {
    // No co_await inside conditions here: GCC 12 miscompiles some of those.
    // Each step has a fast path that does not suspend: a free slot, a token at hand, a token
    // in the bucket.
    bool go = true;
    if (sleep_for.count() > 0) go = co_await sleep_until(Clock::now() + sleep_for);
    sleep_for = std::chrono::milliseconds(0);
    if (go && !take_slot()) go = co_await acquire_slot();
    if (!go) co_return detail::fail(make_error(ErrorKind::kCancelled, "stopping"));
    SlotGuard guard{this};

    // The rate limiter first, the token after it: a call can wait in admit() for seconds, and
    // a token taken before that wait may expire (or be rotated away) on the way.
    bool admitted = try_admit();
    const bool paced = !admitted;
    if (!admitted) admitted = co_await admit();
    if (!admitted) co_return detail::fail(make_error(ErrorKind::kCancelled, "stopping"));

    ApiError err;
    bool have_token = false;
    if (const core::Secret* ready = auth_->ready_token()) {
      req.bearer = *ready;
      have_token = true;
    } else {
      auto token = co_await auth_->token();
      if (token) {
        req.bearer = std::move(token.value());
        have_token = true;
      } else {
        err = token.error();
        req.bearer.reset();
      }
    }
    if (have_token) {  // else err holds the token provider's failure
      const auto started = Clock::now();
      auto res = co_await http_.send_borrowed(req);
      const auto took = Clock::now() - started;
      ++stats_.sent;
      stats_.connections_opened = http_.connections_opened();
      const int status = res ? res->status : 0;
      bool rate_limited_post = false;
      if (res && status / 100 == 2) {
        adapt(started, status, false, paced);
        if (opts_.on_request) opts_.on_request({req.method, status, took, false});
        log_->debug("request method={} path={} status={} ms={} attempt={}", req.method,
                    req.url.path(), status,
                    std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), attempt);
        co_return std::move(res.value());
      }
      if (res) {
        err = classify(status, res->header("Content-Type").value_or(""), res->body,
                       res->header("Retry-After"), std::chrono::system_clock::now());
        if (post && (status == 408 || status >= 500)) {
          // A gateway may answer 502/504 after the API committed the create: never re-send
          // it here. A 503's Retry-After still pauses all traffic.
          if (err.kind == ErrorKind::kRateLimited) {
            rate_limited_post = true;
            ++stats_.rate_limited;
            pause_all(err.retry_after ? std::chrono::milliseconds(*err.retry_after)
                                      : std::chrono::milliseconds(std::chrono::seconds(1)),
                      err.status);
          }
          err.detail = std::string(to_string(err.kind)) + (err.detail.empty() ? "" : ": ") +
                       err.detail;
          err.kind = ErrorKind::kUnknownOutcome;
        }
      } else {
        err = res.error().error;
        if (post && res.error().sent != Sent::kNo && err.kind != ErrorKind::kProtocol) {
          // The server may have created the binding: the caller must look before it retries.
          // So too when a stop cut the request off after it was sent: its pending record stays.
          err.detail = std::string(to_string(err.kind)) + ": " + err.detail;
          err.kind = ErrorKind::kUnknownOutcome;
        }
      }
      const bool congestion = rate_limited_post || err.kind == ErrorKind::kRateLimited;
      adapt(started, status, congestion, paced, pause_for(err));
      if (opts_.on_request) opts_.on_request({req.method, status, took, congestion});
      log_->debug("request method={} path={} status={} ms={} attempt={} error=\"{}\"", req.method,
                  req.url.path(), status,
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), attempt,
                  err.to_string());
    }

    if (err.kind == ErrorKind::kUnauthorized) {
      ++stats_.unauthorized;
      if (req.bearer) auth_->invalidate(*req.bearer);
      if (refreshed) co_return detail::fail(std::move(err));  // refused twice: give up
      refreshed = true;  // exactly one refresh and one retry, outside the attempt budget
      --attempt;
      continue;
    }
    if (err.kind == ErrorKind::kRateLimited) {
      ++stats_.rate_limited;
      if (err.retry_after) {
        pause_all(*err.retry_after, err.status);
      } else if (!adaptive_) {
        // No word from the server on how long: a pause of our own. The adaptive rate has
        // cut itself instead (adapt()), and this call waits its turn at the new pace.
        pause_all(std::max<std::chrono::milliseconds>(
                      std::chrono::seconds(1), core::backoff_ceiling(opts_.backoff, attempt - 1)),
                  err.status);
      }
    }
    // A POST that may have happened says so even in a stop: its pending record must stay.
    if (stopping_ && err.kind != ErrorKind::kUnknownOutcome) {
      co_return detail::fail(make_error(ErrorKind::kCancelled, "stopping"));
    }
    if (!err.transient()) co_return detail::fail(std::move(err));
    // A rate-limited call waits in admit() for the shared pause; others back off alone.
    const auto delay = backoff.next(rng_());
    if (!delay) {
      err.detail += (err.detail.empty() ? "" : "; ") + std::string("gave up after ") +
                    std::to_string(attempt) + " attempts";
      co_return detail::fail(std::move(err));
    }
    ++stats_.retries;
    log_->warn("retrying method={} path={} attempt={} delay_ms={} error=\"{}\"", req.method,
               req.url.path(), attempt,
               err.kind == ErrorKind::kRateLimited ? 0 : delay->count(), err.to_string());
    // A rate-limited call waits in admit() for the shared pause; others back off alone, at
    // the top of the next round, without holding a concurrency slot.
    if (err.kind != ErrorKind::kRateLimited) sleep_for = *delay;
  }
}

ApiClient::ApiClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiClient::~ApiClient() = default;

core::Result<std::unique_ptr<ApiClient>, ApiError> ApiClient::create(
    net::any_io_executor ex, ClientOptions options, std::shared_ptr<TokenProvider> auth) {
  auto base = Url::parse(options.base_url);
  if (!base) {
    return detail::fail(make_error(ErrorKind::kConfig, "bad API base URL", options.base_url));
  }
  if (!auth) return detail::fail(make_error(ErrorKind::kConfig, "no token provider"));
  auto impl = std::make_unique<Impl>(std::move(ex), std::move(options), std::move(auth),
                                     std::move(*base));
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(impl)));
}

net::awaitable<core::Result<HttpResponse, ApiError>> ApiClient::call(ApiCall call) {
  return impl_->call(std::move(call));
}

void ApiClient::drain() {
  impl_->stopping_ = true;
  impl_->slot_timer_.cancel();
  for (auto* t : impl_->sleeping_) t->cancel();
}

void ApiClient::stop() {
  drain();
  impl_->http_.shutdown();
}

bool ApiClient::stopping() const { return impl_->stopping_; }
const Url& ApiClient::base_url() const { return impl_->base_; }
Url ApiClient::url_for(std::string_view target) const { return impl_->url_for(target); }
const core::BackoffPolicy& ApiClient::backoff() const { return impl_->opts_.backoff; }
const TrafficStats& ApiClient::stats() const { return impl_->stats_; }
double ApiClient::rate() const { return impl_->rate(); }

}  // namespace thingsync::api
