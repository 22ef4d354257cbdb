#include "history.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace thingsync::simulation {
namespace {

// splitmix64: the same numbers from a seed on every platform and standard library (the
// std distributions are not specified to the bit).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// 0 … n-1
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
  std::uint32_t between(std::uint32_t lo, std::uint32_t hi) { return lo + below(hi - lo + 1); }
  bool chance(std::uint32_t percent) { return below(100) < percent; }
  /// An index drawn by weight.
  template <std::size_t N>
  std::size_t pick(const std::array<std::uint32_t, N>& weights) {
    std::uint32_t total = 0;
    for (auto w : weights) total += w;
    std::uint32_t r = below(total);
    for (std::size_t i = 0; i < N; ++i) {
      if (r < weights[i]) return i;
      r -= weights[i];
    }
    return N - 1;
  }

 private:
  std::uint64_t s_;
};

const char* portal_name(std::uint16_t kind) {
  switch (static_cast<PortalKind>(kind % kPortalKinds)) {
    case PortalKind::kCreate: return "creates";
    case PortalKind::kDelete: return "deletes";
    case PortalKind::kReplace: return "replaces";
    case PortalKind::kEdit: return "edits";
    case PortalKind::kMove: return "moves";
    case PortalKind::kFutureEdit: return "edits (clock 1h ahead)";
  }
  return "?";
}

}  // namespace

History generate(std::uint64_t seed) {
  Rng rng(seed);
  History h;
  h.seed = seed;
  Setup& s = h.setup;
  s.devices = rng.between(3, 12);
  s.pool = s.devices + 4;
  s.prune = rng.chance(85);
  if (rng.chance(70)) {
    s.max_deletes = {core::DeleteLimit::Kind::kCount, static_cast<double>(rng.between(1, 4))};
  } else {
    s.max_deletes = {core::DeleteLimit::Kind::kPercent, rng.chance(50) ? 25.0 : 50.0};
  }
  s.page_size = rng.between(1, 4);
  s.concurrency = rng.between(1, 4);
  s.flush_each = rng.chance(50);

  // Some days are calm, some are not.
  static constexpr std::array<std::uint32_t, 4> kFaultPercent = {0, 4, 12, 25};
  const std::uint32_t fault_percent = kFaultPercent[rng.below(4)];
  const std::uint32_t crash_weight = rng.chance(50) ? 0 : 3;
  const std::uint32_t n = rng.between(20, 60);
  static constexpr std::array<std::uint32_t, kStepKinds> kWeights = {
      25,  // poll
      10,  // full resync
      5,   // add
      5,   // remove
      6,   // password
      2,   // broken file
      2,   // swapped checkout
      4,   // apply
      3,   // crash
      2,   // restart
      16,  // portal
  };
  const std::array<std::uint32_t, 9> fault_weights = {3, 3, 2, 3, 1, 1, crash_weight,
                                                      crash_weight * 2, 3};
  for (std::uint32_t i = 0; i < n; ++i) {
    Step st;
    st.kind = static_cast<StepKind>(rng.pick(kWeights));
    if (st.kind == StepKind::kCrash && crash_weight == 0) st.kind = StepKind::kRestart;
    st.dt_s = (st.kind == StepKind::kPoll || st.kind == StepKind::kFullResync) ? 30
                                                                               : rng.between(1, 20);
    st.arg = static_cast<std::uint16_t>(rng.below(1024));
    st.arg2 = static_cast<std::uint16_t>(rng.below(1024));
    if (st.kind == StepKind::kPortal) st.arg %= kPortalKinds;
    for (std::uint16_t at = 0; at < 12; ++at) {
      if (!rng.chance(fault_percent)) continue;
      Fault f;
      f.at = at;
      f.kind = static_cast<FaultKind>(rng.pick(fault_weights));
      f.arg = static_cast<std::uint16_t>(rng.below(f.kind == FaultKind::kPortal ? kPortalKinds : 64));
      f.arg2 = static_cast<std::uint16_t>(rng.below(1024));
      if (f.kind == FaultKind::k429RetryAfter) f.arg = static_cast<std::uint16_t>(1 + f.arg % 30);
      st.faults.push_back(f);
    }
    h.steps.push_back(std::move(st));
  }
  return h;
}

std::string describe(const Step& st) {
  const auto a = std::to_string(st.arg);
  switch (st.kind) {
    case StepKind::kPoll: return "poll";
    case StepKind::kFullResync: return "full resync";
    case StepKind::kAdd: return "git adds a device (" + a + ")";
    case StepKind::kRemove: return "git removes a device (" + a + ")";
    case StepKind::kPassword: return "git changes a password (" + a + ")";
    case StepKind::kBreakFile: return "git commits a file that does not parse (" + a + ")";
    case StepKind::kSwapCheckout: return "git-sync swaps the checkout (" + a + ")";
    case StepKind::kApply: return "daemon stopped; apply --yes";
    case StepKind::kCrash: return "kill -9 (" + a + " unsynced bytes kept)";
    case StepKind::kRestart: return "systemctl restart";
    case StepKind::kPortal:
      return std::string("portal ") + portal_name(st.arg) + " (" + std::to_string(st.arg2) + ")";
  }
  return "?";
}

