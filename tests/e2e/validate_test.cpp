// validate end to end: the real thingsync binary on desired-state files (no simulator needed).
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support.hpp"

using thingsync::testsupport::Process;
using thingsync::testsupport::TempDir;
using thingsync::testsupport::write_file;

namespace {

// A desired-state file with the derive default (key_dir/fleet-key); bindings from line 6.
std::string desired(const std::string& key_dir, const std::vector<std::string>& devices) {
  std::string y = "defaults:\n  password:\n    derive:\n      keyFile: " + key_dir +
                  "/fleet-key\nbindings:\n";
  for (const auto& d : devices) y += "  - deviceId: " + d + "\n";
  return y;
}

}  // namespace

TEST_CASE("validate checks its paths as one desired state: a device under two names both",
          "[e2e][validate]") {
  TempDir dir("thingsync-validate");
  write_file(dir / "fleet-key", "e2e-validate-key-0123456789abcdefghijklmnopqrstuvwxyz\n");
  const auto a = dir / "a.yaml";
  const auto b = dir / "b.yaml";
  write_file(a, desired(dir.path().string(), {"imei:350266800610993", "imei:350266800610001"}));
  write_file(b, desired(dir.path().string(),
                        {"imei:350266800610002", "\"urn:dev:IMEI:350266800610993:\""}));

  Process both({THINGSYNC_PATH, "validate", a.string(), b.string()});
  REQUIRE(both.wait() == 1);
  INFO(both.out() << both.err());
  CHECK_THAT(both.err(), Catch::Contains(b.string() + ":7:15: error: duplicate device "
                                         "imei:350266800610993; first listed at " +
                                         a.string() + ":6:15"));
  CHECK_THAT(both.out(), Catch::Contains("invalid: 3 bindings in 2 files"));

  // Each file alone is valid.
  Process one({THINGSYNC_PATH, "validate", a.string()});
  CHECK(one.wait() == 0);
}

TEST_CASE("validate --config names every placeholder and unusable credential file at its place",
          "[e2e][validate]") {
  TempDir dir("thingsync-validate-config");
  write_file(dir / "fleet-key", "e2e-validate-key-0123456789abcdefghijklmnopqrstuvwxyz\n");
  write_file(dir / "fleet.yaml", desired(dir.path().string(), {"imei:350266800610993"}));
  // A FIFO where the client secret should be: refused without waiting for a writer.
  const auto fifo = dir / "client-secret";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const auto cfg = dir / "config.yaml";
  write_file(cfg,
             "api:\n"
             "  baseUrl: https://api.example\n"
             "auth:\n"
             "  oauth2:\n"
             "    tokenUrl: https://auth.example/v2/REPLACE-ME-TENANT/token\n"
             "    clientId: REPLACE-ME-API-KEY-CLIENT-ID\n"
             "    clientSecretFile: client-secret\n"
             "    audience: an-application\n"
             "desiredState:\n"
             "  path: fleet.yaml\n"
             "state:\n"
             "  path: missing-dir/state.json\n");

  Process v({THINGSYNC_PATH, "validate", "--config", cfg.string()});
  const auto rc = v.wait(std::chrono::seconds(30));
  REQUIRE(rc.has_value());
  INFO(v.out() << v.err());
  CHECK(*rc == 1);
  CHECK_THAT(v.err(), Catch::Contains(cfg.string() + ":5:15: error: auth.oauth2.tokenUrl: '"));
  CHECK_THAT(v.err(), Catch::Contains(cfg.string() +
                                      ":6:15: error: auth.oauth2.clientId: "
                                      "'REPLACE-ME-API-KEY-CLIENT-ID' is a placeholder"));
  CHECK_THAT(v.err(), Catch::Contains(cfg.string() +
                                      ":7:23: error: auth.oauth2.clientSecretFile: file " +
                                      fifo.string() + " is a FIFO (named pipe), not a regular file"));
  CHECK_THAT(v.err(), Catch::Contains(cfg.string() + ":12:9: warning: state.path: directory "));
  // The desired state is checked in the same run: one binding, valid.
  CHECK_THAT(v.out(), Catch::Contains("invalid: 1 bindings in 1 files (1 imei); 3 errors, 1 warnings"));

  // plan refuses the same config before it sends anything.
  Process plan({THINGSYNC_PATH, "plan", "--config", cfg.string()});
  REQUIRE(plan.wait(std::chrono::seconds(30)) == 1);
  CHECK_THAT(plan.err(), Catch::Contains("is a placeholder"));
}

TEST_CASE("validate --config reports a missing or empty token file at its place",
          "[e2e][validate]") {
  TempDir dir("thingsync-validate-token");
  write_file(dir / "fleet-key", "e2e-validate-key-0123456789abcdefghijklmnopqrstuvwxyz\n");
  write_file(dir / "fleet.yaml", desired(dir.path().string(), {"imei:350266800610993"}));
  const auto cfg = dir / "config.yaml";
  write_file(cfg, "auth:\n  tokenFile: api-token\ndesiredState:\n  path: fleet.yaml\nstate:\n  path: "
                  "state.json\n");

  Process missing({THINGSYNC_PATH, "validate", "--config", cfg.string()});
  REQUIRE(missing.wait() == 1);
  CHECK_THAT(missing.err(), Catch::Contains(cfg.string() + ":2:14: error: auth.tokenFile: cannot "
                                            "read file " + (dir / "api-token").string() +
                                            ": No such file or directory"));

  write_file(dir / "api-token", "\n");
  Process empty({THINGSYNC_PATH, "validate", "--config", cfg.string()});
  REQUIRE(empty.wait() == 1);
  CHECK_THAT(empty.err(), Catch::Contains(cfg.string() + ":2:14: error: auth.tokenFile: file " +
                                          (dir / "api-token").string() + " is empty"));

  write_file(dir / "api-token", "a-token-of-the-validate-test\n");
  Process ok({THINGSYNC_PATH, "validate", "--config", cfg.string()});
  INFO(ok.err());
  CHECK(ok.wait() == 0);
}
