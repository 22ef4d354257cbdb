#include "http_date.hpp"

#include <string>

#include "thingsync/core/time.hpp"

namespace thingsync::sim {
namespace {

constexpr std::string_view kDays = "ThuFriSatSunMonTueWed";  // 1970-01-01 was a Thursday
constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";

}  // namespace

std::string_view HttpDate::format(std::int64_t unix_seconds) {
  if (set_ && unix_seconds == second_) return {text_, sizeof text_};
  // "2025-09-01T23:00:00.000Z": the calendar arithmetic is core's.
  const std::string iso = core::format_iso8601_ms(unix_seconds * 1000);
  const std::string_view year(iso.data(), 4), day(iso.data() + 8, 2), time(iso.data() + 11, 8);
  const auto month = static_cast<std::size_t>((iso[5] - '0') * 10 + (iso[6] - '0'));
  const std::int64_t days =
      unix_seconds >= 0 ? unix_seconds / 86400 : -((-unix_seconds + 86399) / 86400);
  const auto weekday = static_cast<std::size_t>((days % 7 + 7) % 7);

  char* t = text_;
  kDays.copy(t, 3, weekday * 3);
  t[3] = ',';
  t[4] = ' ';
  day.copy(t + 5, 2);
  t[7] = ' ';
  kMonths.copy(t + 8, 3, (month - 1) * 3);
  t[11] = ' ';
  year.copy(t + 12, 4);
  t[16] = ' ';
  time.copy(t + 17, 8);
  std::string_view(" GMT").copy(t + 25, 4);
  second_ = unix_seconds;
  set_ = true;
  return {text_, sizeof text_};
}

}  // namespace thingsync::sim