std::string describe(const Fault& f) {
  const auto at = "#" + std::to_string(f.at) + " ";
  switch (f.kind) {
    case FaultKind::k5xxBefore: return at + "500";
    case FaultKind::k5xxAfter: return at + "commit, then 502";
    case FaultKind::kTimeoutBefore: return at + "timeout before sending";
    case FaultKind::kTimeoutAfter: return at + "commit, then timeout";
    case FaultKind::k429: return at + "429";
    case FaultKind::k429RetryAfter: return at + "429 Retry-After " + std::to_string(f.arg);
    case FaultKind::kCrashBefore: return at + "kill -9 before it";
    case FaultKind::kCrashAfter: return at + "kill -9 after its commit";
    case FaultKind::kPortal:
      return at + "portal " + portal_name(f.arg) + " (" + std::to_string(f.arg2) + ") first";
  }
  return "?";
}

std::string describe(const Setup& s) {
  std::string limit = s.max_deletes.kind == core::DeleteLimit::Kind::kCount
                          ? std::to_string(static_cast<int>(s.max_deletes.value))
                          : std::to_string(static_cast<int>(s.max_deletes.value)) + "%";
  return std::to_string(s.devices) + " desired devices of d0..d" + std::to_string(s.pool - 1) +
         ", prune " + (s.prune ? "on" : "off") + ", maxDeletes " + limit + ", page size " +
         std::to_string(s.page_size) + ", concurrency " + std::to_string(s.concurrency) +
         (s.flush_each ? ", flush after each device" : ", flush at the end of a pass") +
         (s.offset_cursor ? ", offset cursors" : "");
}

// Format: seed/devices.pool.prune.kind.value.page.concurrency.flush[.1 for offset
// cursors]/step/step/...; a step is
// kind.dt.arg.arg2 followed by ,at.kind.arg.arg2 per fault.
std::string encode(const History& h) {
  const auto& s = h.setup;
  std::string out = std::to_string(h.seed) + "/" + std::to_string(s.devices) + "." +
                    std::to_string(s.pool) + "." + std::to_string(s.prune) + "." +
                    std::to_string(static_cast<int>(s.max_deletes.kind)) + "." +
                    std::to_string(static_cast<int>(s.max_deletes.value)) + "." +
                    std::to_string(s.page_size) + "." + std::to_string(s.concurrency) + "." +
                    std::to_string(s.flush_each) + (s.offset_cursor ? ".1" : "");
  for (const auto& st : h.steps) {
    out += "/" + std::to_string(static_cast<int>(st.kind)) + "." + std::to_string(st.dt_s) + "." +
           std::to_string(st.arg) + "." + std::to_string(st.arg2);
    for (const auto& f : st.faults) {
      out += "," + std::to_string(f.at) + "." + std::to_string(static_cast<int>(f.kind)) + "." +
             std::to_string(f.arg) + "." + std::to_string(f.arg2);
    }
  }
  return out;
}

namespace {
// Numbers separated by any of `seps`; false when anything else is in the way.
bool numbers(std::string_view text, std::vector<std::uint64_t>& out) {
  out.clear();
  while (!text.empty()) {
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc()) return false;
    out.push_back(v);
    text.remove_prefix(static_cast<std::size_t>(p - text.data()));
    if (!text.empty()) {
      if (text.front() != '.' && text.front() != ',') return false;
      text.remove_prefix(1);
    }
  }
  return true;
}
}  // namespace

std::optional<History> decode(std::string_view text) {
  std::vector<std::string_view> parts;
  for (std::size_t at = 0;;) {
    const auto slash = text.find('/', at);
    parts.push_back(text.substr(at, slash == std::string_view::npos ? slash : slash - at));
    if (slash == std::string_view::npos) break;
    at = slash + 1;
  }
  std::vector<std::uint64_t> n;
  if (parts.size() < 2 || !numbers(parts[0], n) || n.size() != 1) return std::nullopt;
  History h;
  h.seed = n[0];
  if (!numbers(parts[1], n) || n.size() < 8 || n.size() > 9) return std::nullopt;
  auto& s = h.setup;
  s.devices = static_cast<std::uint32_t>(n[0]);
  s.pool = static_cast<std::uint32_t>(n[1]);
  s.prune = n[2] != 0;
  s.max_deletes = {n[3] ? core::DeleteLimit::Kind::kPercent : core::DeleteLimit::Kind::kCount,
                   static_cast<double>(n[4])};
  s.page_size = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, n[5]));
  s.concurrency = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, n[6]));
  s.flush_each = n[7] != 0;
  s.offset_cursor = n.size() == 9 && n[8] != 0;
  if (s.pool < s.devices || s.pool > 64) return std::nullopt;
  for (std::size_t i = 2; i < parts.size(); ++i) {
    if (!numbers(parts[i], n) || n.size() % 4 != 0 || n.empty()) return std::nullopt;
    Step st;
    if (n[0] >= kStepKinds) return std::nullopt;
    st.kind = static_cast<StepKind>(n[0]);
    st.dt_s = static_cast<std::uint32_t>(n[1]);
    st.arg = static_cast<std::uint16_t>(n[2]);
    st.arg2 = static_cast<std::uint16_t>(n[3]);
    for (std::size_t j = 4; j < n.size(); j += 4) {
      if (n[j + 1] > static_cast<std::uint64_t>(FaultKind::kPortal)) return std::nullopt;
      st.faults.push_back({static_cast<std::uint16_t>(n[j]), static_cast<FaultKind>(n[j + 1]),
                           static_cast<std::uint16_t>(n[j + 2]),
                           static_cast<std::uint16_t>(n[j + 3])});
    }
    h.steps.push_back(std::move(st));
  }
  return h;
}

std::size_t fault_count(const History& h) {
  std::size_t n = 0;
  for (const auto& st : h.steps) n += st.faults.size();
  return n;
}

}  // namespace thingsync::simulation
