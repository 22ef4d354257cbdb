#pragma once

// The simulated world of docs/reliability.md ("Simulation"): one thingsync installation
// against an in-memory Things API (FakeApi), played step by step from a History. The real
// engine runs inside it: the daemon's Reconciler and Observer, the desired-state holder on
// real files (a symlinked checkout), the one-shot pass of `apply`, the state store on a
// MemoryMedium whose crash keeps only synced bytes. Time is virtual (the API's clock).
// After every request and every step it checks the invariants; after the last step the
// faults stop and it checks that the world converges.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "history.hpp"

namespace thingsync::simulation {

struct Violation {
  std::string invariant;  ///< a short name: "second binding", "liveness", ...
  std::string detail;
};

struct Outcome {
  std::optional<Violation> violation;
  /// The history as it played: one line per step, then the violation, if any.
  std::vector<std::string> story;
  /// A digest of every request, answer and the final store: equal for equal plays.
  std::uint64_t digest = 0;
  std::size_t requests = 0;
};

/// Plays `history` and checks it. Deterministic: the same history, the same outcome.
/// Logs of the engine go to a capture (scanned for secrets), not to the terminal.
Outcome play(const History& history);

/// The story of `outcome` as one text: the seed, the setup, a legend, the steps.
std::string render(const History& history, const Outcome& outcome);

}  // namespace thingsync::simulation
