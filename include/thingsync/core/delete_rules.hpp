#pragma once

// What a delete must wait for, and what lets a blocked one through: the grace before a delete
// (sync.deleteAfter), the delete windows (sync.deleteWindows) and approvals bound to content
// (apply --approve-deletes, sync.approvedDeletesFile). Pure: the clock and the time zones
// come in as values and functions (docs/reference.md, "Deletes").

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thingsync/core/plan.hpp"

namespace thingsync::core {

/// A remote binding a pass would delete, remembered across passes and restarts: when its
/// reason was first seen, and when a full list last showed it still holding.
struct Tombstone {
  std::string binding_id;
  DeviceId device;
  std::int64_t since_ms = 0;      ///< first seen by a full list
  std::int64_t confirmed_ms = 0;  ///< the last full list that still showed the reason
};

struct DeleteTiming {
  std::int64_t now_ms = 0;
  std::int64_t delete_after_ms = 0;  ///< sync.deleteAfter; 0: no grace (deletes go at once)
  /// The observation is a full list made now: it confirms the tombstones it still shows.
  bool full_list = false;
  /// sync.deleteWindows: nullopt when a delete may go at `now_ms`, else the start of the next
  /// window (ms). Unset: any time.
  std::function<std::optional<std::int64_t>(std::int64_t now_ms)> next_window;
  /// The devices this pass plans for (a --target pass: some); unset: all. Tombstones of other
  /// devices are kept as they are.
  std::function<bool(const DeviceId&)> in_pass;
};

/// Holds back the deletes of `plan` that may not go yet, into plan.waiting: those whose reason
/// has not held across full lists spanning delete_after_ms (the tombstone's confirmed - since),
/// then those outside a delete window. The delete guard then counts the deletes that remain
/// (a set over sync.maxDeletes is blocked whole, as make_plan does). Returns the tombstones to
/// keep: one per delete of this pass (new ones from a full list start now), those of devices
/// outside the pass, and no other (a delete whose reason went, a device restored to the
/// desired state, costs nothing).
std::vector<Tombstone> hold_deletes(Plan& plan, std::span<const Tombstone> tombstones,
                                    const DeleteTiming& timing);

/// One weekly window of sync.deleteWindows: "Mon-Fri 09:00-17:00 Europe/Amsterdam". Days are
/// a day, a range or a comma list (Mon..Sun, any case; "Sat,Sun", "Fri-Mon" wraps); the times
/// are local to the named IANA time zone, end after start ("24:00" for midnight), or end before
/// start for a window that runs past midnight into the next day.
struct DeleteWindow {
  std::uint8_t days = 0;     ///< bit 0 Monday … bit 6 Sunday: the days a window starts on
  int start_minute = 0;      ///< 0..1439
  int end_minute = 0;        ///< 1..1440; <= start_minute: ends the next day
  std::string zone;          ///< "Europe/Amsterdam"
  std::string text;          ///< as written, for messages
};
/// Parses one window; the error says what is wrong with it.
std::optional<DeleteWindow> parse_delete_window(std::string_view text, std::string& why);

/// The hash of the delete set the guard blocked (kMaxDeletes): 16 hex digits of SHA-256 over
/// its sorted binding ids and devices. "" when nothing is blocked by the guard. One binding
/// more or less gives another hash.
std::string blocked_deletes_hash(const Plan& plan);

/// Lets the blocked set through when `hash` is its blocked_deletes_hash(): it moves to
/// plan.deletes. False (nothing changed) when the hash is not that set's.
bool approve_blocked_deletes(Plan& plan, std::string_view hash);

}  // namespace thingsync::core
