#include "thingsync/core/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace thingsync::core {
namespace {

struct Unit {
  std::string_view name;
  std::int64_t ms;
};
// Largest first: a compound duration names each unit at most once, in this order.
constexpr std::array<Unit, 4> kUnits{{{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // index into kUnits of the smallest unit still allowed
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::int64_t number = 0;
    const std::size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      const int digit = text[pos] - '0';
      if (number > (kMax - digit) / 10) return std::nullopt;
      number = number * 10 + digit;
      ++pos;
    }
    if (pos == digits_start) return std::nullopt;  // sign, space, or a unit without a number
    const std::size_t unit_start = pos;
    while (pos < text.size() && text[pos] >= 'a' && text[pos] <= 'z') ++pos;
    const std::string_view unit = text.substr(unit_start, pos - unit_start);
    std::size_t u = next_unit;
    while (u < kUnits.size() && kUnits[u].name != unit) ++u;
    if (u == kUnits.size()) return std::nullopt;  // unknown, missing, repeated or out of order
    if (number > (kMax - total) / kUnits[u].ms) return std::nullopt;
    total += number * kUnits[u].ms;
    next_unit = u + 1;
  }
  return std::chrono::milliseconds(total);
}

}  // namespace thingsync::core
