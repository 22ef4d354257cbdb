// The secrets audit can fail: secrets planted through the test support code, in an artifacts
// directory of the test's own (never the real run's), are found by thingsync-audit-scan.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <thread>

#include "support.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/password.hpp"

using thingsync::testsupport::Process;
using thingsync::testsupport::TempDir;
using thingsync::testsupport::write_file;
namespace audit = thingsync::testsupport::audit;

namespace {

// Points the recording at another directory for its lifetime.
class ArtifactsDir {
 public:
  explicit ArtifactsDir(const std::filesystem::path& dir) {
    if (const char* v = std::getenv("THINGSYNC_TEST_ARTIFACTS")) old_ = v;
    ::setenv("THINGSYNC_TEST_ARTIFACTS", dir.c_str(), 1);
  }
  ~ArtifactsDir() {
    if (old_) {
      ::setenv("THINGSYNC_TEST_ARTIFACTS", old_->c_str(), 1);
    } else {
      ::unsetenv("THINGSYNC_TEST_ARTIFACTS");
    }
  }
  ArtifactsDir(const ArtifactsDir&) = delete;
  ArtifactsDir& operator=(const ArtifactsDir&) = delete;

 private:
  std::optional<std::string> old_;
};

// An artifacts directory of the test's own. It is emptied before its TempDir goes, because a
// TempDir records the thingsync files it holds when removed: the planted ones must not reach
// the real run's directory.
class FakeArtifacts {
 public:
  FakeArtifacts() = default;
  ~FakeArtifacts() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  FakeArtifacts(const FakeArtifacts&) = delete;
  FakeArtifacts& operator=(const FakeArtifacts&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  TempDir parent_{"thingsync-audit-fake"};
  std::filesystem::path path_ = parent_ / "artifacts";
};

struct Scan {
  int code = -1;
  std::string out;
};

// Runs the scanner on `dir` (its own output goes wherever the recording currently goes).
Scan scan(const std::filesystem::path& dir) {
  Process p({THINGSYNC_AUDIT_SCAN, dir.string()});
  Scan s;
  s.code = p.wait().value_or(-1);
  s.out = p.out() + p.err();
  return s;
}

// RFC 3986: everything but the unreserved characters.
std::string percent_encoded(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// `printf %s "$TEXT" | base64`, captured by Process: the child's stdout is the artifact.
void plant_base64(const std::string& text, const std::string& base64_options = "-w0") {
  Process p({"/bin/sh", "-c", "printf %s \"$TEXT\" | base64 " + base64_options}, {"TEXT=" + text});
  REQUIRE(p.wait() == 0);
}

// A one-request HTTP server on 127.0.0.1 that answers `body`.
class OneShotServer {
 public:
  explicit OneShotServer(std::string body) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 1) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, body = std::move(body)] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      std::string req;
      while (req.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      const std::string res = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                              "\r\nConnection: close\r\n\r\n" + body;
      ::send(c, res.data(), res.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  OneShotServer(const OneShotServer&) = delete;
  OneShotServer& operator=(const OneShotServer&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("a planted secret is found: file, line, kind and first 3 characters, never the secret",
          "[audit]") {
  FakeArtifacts fake;
  const std::string secret = "Planted-Secret-Value-42";
  {
    ArtifactsDir use(fake.path());
    audit::register_secret("planted password", secret);
    audit::record("fake.stderr", "a first line\nlevel=info msg=\"applied\" password=" + secret + "\n");
  }
  const auto s = scan(fake.path());
  INFO(s.out);
  CHECK(s.code == 1);
  CHECK_THAT(s.out, Catch::Contains("fake.stderr:2: planted password \"Pla...\" (23 bytes), as is"));
  CHECK_THAT(s.out, Catch::Contains("written in the run of: ") &&
                        Catch::Contains("thingsync_audit_tests"));
  CHECK_THAT(s.out, Catch::Contains("1 secret(s) found"));
  CHECK_THAT(s.out, !Catch::Contains(secret));
}

TEST_CASE("a secret is found JSON-escaped, URL-encoded, and in base64 at every alignment",
          "[audit]") {
  FakeArtifacts fake;
  // Its base64 has a '+' at every alignment: base64url differs.
  const std::string secret = "Pl@nted \"secret\" & /more\\ than=8 ~?>";
  {
    ArtifactsDir use(fake.path());
    audit::register_secret("planted password", secret);
    audit::record("json.log", "{\"msg\":\"x\",\"password\":" + nlohmann::json(secret).dump() + "}\n");
    audit::record("url.log", "GET /login?user=a&password=" + percent_encoded(secret) + " HTTP/1.1\n");
    // As in a Basic authorization header, after prefixes of each length modulo 3.
    plant_base64("client:" + secret);
    plant_base64("c:" + secret);
    plant_base64(secret);
    plant_base64("xx" + secret, "-w0 | tr '+/' '-_'");
  }
  const auto s = scan(fake.path());
  INFO(s.out);
  CHECK(s.code == 1);
  CHECK_THAT(s.out, Catch::Contains("json.log:1: planted password \"Pl@...\" (36 bytes), JSON-escaped"));
  CHECK_THAT(s.out, Catch::Contains("url.log:1: planted password \"Pl@...\" (36 bytes), URL-encoded"));
  CHECK_THAT(s.out, Catch::Contains(".sh.stdout:1: planted password \"Pl@...\" (36 bytes), base64\n"));
  CHECK_THAT(s.out, Catch::Contains("(36 bytes), base64url"));
  CHECK_THAT(s.out, Catch::Contains("6 secret(s) found"));
  CHECK_THAT(s.out, !Catch::Contains(secret));
}

TEST_CASE("clean outputs pass, and secrets under 8 bytes are counted, not searched for",
          "[audit]") {
  FakeArtifacts fake;
  {
    ArtifactsDir use(fake.path());
    audit::register_secret("planted password", "Never-Written-Anywhere-1");
    audit::register_secret("short token", "t0ken");
    audit::record("clean.log", "level=info msg=\"applied\" t0ken password=<redacted>\n");
  }
  const auto s = scan(fake.path());
  INFO(s.out);
  CHECK(s.code == 0);
  CHECK_THAT(s.out, Catch::Contains("searched for 1 secrets") &&
                        Catch::Contains("1 secrets shorter than 8 bytes not searched for") &&
                        Catch::Contains("no secret in any test output"));
}

TEST_CASE("Process, write_file, TempDir and http() record and register on their own",
          "[audit]") {
  FakeArtifacts fake;
  const std::string kKey = "audit-test-fleet-key-0123456789abcdef";
  const auto derived = thingsync::core::PasswordDeriver{thingsync::core::Secret(kKey)}
                           .derive(*thingsync::core::DeviceId::parse("imei:350000000000002"))
                           .reveal();
  {
    ArtifactsDir use(fake.path());
    // An environment variable named like a secret, echoed by the child: its stderr capture.
    Process p({"/bin/sh", "-c", "echo \"using $API_TOKEN\" >&2"}, {"API_TOKEN=Env-Token-Value-0001"});
    REQUIRE(p.wait() == 0);
    // A file named like a secret; its content in a state file left in a TempDir.
    {
      TempDir work("thingsync-audit-work");
      write_file(work / "client-secret", "Client-Secret-Value-0002\n");
      write_file(work / "state.json",
                 "{\"format\":\"thingsync-state\",\"lastError\":\"Client-Secret-Value-0002\"}\n");
      // A literal password in desired-state YAML: registered, but the YAML is not an artifact.
      write_file(work / "fleet" / "f.yaml",
                 "bindings:\n  - deviceId: imei:350000000000001\n    password:\n"
                 "      value: \"Yaml-Literal-Value-0003\"\n");
      write_file(work / "state.json.journal", "{\"a\":\"applied\",\"note\":\"Yaml-Literal-Value-0003\"}\n");
      // A derive default: the password thingsync derives is registered, found in a journal.
      write_file(work / "fleet-key", kKey + "\n");
      write_file(work / "fleet" / "g.yaml.new",
                 "defaults:\n  password:\n    derive:\n      keyFile: ../fleet-key\n"
                 "bindings:\n  - deviceId: IMEI:350000000000002\n");
      write_file(work / "other.journal", "{\"a\":\"applied\",\"fp\":\"" + derived + "\"}\n");
    }
    // A bearer token sent with a request, answered in a scrape.
    OneShotServer server("thingsync_up 1\n# Bearer-Token-Value-0004\n");
    const auto r =
        thingsync::testsupport::http(server.port(), "GET", "/metrics", {},
                                     {{"Authorization", "Bearer Bearer-Token-Value-0004"}});
    REQUIRE(r.status == 200);
  }
  const auto s = scan(fake.path());
  INFO(s.out);
  CHECK(s.code == 1);
  CHECK_THAT(s.out, Catch::Contains(".sh.stderr:1: environment variable API_TOKEN \"Env...\""));
  CHECK_THAT(s.out, Catch::Contains("state.json:1: content of client-secret \"Cli...\""));
  CHECK_THAT(s.out, Catch::Contains("state.json.journal:1: literal password (YAML value) \"Yam...\""));
  CHECK_THAT(s.out, Catch::Contains("http-" ) && Catch::Contains("_metrics:2: bearer token \"Bea...\""));
  CHECK_THAT(s.out, Catch::Contains("other.journal:1: password of the desired state \"" +
                                    derived.substr(0, 3) + "...\""));
  CHECK_THAT(s.out, Catch::Contains("5 secret(s) found"));
}

TEST_CASE("ctest gives every test the artifacts directory of this build", "[audit]") {
  // The recording side is off without the variable; this fails if ctest stops passing it.
  const char* dir = std::getenv("THINGSYNC_TEST_ARTIFACTS");
  INFO("run through ctest: the variable comes from tests/CMakeLists.txt");
  REQUIRE(dir != nullptr);
  CHECK(std::filesystem::path(dir).filename() == "test-artifacts");
}
