#include "thingsync/obs/log.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

using thingsync::core::Secret;
namespace obs = thingsync::obs;

namespace {
struct Captured {
  std::ostringstream out;
  Captured(obs::LogFormat format) {
    obs::set_sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out),
                  {spdlog::level::debug, format});
  }
  ~Captured() { obs::setup_logging({}); }
};
}  // namespace

TEST_CASE("a secret passed to a log call prints as stars", "[obs][log]") {
  Captured cap(obs::LogFormat::kText);
  const Secret s("Sup3r-Secret-Password-1234567");
  obs::logger("test")->info("token={}", s);
  CHECK(cap.out.str().find("token=***") != std::string::npos);
  CHECK(cap.out.str().find("Sup3r") == std::string::npos);
}

TEST_CASE("json log lines are valid json even with quotes and newlines", "[obs][log]") {
  Captured cap(obs::LogFormat::kJson);
  obs::logger("config")->warn("bad \"value\"\nat {}:{}", "a.yaml", 3);
  const auto line = cap.out.str();
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  const auto j = nlohmann::json::parse(line);
  CHECK(j["level"] == "warning");
  CHECK(j["logger"] == "config");
  CHECK(j["msg"] == "bad \"value\"\nat a.yaml:3");
  CHECK(j["ts"].get<std::string>().size() == 24);
}

TEST_CASE("log levels below the configured one are dropped", "[obs][log]") {
  std::ostringstream out;
  obs::set_sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out),
                {spdlog::level::warn, obs::LogFormat::kText});
  obs::logger("lvl")->info("hidden");
  obs::logger("lvl")->warn("shown");
  obs::setup_logging({});
  CHECK(out.str().find("hidden") == std::string::npos);
  CHECK(out.str().find("shown") != std::string::npos);
}

TEST_CASE("log level and format names parse strictly", "[obs][log]") {
  CHECK(obs::parse_log_level("debug") == spdlog::level::debug);
  CHECK(obs::parse_log_level("error") == spdlog::level::err);
  CHECK_FALSE(obs::parse_log_level("verbose"));
  CHECK(obs::parse_log_format("json") == obs::LogFormat::kJson);
  CHECK_FALSE(obs::parse_log_format("xml"));
}
