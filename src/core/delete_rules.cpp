#include "thingsync/core/delete_rules.hpp"

#include <algorithm>
#include <unordered_map>

#include "thingsync/core/digest.hpp"

namespace thingsync::core {
namespace {

bool by_device_then_id(const PlannedDelete& a, const PlannedDelete& b) {
  if (a.device != b.device) return a.device < b.device;
  return a.binding_id < b.binding_id;
}

}  // namespace

std::vector<Tombstone> hold_deletes(Plan& plan, std::span<const Tombstone> tombstones,
                                    const DeleteTiming& timing) {
  std::unordered_map<std::string_view, const Tombstone*> known;
  known.reserve(tombstones.size());
  for (const auto& t : tombstones) known.emplace(t.binding_id, &t);

  // Every delete this pass would make: those planned, and those the guard blocked.
  std::vector<PlannedDelete> candidates = std::move(plan.deletes);
  plan.deletes.clear();
  std::vector<BlockedDelete> kept_blocked;
  for (auto& b : plan.blocked) {
    if (b.reason == BlockReason::kMaxDeletes) {
      candidates.push_back(std::move(b.del));
    } else {
      kept_blocked.push_back(std::move(b));
    }
  }
  plan.blocked = std::move(kept_blocked);

  std::vector<Tombstone> keep;
  std::vector<std::string_view> matched;
  for (auto& c : candidates) {
    const auto it = known.find(c.binding_id);
    std::optional<Tombstone> t;
    if (it != known.end()) {
      t = *it->second;
      // A time ahead of the clock (a clock set back since) counts from now, never from later.
      t->since_ms = std::min(t->since_ms, timing.now_ms);
      t->confirmed_ms = std::min(t->confirmed_ms, timing.now_ms);
    }
    if (timing.full_list) {
      if (!t) t = Tombstone{c.binding_id, c.device, timing.now_ms, timing.now_ms};
      t->device = c.device;
      t->confirmed_ms = timing.now_ms;
    }
    if (it != known.end()) matched.push_back(it->first);
    const bool graced = timing.delete_after_ms <= 0 ||
                        (t && t->confirmed_ms - t->since_ms >= timing.delete_after_ms);
    if (t && timing.delete_after_ms > 0) keep.push_back(*t);
    if (!graced) {
      const std::int64_t due = (t ? t->since_ms : timing.now_ms) + timing.delete_after_ms;
      plan.waiting.push_back({std::move(c), WaitingDelete::Why::kGrace, due});
      continue;
    }
    if (timing.next_window) {
      if (const auto next = timing.next_window(timing.now_ms)) {
        plan.waiting.push_back({std::move(c), WaitingDelete::Why::kWindow, *next});
        continue;
      }
    }
    plan.deletes.push_back(std::move(c));
  }
  // Tombstones of devices outside this pass stay as they are; the others went with their reason.
  if (timing.in_pass) {
    std::sort(matched.begin(), matched.end());
    for (const auto& t : tombstones) {
      if (!timing.in_pass(t.device) &&
          !std::binary_search(matched.begin(), matched.end(), std::string_view(t.binding_id))) {
        keep.push_back(t);
      }
    }
  }
  std::sort(keep.begin(), keep.end(),
            [](const Tombstone& a, const Tombstone& b) { return a.binding_id < b.binding_id; });

  // The guard over what remains, whole or not at all.
  std::sort(plan.deletes.begin(), plan.deletes.end(), by_device_then_id);
  if (plan.deletes.size() > plan.delete_limit) {
    for (auto& d : plan.deletes) plan.blocked.push_back({std::move(d), BlockReason::kMaxDeletes});
    plan.deletes.clear();
  }
  std::sort(plan.blocked.begin(), plan.blocked.end(),
            [](const BlockedDelete& a, const BlockedDelete& b) {
              return by_device_then_id(a.del, b.del);
            });
  std::sort(plan.waiting.begin(), plan.waiting.end(),
            [](const WaitingDelete& a, const WaitingDelete& b) {
              return by_device_then_id(a.del, b.del);
            });
  return keep;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

int day_index(std::string_view d) {
  static constexpr std::string_view kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  const auto l = lower(d);
  for (int i = 0; i < 7; ++i) {
    if (l == kDays[i]) return i;
  }
  return -1;
}

// "09:00" -> 540; "24:00" only when `end`.
int minute_of_day(std::string_view t, bool end) {
  if (t.size() != 5 || t[2] != ':') return -1;
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(t[0]) || !digit(t[1]) || !digit(t[3]) || !digit(t[4])) return -1;
  const int h = (t[0] - '0') * 10 + (t[1] - '0');
  const int m = (t[3] - '0') * 10 + (t[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end))) return -1;
  return h * 60 + m;
}

}  // namespace

