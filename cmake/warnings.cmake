# Warnings as errors on our own targets only; third-party headers come in as SYSTEM.
add_library(thingsync_warnings INTERFACE)
add_library(thingsync::warnings ALIAS thingsync_warnings)
target_compile_options(thingsync_warnings INTERFACE
  -Wall -Wextra -Werror -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
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
