#pragma once

#include "options.hpp"

namespace thingsync::sim {

/// Runs the simulator until SIGTERM/SIGINT: binds, prints "listening on <url>" as the
/// first stdout line, serves, then persists --data. Returns the process exit code.
int run_server(Options opts);

}  // namespace thingsync::sim
