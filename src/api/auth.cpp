#include "thingsync/api/auth.hpp"

#include <algorithm>


#include <sys/stat.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "fail.hpp"
#include "json_text.hpp"
#include "log.hpp"
#include "thingsync/sys/secret_file.hpp"

namespace thingsync::api {
namespace {

using Clock = std::chrono::steady_clock;

ApiError config_error(std::string title, std::string detail) {
  return make_error(ErrorKind::kConfig, std::move(title), std::move(detail));
}

std::string trimmed(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  s.erase(0, first);
  return s;
}

// A token or a client secret is a line of a few hundred bytes; a file far larger is not one.
constexpr std::size_t kMaxSecretFileBytes = std::size_t{64} << 10;

// Reads a secret file (a regular file of bounded size: a FIFO or /dev/zero is refused before a
// byte is read); nullopt when it cannot be read, with the reason in `why`.
std::optional<std::string> read_file(const std::filesystem::path& file, std::string* why = nullptr) {
  auto text = sys::read_secret_file(file.string(), "secret file " + file.string(),
                                    kMaxSecretFileBytes);
  if (!text) {
    if (why) *why = text.error();
    return std::nullopt;
  }
  std::string value = trimmed(text->reveal());
  // A line break inside a token would end its Authorization header and start another one.
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    if (why) *why = file.string() + " holds a control character inside its secret (a line break?)";
    return std::nullopt;
  }
  return value;
}

class StaticTokenProvider final : public TokenProvider {
 public:
  explicit StaticTokenProvider(core::Secret token) : token_(std::move(token)) {}
  net::awaitable<core::Result<core::Secret, ApiError>> token() override { co_return token_; }
  const core::Secret* ready_token() override { return &token_; }
  void invalidate(const core::Secret&) override {}

 private:
  core::Secret token_;
};

class TokenFileProvider final : public TokenProvider {
 public:
  explicit TokenFileProvider(std::filesystem::path file) : file_(std::move(file)) {}

  net::awaitable<core::Result<core::Secret, ApiError>> token() override {
    auto t = current();
    if (!t) co_return detail::fail(t.error());
    co_return **t;
  }
  const core::Secret* ready_token() override {
    auto t = current();
    return t ? *t : nullptr;  // on error token() says why
  }
  void invalidate(const core::Secret& rejected) override {
    if (cached_ && *cached_ == rejected) stamp_ = {};  // re-read even if the stat looks the same
  }
  void reload() override { stamp_ = {}; }

 private:
  struct Stamp {
    std::int64_t mtime_ns = -1;
    std::int64_t size = -1;
    std::uint64_t inode = 0;
    friend bool operator==(const Stamp&, const Stamp&) = default;
  };

  core::Result<const core::Secret*, ApiError> current() {
    struct ::stat st {};
    if (::stat(file_.c_str(), &st) != 0) {
      // Keep serving the last token while a rotation replaces the file.
      if (cached_) return &*cached_;
      return detail::fail(config_error("cannot read token file", file_.string()));
    }
    const Stamp now{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                        st.st_mtim.tv_nsec,
                    static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
    if (cached_ && now == stamp_) return &*cached_;
    std::string why;
    auto text = read_file(file_, &why);
    if (!text || text->empty()) {
      if (!cached_) {
        return detail::fail(config_error(text ? "token file is empty" : "cannot read token file",
                                         text ? file_.string() : why));
      }
      // The file changed into something that is not a token (a FIFO, an empty or oversized
      // file): the last token stays in use, and that is said once per change of the file.
      if (!(now == problem_stamp_)) {
        detail::log()->error("token file {} cannot be used ({}); still using the token read "
                             "before",
                             file_.string(), text ? "it is empty" : why);
        problem_stamp_ = now;
      }
      return &*cached_;
    }
    const bool changed = cached_.has_value() && cached_->reveal() != *text;
    cached_ = core::Secret(std::move(*text));
    stamp_ = now;
    problem_stamp_ = {};
    if (changed) detail::log()->info("token file changed, using the new token file={}", file_.string());
    return &*cached_;
  }

  std::filesystem::path file_;
  std::optional<core::Secret> cached_;
  Stamp stamp_;
  Stamp problem_stamp_;  // of the file last found unusable, reported once
};

class OAuth2Provider final : public TokenProvider {
 public:
  OAuth2Provider(net::any_io_executor ex, OAuth2Options opts)
      : opts_(std::move(opts)), http_(ex, opts_.http), waiters_(ex), log_(detail::log()) {
    waiters_.expires_at(Clock::time_point::max());
  }

