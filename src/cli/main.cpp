#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/prctl.h>

#include "cli/app.hpp"

namespace {

// A core file of thingsync would hold the API token, the OAuth2 client secret, the fleet key
// and passwords in use: no core dumps (and no ptrace attach by the same user) unless
// THINGSYNC_ALLOW_CORE_DUMPS=1 asks for them while debugging (docs/operations.md,
// "Hardening notes"). First thing, before any secret is read.
void forbid_core_dumps() {
  const char* allow = std::getenv("THINGSYNC_ALLOW_CORE_DUMPS");
  if (allow != nullptr && std::strcmp(allow, "1") == 0) {
    std::fprintf(stderr,
                 "thingsync: THINGSYNC_ALLOW_CORE_DUMPS=1: core dumps are on, and a core file "
                 "may hold the API token and passwords\n");
    return;
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    std::fprintf(stderr, "thingsync: cannot turn core dumps off: %s\n", std::strerror(errno));
  }
}

}  // namespace

int main(int argc, char** argv) {
  forbid_core_dumps();
  return thingsync::cli::main(argc, argv);
}
