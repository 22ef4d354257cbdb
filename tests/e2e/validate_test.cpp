// validate end to end: the real thingsync binary on desired-state files (no simulator needed).
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
