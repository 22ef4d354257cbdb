// The shipped examples must validate cleanly: the demo runs exactly this.
#include <catch2/catch.hpp>

#include "test_support.hpp"
#include "thingsync/config/config.hpp"
#include "thingsync/config/desired_state.hpp"
#include "thingsync/config/password_resolver.hpp"

using thingsync::config::test::all;
using thingsync::config::test::env_of;

TEST_CASE("the example config and desired state validate without errors or warnings",
          "[config][examples]") {
  const std::string root = THINGSYNC_SOURCE_DIR;
  const auto env = env_of({{"THINGSYNC_FLEET_KEY_FILE", root + "/examples/secrets/fleet-key"}});
  auto cfg = thingsync::config::load_config_file(root + "/examples/config.yaml", env);
  INFO((cfg.ok() ? std::string() : all(cfg.error())));
  REQUIRE(cfg.ok());
  CHECK(cfg->api.base_url == "http://127.0.0.1:8080");
  CHECK(cfg->desired_state_path == root + "/examples/desired-state");

  thingsync::config::LoadOptions o;
  o.env = env;
  const auto r = thingsync::config::load_desired_state(cfg->desired_state_path, o);
  INFO(all(r.diagnostics));
  CHECK(r.diagnostics.empty());
  CHECK(r.state.files.size() >= 5);
  CHECK(r.state.bindings.size() >= 30);
  CHECK(r.state.sources.size() == 2);  // the shared fleet key and one password file
  CHECK(all(thingsync::config::validate_sources(r.state, env)).empty());
}
