#include "http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <openssl/ssl.h>

#include "artifacts.hpp"

namespace thingsync::testsupport {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string_view trim(std::string_view v) {
  const auto b = v.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return v.substr(b, v.find_last_not_of(" \t") - b + 1);
}

// The JSON string literal that starts at `quote` in `text` ("" when it does not end there).
std::string json_string_at(std::string_view text, std::size_t quote) {
  for (std::size_t i = quote + 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      const auto j = nlohmann::json::parse(text.substr(quote, i - quote + 1), nullptr, false);
      return j.is_string() ? j.get<std::string>() : std::string();
    }
  }
  return {};
}

// The secrets in bytes on their way to a server, wherever the requests in them start and end:
// every bearer token, and every "password" of a JSON body (binding writes).
void register_sent_secrets(std::string_view raw) {
  if (!audit::artifacts_dir()) return;
  const std::string low = lower(std::string(raw));
  for (auto at = low.find("\nauthorization:"); at != std::string::npos;
       at = low.find("\nauthorization:", at + 1)) {
    const auto start = at + 15;
    const auto value = trim(std::string_view(raw).substr(start, low.find('\r', start) - start));
    if (lower(std::string(value.substr(0, 7))) == "bearer ") {
      audit::register_secret("bearer token", std::string(trim(value.substr(7))));
    }
  }
  for (auto at = raw.find("\"password\""); at != std::string_view::npos;
       at = raw.find("\"password\"", at + 1)) {
    auto i = raw.find_first_not_of(" \t\r\n", at + 10);
    if (i == std::string_view::npos || raw[i] != ':') continue;
    i = raw.find_first_not_of(" \t\r\n", i + 1);
    if (i == std::string_view::npos || raw[i] != '"') continue;
    audit::register_secret("binding password sent to the sim", json_string_at(raw, i));
  }
}

// thingsync's observability endpoints: what they answer is an output the audit scans.
void record_scrape(std::uint16_t port, const std::string& target, const HttpResult& res) {
  const auto path = target.substr(0, target.find('?'));
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") return;
  audit::record_append("http-" + std::to_string(port) + path, res.body);
}

timeval to_timeval(std::chrono::milliseconds t) {
  return timeval{static_cast<time_t>(t.count() / 1000),
                 static_cast<suseconds_t>(t.count() % 1000 * 1000)};
}

}  // namespace

std::string HttpResult::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpConnection::Impl {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  std::string buf;  // received, not yet handed out

  ~Impl() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }
};

HttpConnection::HttpConnection(std::uint16_t port, HttpOptions options)
    : impl_(std::make_unique<Impl>()) {
  const std::string where = "127.0.0.1:" + std::to_string(port);
  auto& fd = impl_->fd;
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  // Bounded reads and writes: a hung server fails the test instead of hanging it.
  const timeval tv = to_timeval(options.timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (options.receive_buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer, sizeof options.receive_buffer);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("cannot connect to " + where + ": " + std::strerror(errno));
  }
  if (options.tls_ca_file.empty()) return;
  auto& ctx = impl_->ctx;
  auto& ssl = impl_->ssl;
  ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr ||
      SSL_CTX_load_verify_locations(ctx, options.tls_ca_file.c_str(), nullptr) != 1) {
    throw std::runtime_error("cannot load the CA file " + options.tls_ca_file);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  ssl = SSL_new(ctx);
  if (ssl == nullptr || SSL_set_tlsext_host_name(ssl, options.tls_host.c_str()) != 1 ||
      SSL_set1_host(ssl, options.tls_host.c_str()) != 1 || SSL_set_fd(ssl, fd) != 1 ||
      SSL_connect(ssl) != 1) {
    throw std::runtime_error("TLS handshake with " + where + " (" + options.tls_host + ") failed");
  }
}

HttpConnection::~HttpConnection() = default;
HttpConnection::HttpConnection(HttpConnection&&) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&&) noexcept = default;

void HttpConnection::send(std::string_view raw) {
  register_sent_secrets(raw);
  while (!raw.empty()) {
    const auto n =
        impl_->ssl != nullptr
            ? static_cast<ssize_t>(SSL_write(impl_->ssl, raw.data(), static_cast<int>(raw.size())))
            : ::send(impl_->fd, raw.data(), raw.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
    raw.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool HttpConnection::fill() {
  char chunk[16384];
  const auto n = impl_->ssl != nullptr
                     ? static_cast<ssize_t>(SSL_read(impl_->ssl, chunk, sizeof chunk))
                     : ::recv(impl_->fd, chunk, sizeof chunk, 0);
  if (n <= 0) return false;
  impl_->buf.append(chunk, static_cast<std::size_t>(n));
  return true;
}

bool HttpConnection::closed() { return impl_->buf.empty() && !fill(); }

HttpResult HttpConnection::response() {
  auto& buf = impl_->buf;
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return {};
  }
  HttpResult r;
  r.head = buf.substr(0, end + 4);
  buf.erase(0, end + 4);
  if (r.head.rfind("HTTP/", 0) == 0) r.status = std::atoi(r.head.c_str() + r.head.find(' ') + 1);
  for (auto pos = r.head.find("\r\n") + 2; pos < end;) {
    const auto eol = r.head.find("\r\n", pos);
    const std::string_view line(r.head.data() + pos, eol - pos);
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      r.headers[lower(std::string(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    pos = eol + 2;
  }
  if (r.status / 100 == 1 || r.status == 204 || r.status == 304) return r;
  try {
    if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
      for (;;) {
        std::size_t eol;
        while ((eol = buf.find("\r\n")) == std::string::npos) {
          if (!fill()) return {};
        }
        const auto size = std::stoul(buf.substr(0, eol), nullptr, 16);
        buf.erase(0, eol + 2);
        if (size == 0) break;
        while (buf.size() < size + 2) {
          if (!fill()) return {};
        }
        r.body.append(buf, 0, size);
        buf.erase(0, size + 2);
      }
      // Trailer fields, up to the blank line.
      for (std::size_t eol;;) {
        while ((eol = buf.find("\r\n")) == std::string::npos) {
          if (!fill()) return {};
        }
        buf.erase(0, eol + 2);
        if (eol == 0) break;
      }
    } else if (const auto length = r.header("content-length"); !length.empty()) {
      const auto size = std::stoul(length);
      while (buf.size() < size) {
        if (!fill()) return {};
      }
      r.body = buf.substr(0, size);
      buf.erase(0, size);
    } else {
      while (fill()) {
      }
      r.body = std::move(buf);
      buf.clear();
    }
  } catch (const std::logic_error&) {  // std::stoul: a size that is not a number
    return {};
  }
  return r;
}

HttpResult http(std::uint16_t port, const std::string& method, const std::string& target,
                const std::string& body, const HttpHeaders& headers, const HttpOptions& options) {
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  bool connection = false;
  for (const auto& h : headers) {
    req += h.name + ": " + h.value + "\r\n";
    connection = connection || lower(h.name) == "connection";
  }
  if (!connection) req += "Connection: close\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  HttpResult res;
  try {
    HttpConnection c(port, options);
    try {
      c.send(req);
    } catch (const std::runtime_error&) {
      // The server may have answered early and closed (a 413 before the whole body): read.
    }
    res = c.response();
  } catch (const std::runtime_error&) {
    // Nothing listens there: status 0, as for a server that closes without an answer.
  }
  record_scrape(port, target, res);
  return res;
}

}  // namespace thingsync::testsupport
