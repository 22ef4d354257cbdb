// Secret files (password files, fleet key files) are regular files of bounded size: a FIFO, a
// device or a directory is refused before anything is read from it, a large file without
// reading it. The resolver and validate_sources share one reader, so both are checked here.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>

#include "test_support.hpp"
#include "thingsync/config/password_resolver.hpp"

using thingsync::config::kMaxFleetKeyFileBytes;
using thingsync::config::kMaxPasswordFileBytes;
using thingsync::config::LoadResult;
using thingsync::config::PasswordResolver;
using thingsync::config::validate_sources;
using thingsync::config::test::all;
using thingsync::config::test::env_of;
using thingsync::config::test::TempDir;

namespace {

// A file with one binding whose password is `source` (a YAML flow map), at line 3, column 15.
LoadResult one_binding(const TempDir& dir, const std::string& source) {
  auto r = thingsync::config::parse_desired_state_file(
      "bindings:\n  - deviceId: imei:350266800610993\n    password: " + source + "\n",
      (dir.path() / "fleet.yaml").string(), env_of({}));
  INFO(all(r.diagnostics));
  REQUIRE(r.ok());
  return r;
}

std::string at_source(const TempDir& dir) {
  return (dir.path() / "fleet.yaml").string() + ":3:15: ";
}

// validate_sources() with a deadline. Should a read block on a FIFO anyway, the FIFO is opened
// for writing and closed, which ends that read, so the test fails instead of hanging. A read
// of a device cannot be ended from here: then the test process stops.
std::string validate_within_seconds(const LoadResult& r, const std::string& fifo = {}) {
  auto done = std::async(std::launch::async, [&] { return all(validate_sources(r.state, {})); });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    if (fifo.empty()) {
      std::fprintf(stderr, "validate_sources still reading after 5 s: stopping\n");
      std::_Exit(1);
    }
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    done.wait();
    FAIL("validate_sources blocked on " << fifo);
  }
  return done.get();
}

// A file of `size` bytes that holds no data (sparse): cheap to make however large.
std::string sparse_file(const TempDir& dir, const std::string& name, off_t size) {
  const std::string path = dir.write(name, "");
  REQUIRE(::truncate(path.c_str(), size) == 0);
  return path;
}

// A password that meets the policy, `size` bytes long with its newline.
std::string password_of_size(std::size_t size) {
  std::string pw;
  while (pw.size() + 1 < size) pw += "Aa1-";
  pw.resize(size - 1);
  return pw + "\n";
}

}  // namespace

TEST_CASE("/dev/zero as a password file or key file is refused as a device",
          "[config][password][secret_file]") {
  TempDir dir;
  SECTION("password file") {
    const auto r = one_binding(dir, "{file: /dev/zero}");
    CHECK(validate_within_seconds(r) ==
          at_source(dir) +
              "error: password file /dev/zero is a character device, not a regular file; used "
              "by 1 binding\n");
    PasswordResolver resolver(r.state, env_of({}));
    auto pw = resolver.resolve(r.state.bindings[0]);
    REQUIRE_FALSE(pw.ok());
    CHECK(pw.error().message ==
          "no password for imei:350266800610993: password file /dev/zero is a character "
          "device, not a regular file");
  }
  SECTION("fleet key file") {
    const auto r = one_binding(dir, "{derive: {keyFile: /dev/zero}}");
    CHECK(validate_within_seconds(r) ==
          at_source(dir) +
              "error: fleet key file /dev/zero is a character device, not a regular file; used "
              "by 1 binding\n");
  }
}

