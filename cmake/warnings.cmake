# Warnings on our own targets only; third-party headers come in as SYSTEM.
#
# -Werror is for the developer presets and CI (CMakePresets.json's base preset turns it on), not
# for every build: a distribution's flags (dpkg-buildflags), another optimisation level or a newer
# compiler bring new warnings, and a user's or packager's plain
# `cmake -B build -DCMAKE_BUILD_TYPE=Release` must not fail on them.
option(THINGSYNC_WERROR "Treat compiler warnings in thingsync's own code as errors" OFF)

add_library(thingsync_warnings INTERFACE)
add_library(thingsync::warnings ALIAS thingsync_warnings)
if(THINGSYNC_WERROR)
  target_compile_options(thingsync_warnings INTERFACE -Werror)
endif()
target_compile_options(thingsync_warnings INTERFACE
  -Wall -Wextra -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough
  # C++20 designated initializers may leave members at their defaults on purpose.
  -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(thingsync_warnings INTERFACE
    -Wshadow=local
    # GCC 12 reports false positives inside Boost 1.74 Asio's coroutine frame allocator for every
    # coroutine TU (more of them at -O1, the sanitizer build). -Wnull-dereference is left out for
    # the same reason.
    -Wno-mismatched-new-delete)
elseif(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Clang (the fuzz build) has no -Wshadow=local; its -Wshadow covers a local shadowing a local
  # or a parameter, plus a local shadowing a namespace-scope variable.
  target_compile_options(thingsync_warnings INTERFACE -Wshadow)
endif()
