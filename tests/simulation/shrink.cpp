#include "shrink.hpp"

#include <algorithm>
#include <functional>
#include <optional>

namespace thingsync::simulation {
namespace {

class Shrinker {
 public:
  Shrinker(const History& h, const Outcome& o, std::size_t max_plays)
      : best_{h, o, 0}, invariant_(o.violation->invariant), max_plays_(max_plays) {}

  Shrunk run() {
    for (bool progress = true; progress && budget();) {
      progress = false;
      progress |= drop_chunks(
          [](History& h) -> std::size_t { return h.steps.size(); },
          [](History& h, std::size_t i, std::size_t n) {
            h.steps.erase(h.steps.begin() + static_cast<std::ptrdiff_t>(i),
                          h.steps.begin() + static_cast<std::ptrdiff_t>(i + n));
          });
      for (std::size_t s = 0; s < best_.history.steps.size() && budget(); ++s) {
        progress |= drop_chunks(
            [s](History& h) -> std::size_t {
              return s < h.steps.size() ? h.steps[s].faults.size() : 0;
            },
            [s](History& h, std::size_t i, std::size_t n) {
              auto& f = h.steps[s].faults;
              f.erase(f.begin() + static_cast<std::ptrdiff_t>(i),
                      f.begin() + static_cast<std::ptrdiff_t>(i + n));
            });
      }
      progress |= lower_counts();
    }
    return best_;
  }

 private:
  bool budget() const { return best_.plays < max_plays_; }

  // True (and kept) when the candidate still fails the same way.
  bool try_candidate(const History& candidate) {
    if (!budget()) return false;
    ++best_.plays;
    auto o = play(candidate);
    if (!o.violation || o.violation->invariant != invariant_) return false;
    const auto plays = best_.plays;
    best_ = {candidate, std::move(o), plays};
    return true;
  }

  // Removes runs of n items (n = half, quarter, ..., 1) while the history keeps failing.
  bool drop_chunks(const std::function<std::size_t(History&)>& size,
                   const std::function<void(History&, std::size_t, std::size_t)>& erase) {
    bool any = false;
    for (std::size_t n = std::max<std::size_t>(1, size(best_.history) / 2); n >= 1; n /= 2) {
      for (std::size_t i = 0; i + n <= size(best_.history) && budget();) {
        History c = best_.history;
        erase(c, i, n);
        if (try_candidate(c)) {
          any = true;
        } else {
          i += n;
        }
      }
      if (n == 1) break;
    }
    return any;
  }

  using Get = std::function<std::optional<std::uint32_t>(const History&)>;
  using Set = std::function<void(History&, std::uint32_t)>;

  // Lowers one number toward `lo` by bisection: the lowest value that still fails.
  bool lower(const Get& get, const Set& set, std::uint32_t lo) {
    const auto now = get(best_.history);
    if (!now || *now <= lo) return false;
    std::uint32_t from = lo, to = *now;  // `to` fails
    bool moved = false;
    while (from < to && budget()) {
      const std::uint32_t mid = from + (to - from) / 2;
      History m = best_.history;
      set(m, mid);
      if (get(m) != mid) {  // clamped (a pool cannot be smaller than the fleet)
        from = mid + 1;
        continue;
      }
      if (try_candidate(m)) {
        to = mid;
        moved = true;
      } else {
        from = mid + 1;
      }
    }
    return moved;
  }

  bool lower_counts() {
    bool any = false;
    any |= lower([](const History& h) { return std::optional(h.setup.devices); },
                 [](History& h, std::uint32_t v) { h.setup.devices = v; }, 1);
    any |= lower([](const History& h) { return std::optional(h.setup.pool); },
                 [](History& h, std::uint32_t v) { h.setup.pool = std::max(v, h.setup.devices); },
                 1);
    any |= lower([](const History& h) { return std::optional(h.setup.concurrency); },
                 [](History& h, std::uint32_t v) { h.setup.concurrency = v; }, 1);
    for (std::size_t s = 0; s < best_.history.steps.size() && budget(); ++s) {
      auto step = [s](const History& h) { return s < h.steps.size() ? &h.steps[s] : nullptr; };
      any |= lower(
          [step](const History& h) -> std::optional<std::uint32_t> {
            if (const auto* st = step(h)) return st->dt_s;
            return std::nullopt;
          },
          [s](History& h, std::uint32_t v) { h.steps[s].dt_s = v; }, 0);
      for (std::size_t f = 0; budget(); ++f) {
        const auto* st = step(best_.history);
        if (!st || f >= st->faults.size()) break;
        auto fault = [s, f](const History& h) -> const Fault* {
          if (s >= h.steps.size() || f >= h.steps[s].faults.size()) return nullptr;
          return &h.steps[s].faults[f];
        };
        any |= lower(
            [fault](const History& h) -> std::optional<std::uint32_t> {
              if (const auto* x = fault(h)) return x->at;
              return std::nullopt;
            },
            [s, f](History& h, std::uint32_t v) {
              h.steps[s].faults[f].at = static_cast<std::uint16_t>(v);
            },
            0);
      }
    }
    return any;
  }

  Shrunk best_;
  std::string invariant_;
  std::size_t max_plays_;
};

}  // namespace

Shrunk shrink(const History& failing, const Outcome& outcome, std::size_t max_plays) {
  return Shrinker(failing, outcome, max_plays).run();
}

}  // namespace thingsync::simulation
