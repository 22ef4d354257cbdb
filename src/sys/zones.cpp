#include "thingsync/sys/zones.hpp"

#include <algorithm>
#include <chrono>
#include <memory>

#include <date/tz.h>

namespace thingsync::sys {
namespace {

using Ms = std::chrono::milliseconds;
using LocalMs = date::local_time<Ms>;

struct ZonedWindow {
  core::DeleteWindow w;
  const date::time_zone* zone;
};

bool starts_on(const core::DeleteWindow& w, date::local_days day) {
  const unsigned iso = date::weekday(day).iso_encoding();  // Monday 1 .. Sunday 7
  return (w.days >> (iso - 1)) & 1U;
}

// Whether `local` is inside the window.
bool inside(const core::DeleteWindow& w, LocalMs local) {
  const auto day = date::floor<date::days>(local);
  const auto minute = std::chrono::duration_cast<std::chrono::minutes>(local - day).count();
  if (w.end_minute > w.start_minute) {
    return starts_on(w, day) && minute >= w.start_minute && minute < w.end_minute;
  }
  // Past midnight: from the start day's start, into the next day's end.
  return (starts_on(w, day) && minute >= w.start_minute) ||
         (starts_on(w, day - date::days{1}) && minute < w.end_minute);
}

std::int64_t to_ms(date::sys_time<Ms> t) { return t.time_since_epoch().count(); }

}  // namespace

core::Result<NextWindow, std::string> delete_window_schedule(
    const std::vector<core::DeleteWindow>& windows) {
  using R = core::Result<NextWindow, std::string>;
  if (windows.empty()) return NextWindow{};
  auto zoned = std::make_shared<std::vector<ZonedWindow>>();
  for (const auto& w : windows) {
    try {
      zoned->push_back({w, date::locate_zone(w.zone)});
    } catch (const std::exception&) {
      return R::failure("'" + w.zone.substr(0, 100) +
                        "' is not a time zone of the tz database (as Europe/Amsterdam)");
    }
  }
  return NextWindow([zoned](std::int64_t now_ms) -> std::optional<std::int64_t> {
    const date::sys_time<Ms> now{Ms{now_ms}};
    std::optional<std::int64_t> next;
    for (const auto& [w, zone] : *zoned) {
      const auto local = zone->to_local(now);
      if (inside(w, local)) return std::nullopt;
      const auto today = date::floor<date::days>(local);
      for (int k = -1; k <= 8; ++k) {
        const auto day = today + date::days{k};
        if (!starts_on(w, day)) continue;
        const LocalMs start{day + std::chrono::minutes{w.start_minute}};
        // A start the DST change skips is at the change; one it repeats, the first time.
        const auto at = zone->to_sys(start, date::choose::earliest);
        if (at > now && (!next || to_ms(at) < *next)) next = to_ms(at);
      }
    }
    return next;
  });
}

}  // namespace thingsync::sys