  net::awaitable<core::Result<core::Secret, ApiError>> token() override {
    for (;;) {
      if (cached_ && Clock::now() < refresh_at_) co_return *cached_;
      if (!refreshing_) break;
      // Single flight: wait for the fetch in progress, then use its outcome.
      const auto generation = generation_;
      boost::system::error_code ec;
      co_await waiters_.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (generation_ != generation && last_error_) co_return detail::fail(*last_error_);
    }
    // After a failed fetch the endpoint is asked again only after a pause (Retry-After, else
    // 1 s doubling up to 16 s): every call in the meantime gets the last failure at once.
    if (last_error_ && Clock::now() < retry_at_) co_return detail::fail(*last_error_);
    refreshing_ = true;
    auto fetched = co_await fetch();
    refreshing_ = false;
    ++generation_;
    waiters_.cancel();
    if (!fetched) {
      last_error_ = fetched.error();
      pause_after_failure(*last_error_);
      co_return detail::fail(fetched.error());
    }
    last_error_.reset();
    failure_pause_ = std::chrono::milliseconds(0);
    co_return *cached_;
  }

  const core::Secret* ready_token() override {
    return cached_ && Clock::now() < refresh_at_ ? &*cached_ : nullptr;
  }
  void invalidate(const core::Secret& rejected) override {
    if (cached_ && *cached_ == rejected) cached_.reset();
  }
  void reload() override {
    cached_.reset();
    secret_.reset();
    retry_at_ = {};  // new credentials may work: ask at once
  }

 private:
  static constexpr std::chrono::milliseconds kFirstPause{1000};
  static constexpr std::chrono::milliseconds kMaxPause{16000};
  static constexpr std::chrono::milliseconds kMaxRetryAfter{300000};

  void pause_after_failure(const ApiError& e) {
    failure_pause_ = failure_pause_.count() == 0 ? kFirstPause : std::min(2 * failure_pause_, kMaxPause);
    auto pause = failure_pause_;
    if (e.retry_after) {
      pause = std::max(pause, std::min(std::chrono::milliseconds(*e.retry_after), kMaxRetryAfter));
    }
    retry_at_ = Clock::now() + pause;
    log_->info("next token request in {} ms", pause.count());
  }

  core::Result<core::Secret, ApiError> client_secret() {
    if (opts_.client_secret_file.empty()) return opts_.client_secret;
    if (!secret_) {
      std::string why;
      auto text = read_file(opts_.client_secret_file, &why);
      if (!text || text->empty()) {
        return detail::fail(config_error(
            text ? "client secret file is empty" : "cannot read client secret file",
            text ? opts_.client_secret_file.string() : why));
      }
      secret_ = core::Secret(std::move(*text));
    }
    return *secret_;
  }

  void stop() override {
    stopped_ = true;
    http_.shutdown();
  }