TEST_CASE("a FIFO as a password file is refused without waiting for a writer",
          "[config][password][secret_file]") {
  TempDir dir;
  const std::string fifo = (dir.path() / "pw.fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const auto r = one_binding(dir, "{file: pw.fifo}");
  const auto started = std::chrono::steady_clock::now();
  CHECK(validate_within_seconds(r, fifo) ==
        at_source(dir) + "error: password file " + fifo +
            " is a FIFO (named pipe), not a regular file; used by 1 binding\n");
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(1));

  const auto k = one_binding(dir, "{derive: {keyFile: pw.fifo}}");
  CHECK(validate_within_seconds(k, fifo) ==
        at_source(dir) + "error: fleet key file " + fifo +
            " is a FIFO (named pipe), not a regular file; used by 1 binding\n");
}

TEST_CASE("a directory as a password file is refused as a directory",
          "[config][password][secret_file]") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "secrets");
  const auto r = one_binding(dir, "{file: secrets}");
  CHECK(validate_within_seconds(r) == at_source(dir) + "error: password file " +
                                          (dir.path() / "secrets").string() +
                                          " is a directory, not a regular file; used by 1 "
                                          "binding\n");
}

TEST_CASE("a password file over 4 KiB is refused with its size, one at the limit is read",
          "[config][password][secret_file]") {
  STATIC_REQUIRE(kMaxPasswordFileBytes == 4096);
  TempDir dir;
  SECTION("64 MiB") {
    const std::string big = sparse_file(dir, "big.pass", off_t{64} << 20);
    const auto r = one_binding(dir, "{file: big.pass}");
    CHECK(validate_within_seconds(r) ==
          at_source(dir) + "error: password file " + big +
              " is 67108864 bytes, 67104768 bytes over the limit of 4096 bytes; used by 1 "
              "binding\n");
  }
  SECTION("one byte over") {
    const std::string path = dir.write("over.pass", password_of_size(4097));
    const auto r = one_binding(dir, "{file: over.pass}");
    CHECK(validate_within_seconds(r) ==
          at_source(dir) + "error: password file " + path +
              " is 4097 bytes, 1 byte over the limit of 4096 bytes; used by 1 binding\n");
  }
  SECTION("at the limit") {
    dir.write("limit.pass", password_of_size(4096));
    const auto r = one_binding(dir, "{file: limit.pass}");
    CHECK(validate_within_seconds(r).empty());
    PasswordResolver resolver(r.state, env_of({}));
    auto pw = resolver.resolve(r.state.bindings[0]);
    REQUIRE(pw.ok());
    CHECK(pw->reveal() == password_of_size(4096).substr(0, 4095));
  }
}

TEST_CASE("a fleet key file over 64 KiB is refused with its size, one at the limit is read",
          "[config][password][secret_file]") {
  STATIC_REQUIRE(kMaxFleetKeyFileBytes == 65536);
  TempDir dir;
  SECTION("one byte over") {
    const std::string path = dir.write("over-key", std::string(65537, 'k'));
    const auto r = one_binding(dir, "{derive: {keyFile: over-key}}");
    CHECK(validate_within_seconds(r) ==
          at_source(dir) + "error: fleet key file " + path +
              " is 65537 bytes, 1 byte over the limit of 65536 bytes; used by 1 binding\n");
    PasswordResolver resolver(r.state, env_of({}));
    CHECK_FALSE(resolver.resolve(r.state.bindings[0]).ok());
  }
  SECTION("at the limit") {
    dir.write("limit-key", std::string(65536, 'k'));
    const auto r = one_binding(dir, "{derive: {keyFile: limit-key}}");
    CHECK(validate_within_seconds(r).empty());
    PasswordResolver resolver(r.state, env_of({}));
    CHECK(resolver.resolve(r.state.bindings[0]).ok());
  }
}

TEST_CASE("a secret file reached through a symbolic link is judged by what it points to",
          "[config][password][secret_file]") {
  TempDir dir;
  std::filesystem::create_symlink("/dev/zero", dir.path() / "zero.pass");
  const auto r = one_binding(dir, "{file: zero.pass}");
  CHECK(validate_within_seconds(r) ==
        at_source(dir) + "error: password file " + (dir.path() / "zero.pass").string() +
            " is a character device, not a regular file; used by 1 binding\n");
}
