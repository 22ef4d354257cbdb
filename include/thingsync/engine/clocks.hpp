#pragma once

#include <cstdint>
#include <functional>

namespace thingsync::engine {

/// The engine's two clocks, injected so that a test or a simulation can drive them.
struct Clocks {
  std::function<std::int64_t()> wall_ms;   ///< ms since the Unix epoch (system clock)
  std::function<std::int64_t()> local_ms;  ///< a monotonic clock, ms (steady clock)

  /// The system clock and the steady clock.
  static Clocks system();
};

}  // namespace thingsync::engine
