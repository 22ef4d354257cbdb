#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "thingsync/core/delete_rules.hpp"
#include "thingsync/core/result.hpp"

namespace thingsync::sys {

/// When deletes may go under sync.deleteWindows: nullopt while a window is open at `now_ms`,
/// else the start of the next one (ms since the epoch).
using NextWindow = std::function<std::optional<std::int64_t>(std::int64_t now_ms)>;

/// The schedule of `windows` in their IANA time zones (the system's tz database,
/// /usr/share/zoneinfo, through Howard Hinnant's date library: no hand-written rules). Local
/// times that a DST change skips start at the change; those it repeats, at their first
/// occurrence. Fails, naming the zone, when a zone is unknown. No windows: any time.
core::Result<NextWindow, std::string> delete_window_schedule(
    const std::vector<core::DeleteWindow>& windows);

}  // namespace thingsync::sys