  net::awaitable<core::Result<bool, ApiError>> fetch() {
    if (stopped_) co_return detail::fail(make_error(ErrorKind::kCancelled, "stopping"));
    auto url = Url::parse(opts_.token_url);
    if (!url) co_return detail::fail(config_error("bad token URL", opts_.token_url));
    auto secret = client_secret();
    if (!secret) co_return detail::fail(secret.error());

    HttpRequest req;
    req.method = "POST";
    req.url = *url;
    req.content_type = "application/x-www-form-urlencoded";
    req.headers.push_back({"Accept", "application/json"});
    // Encoded straight into a buffer sized for the worst case (3 bytes a byte): no temporary
    // or outgrown copy of the secret is freed unwiped. send() wipes the body once it is sent.
    constexpr std::string_view kGrant = "grant_type=client_credentials&client_id=";
    constexpr std::string_view kSecret = "&client_secret=";
    constexpr std::string_view kAudience = "&audience=";
    const std::size_t raw =
        opts_.client_id.size() + secret->reveal().size() + opts_.audience.size();
    req.body.reserve(kGrant.size() + kSecret.size() + kAudience.size() + 3 * raw);
    req.body.append(kGrant);
    url_encode_to(req.body, opts_.client_id);
    req.body.append(kSecret);
    url_encode_to(req.body, secret->reveal());
    if (!opts_.audience.empty()) {
      req.body.append(kAudience);
      url_encode_to(req.body, opts_.audience);
    }

    const auto started = Clock::now();
    auto res = co_await http_.send(std::move(req));
    if (!res) {
      auto e = res.error().error;
      if (e.kind == ErrorKind::kUnknownOutcome) e.kind = ErrorKind::kTransport;
      e.title = "token request failed: " + e.title;
      log_->warn("token request failed url={} error={}", url->origin(), e.to_string());
      co_return detail::fail(std::move(e));
    }
    if (res->status != 200) {
      // RFC 6749 5.2 errors: {"error":"invalid_client","error_description":"…"}.
      auto e = classify(res->status, res->header("Content-Type").value_or(""), res->body,
                        res->header("Retry-After"), std::chrono::system_clock::now());
      auto j = detail::parse_json(res->body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) {
        e.title = j["error"].get<std::string>();
        if (j.contains("error_description") && j["error_description"].is_string()) {
          e.detail = j["error_description"].get<std::string>();
        }
      }
      // Refused credentials do not get better by asking again.
      if (res->status == 400 || res->status == 401 || res->status == 403) {
        e.kind = ErrorKind::kConfig;
      }
      e.title = "token request refused: " + e.title;
      log_->warn("token request failed url={} status={} error={}", url->origin(), res->status,
                 e.to_string());
      co_return detail::fail(std::move(e));
    }
    auto j = detail::parse_json(res->body);
    if (!j.is_object() || !j.contains("access_token") || !j["access_token"].is_string()) {
      ApiError e;
      e.kind = ErrorKind::kProtocol;
      e.status = res->status;
      e.title = "token response has no access_token";
      co_return detail::fail(std::move(e));
    }
    std::int64_t expires_in = 3600;
    if (auto it = j.find("expires_in"); it != j.end() && it->is_number()) {
      expires_in = std::max<std::int64_t>(1, it->get<std::int64_t>());
    }
    const auto lifetime = std::chrono::seconds(expires_in);
    const auto margin = std::min<std::chrono::milliseconds>(
        opts_.refresh_margin, std::chrono::duration_cast<std::chrono::milliseconds>(lifetime) / 5);
    refresh_at_ = started + lifetime - margin;
    cached_ = core::Secret(j["access_token"].get<std::string>());
    log_->debug("token fetched url={} expires_in={}s", url->origin(), expires_in);
    co_return true;
  }

  OAuth2Options opts_;
  HttpClient http_;
  bool stopped_ = false;
  net::steady_timer waiters_;  // parked at max(); cancel() wakes every waiter
  std::shared_ptr<spdlog::logger> log_;
  std::optional<core::Secret> cached_;
  std::optional<core::Secret> secret_;
  Clock::time_point refresh_at_{};
  bool refreshing_ = false;
  std::uint64_t generation_ = 0;
  std::optional<ApiError> last_error_;
  Clock::time_point retry_at_{};  // no token request before this after a failure
  std::chrono::milliseconds failure_pause_{0};
};

}  // namespace

std::shared_ptr<TokenProvider> make_static_token_provider(core::Secret token) {
  return std::make_shared<StaticTokenProvider>(std::move(token));
}

std::shared_ptr<TokenProvider> make_token_file_provider(std::filesystem::path file) {
  return std::make_shared<TokenFileProvider>(std::move(file));
}

std::shared_ptr<TokenProvider> make_oauth2_provider(net::any_io_executor ex, OAuth2Options options) {
  return std::make_shared<OAuth2Provider>(std::move(ex), std::move(options));
}

}  // namespace thingsync::api