std::optional<DeleteWindow> parse_delete_window(std::string_view text, std::string& why) {
  std::vector<std::string_view> parts;
  for (std::size_t i = 0; i < text.size();) {
    while (i < text.size() && text[i] == ' ') ++i;
    const std::size_t j = std::min(text.find(' ', i), text.size());
    if (j > i) parts.push_back(text.substr(i, j - i));
    i = j;
  }
  if (parts.size() != 3) {
    why = "a window is DAYS HH:MM-HH:MM ZONE, as 'Mon-Fri 09:00-17:00 Europe/Amsterdam'";
    return std::nullopt;
  }
  DeleteWindow w;
  w.text = std::string(text);
  w.zone = std::string(parts[2]);
  for (std::size_t i = 0; i <= parts[0].size();) {
    const std::size_t j = std::min(parts[0].find(',', i), parts[0].size());
    const auto item = parts[0].substr(i, j - i);
    const std::size_t dash = item.find('-');
    const int a = day_index(item.substr(0, dash));
    const int b = dash == std::string_view::npos ? a : day_index(item.substr(dash + 1));
    if (a < 0 || b < 0) {
      why = "'" + std::string(item.substr(0, 20)) + "' is not a day or a range of days (Mon..Sun)";
      return std::nullopt;
    }
    for (int d = a;; d = (d + 1) % 7) {
      w.days = static_cast<std::uint8_t>(w.days | (1U << d));
      if (d == b) break;
    }
    i = j + 1;
  }
  const std::size_t dash = parts[1].find('-');
  w.start_minute = minute_of_day(parts[1].substr(0, dash), false);
  w.end_minute = dash == std::string_view::npos ? -1 : minute_of_day(parts[1].substr(dash + 1), true);
  if (w.start_minute < 0 || w.end_minute < 0) {
    why = "'" + std::string(parts[1].substr(0, 20)) + "' is not a time range HH:MM-HH:MM";
    return std::nullopt;
  }
  if (w.start_minute == w.end_minute) {
    why = "the window " + std::string(parts[1]) + " is empty";
    return std::nullopt;
  }
  return w;
}

std::string blocked_deletes_hash(const Plan& plan) {
  std::vector<std::string> lines;
  for (const auto& b : plan.blocked) {
    if (b.reason == BlockReason::kMaxDeletes) {
      lines.push_back(b.del.binding_id + " " + b.del.device.canonical() + "\n");
    }
  }
  if (lines.empty()) return {};
  std::sort(lines.begin(), lines.end());
  std::string all;
  for (const auto& l : lines) all += l;
  return sha256_hex(all).substr(0, 16);
}

bool approve_blocked_deletes(Plan& plan, std::string_view hash) {
  if (hash.empty() || blocked_deletes_hash(plan) != hash) return false;
  std::vector<BlockedDelete> rest;
  for (auto& b : plan.blocked) {
    if (b.reason == BlockReason::kMaxDeletes) {
      plan.deletes.push_back(std::move(b.del));
    } else {
      rest.push_back(std::move(b));
    }
  }
  plan.blocked = std::move(rest);
  std::sort(plan.deletes.begin(), plan.deletes.end(), by_device_then_id);
  return true;
}

}  // namespace thingsync::core
