#pragma once

// Cuts a failing history down to a short one that fails the same way (the same invariant):
// steps and faults dropped by bisection (halves, then quarters, ... then one at a time), then
// counts lowered by bisection (devices, concurrency, the request a fault hits, ...), over and
// over until nothing more can go or the budget of plays is spent.

#include <cstddef>

#include "history.hpp"
#include "world.hpp"

namespace thingsync::simulation {

struct Shrunk {
  History history;
  Outcome outcome;
  std::size_t plays = 0;  ///< histories played to get there
};

/// `failing` must fail (outcome.violation set).
Shrunk shrink(const History& failing, const Outcome& outcome, std::size_t max_plays = 4000);

}  // namespace thingsync::simulation
