#pragma once

// A history: one bad day of a thingsync installation, as plain values. A seed makes one
// (generate); the world (world.hpp) plays it; the shrinker (shrink.hpp) cuts it down. Every
// choice the world makes is written here, none is drawn while it plays: a history that lost
// some of its steps still plays the same way in the rest.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/core/plan.hpp"

namespace thingsync::simulation {

/// What happens to one request of a step (each page of a list is one request).
enum class FaultKind : std::uint8_t {
  k5xxBefore,      ///< 500 before anything happened (a POST: the client cannot tell)
  k5xxAfter,       ///< the write committed, then a gateway answered 502
  kTimeoutBefore,  ///< no answer, and the request never reached the API
  kTimeoutAfter,   ///< the write committed, then no answer
  k429,            ///< 429 without Retry-After
  k429RetryAfter,  ///< 429 with Retry-After: arg seconds
  kCrashBefore,    ///< the process dies before the request; arg: unsynced bytes that survive
  kCrashAfter,     ///< the process dies once the write committed; arg as above
  kPortal,         ///< a portal action (arg: PortalKind, arg2: whom) right before the request
};

/// What a portal user does. `whom` picks among the candidates in a fixed order, modulo.
enum class PortalKind : std::uint8_t {
  kCreate,      ///< a binding for a device (desired or not, in scope or not; maybe a duplicate)
  kDelete,      ///< a binding
  kReplace,     ///< deletes a binding and creates one for its device
  kEdit,        ///< a binding's password
  kMove,        ///< binds a binding to another device
  kFutureEdit,  ///< a password edit stamped by an API node whose clock runs an hour ahead
};
inline constexpr int kPortalKinds = 6;

struct Fault {
  std::uint16_t at = 0;  ///< the request of the step it hits, from 0
  FaultKind kind = FaultKind::k5xxBefore;
  std::uint16_t arg = 0;
  std::uint16_t arg2 = 0;
};

enum class StepKind : std::uint8_t {
  kPoll,          ///< the daemon's modifiedSince poll (a full pass when it found something)
  kFullResync,    ///< the daemon's full list and full pass
  kAdd,           ///< Git: a device is added (arg: which)
  kRemove,        ///< Git: a device is removed
  kPassword,      ///< Git: a device's password changes
  kBreakFile,     ///< Git: a file that does not parse (arg: which file)
  kSwapCheckout,  ///< Git: the desired-state symlink swapped to a new checkout (arg: reshuffle)
  kApply,         ///< the daemon is stopped and `thingsync apply --yes` runs once
  kCrash,         ///< the process dies between requests (arg: unsynced bytes that survive)
  kRestart,       ///< the daemon is stopped cleanly (SIGTERM); the next step starts it
  kPortal,        ///< a portal action (arg: PortalKind, arg2: whom)
};
inline constexpr int kStepKinds = 11;

/// One step. Time moves dt_s seconds before it; faults hit its requests.
struct Step {
  StepKind kind = StepKind::kPoll;
  std::uint32_t dt_s = 0;
  std::uint16_t arg = 0;
  std::uint16_t arg2 = 0;
  std::vector<Fault> faults;
};

/// The installation: drawn once per history.
struct Setup {
  std::uint32_t devices = 4;  ///< desired at the start
  std::uint32_t pool = 8;     ///< devices that Git may ever hold (d0 … d{pool-1})
  bool prune = true;
  core::DeleteLimit max_deletes{core::DeleteLimit::Kind::kCount, 2};
  std::uint32_t page_size = 2;
  std::uint32_t concurrency = 2;
  bool flush_each = false;  ///< a pass flushes its state after every device, or only at its end
  /// The API's cursors are offsets (FakeApi::offset_cursor): pages skip a binding deleted
  /// behind them. Never drawn by generate(): `thingsync-simulate --offset-cursors` sets it.
  bool offset_cursor = false;
};

struct History {
  std::uint64_t seed = 0;
  Setup setup;
  std::vector<Step> steps;
};

/// The history of `seed` (deterministic: the same seed, the same history, on any machine).
History generate(std::uint64_t seed);

/// "poll", "portal replaces", ... with the step's arguments, for the story.
std::string describe(const Step& step);
std::string describe(const Fault& fault);
std::string describe(const Setup& setup);
/// A history as one line of text, and back (a shrunk history is no longer its seed's).
std::string encode(const History& h);
std::optional<History> decode(std::string_view text);
/// The number of faults in all steps.
std::size_t fault_count(const History& h);

}  // namespace thingsync::simulation
