#pragma once

namespace thingsync::cli {

/// Exit codes (docs/reference.md, "Exit codes").
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitChanges = 2,
  kExitGuard = 3,
  kExitUsage = 64,
};

/// Parses the command line, runs one subcommand, returns its exit code. Never throws.
int main(int argc, char** argv);

}  // namespace thingsync::cli
