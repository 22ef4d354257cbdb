#include "thingsync/engine/plan_render.hpp"

#include <cstdio>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "thingsync/core/delete_rules.hpp"
#include "thingsync/core/time.hpp"

namespace thingsync::engine {
namespace {

struct Colors {
  const char* green;
  const char* yellow;
  const char* red;
  const char* bold;
  const char* reset;
};
constexpr Colors kColor{"\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1m", "\x1b[0m"};
constexpr Colors kPlain{"", "", "", "", ""};

std::string blocked_why(const core::Plan& plan, const core::BlockedDelete& b) {
  if (b.reason == core::BlockReason::kMaxDeletes) {
    std::size_t guarded = 0;
    for (const auto& x : plan.blocked) guarded += x.reason == core::BlockReason::kMaxDeletes;
    return "exceeds maxDeletes: " + std::to_string(guarded) + " deletes planned, at most " +
           std::to_string(plan.delete_limit) + " allowed";
  }
  return std::string(core::to_string(b.reason));
}

}  // namespace

std::string printable(std::string_view s) {
  std::string out(s.substr(0, 200));
  for (char& ch : out) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  return out;
}

std::string update_reason(const core::PlannedUpdate& u) {
  std::string s(core::to_string(u.reason));
  if (u.reason != core::UpdateReason::kChangedOutside) return s;
  if (u.modified_at_ms != 0) s += " at " + core::format_iso8601_ms(u.modified_at_ms);
  if (!u.modified_by.empty()) s += " by " + printable(u.modified_by);
  return s;
}

std::string plan_summary(const core::Plan& plan) {
  std::string s = std::to_string(plan.creates.size()) + " to create, " +
                  std::to_string(plan.updates.size()) + " to update, " +
                  std::to_string(plan.deletes.size()) + " to delete, " +
                  std::to_string(plan.unchanged) + " unchanged";
  if (!plan.blocked.empty()) s += ", " + std::to_string(plan.blocked.size()) + " deletes blocked";
  if (!plan.waiting.empty()) s += ", " + std::to_string(plan.waiting.size()) + " deletes waiting";
  if (plan.unmanaged > 0) {
    s += ", " + std::to_string(plan.unmanaged) + " unmanaged left alone (prune is off)";
  }
  return s;
}

namespace {

// The headline: what the plan does, first. It never says "No changes." while deletes are
// blocked.
std::string headline(const core::Plan& plan) {
  if (!plan.empty()) return "Plan: " + plan_summary(plan) + ".";
  if (!plan.blocked.empty()) return "Nothing to apply, but deletes are blocked: " + plan_summary(plan) + ".";
  if (!plan.waiting.empty()) return "Nothing to apply now, but deletes are waiting: " + plan_summary(plan) + ".";
  return "No changes. " + plan_summary(plan) + ".";
}

}  // namespace

std::string in_time(std::int64_t ms) {
  if (ms <= 0) return "now";
  const auto s = ms / 1000;
  if (s < 60) return "in " + std::to_string(s + 1) + "s";
  // Rounded up, and in the larger unit once it reaches one: "in 60m" is "in 1h".
  if (const auto m = (s + 59) / 60; m < 60) return "in " + std::to_string(m) + "m";
  return "in " + std::to_string((s + 3599) / 3600) + "h";
}

namespace {

std::string waiting_why(const core::WaitingDelete& w, std::int64_t now_ms) {
  const std::string when = core::format_iso8601_ms(w.not_before_ms);
  return w.why == core::WaitingDelete::Why::kGrace
             ? "in " + in_time(w.not_before_ms - now_ms).substr(3) + " (sync.deleteAfter, at " + when + ")"
             : "at the next delete window, " + when + " (" + in_time(w.not_before_ms - now_ms) + ")";
}

const char* kGuardNote =
    "The delete guard (sync.maxDeletes) blocked the whole delete set: review it, then "
    "apply it once with --max-deletes N, raise maxDeletes, or delete by hand.";

// Where a rendering goes: kept whole, or written to a stream 64 KiB at a time (a plan of a
// million bindings is ~80 MB of text: never held at once when it is printed).
class PlanOut {
 public:
  explicit PlanOut(std::FILE* to = nullptr) : to_(to) {}
  PlanOut& operator+=(std::string_view s) {
    buf_.append(s);
    if (to_ != nullptr && buf_.size() >= kChunk) flush();
    return *this;
  }
  PlanOut& operator+=(char ch) { return *this += std::string_view(&ch, 1); }
  void flush() {
    if (to_ == nullptr) return;
    std::fwrite(buf_.data(), 1, buf_.size(), to_);
    buf_.clear();
  }
  std::string take() { return std::move(buf_); }

 private:
  static constexpr std::size_t kChunk = std::size_t{64} << 10;
  std::FILE* to_;
  std::string buf_;
};

void text_into(PlanOut& out, const core::Plan& plan, bool color, std::int64_t now_ms) {
  const Colors& c = color ? kColor : kPlain;
  out += c.bold;
  out += headline(plan);
  out += c.reset;
  out += '\n';
  const auto group = [&](std::size_t n, const char* title) {
    if (n == 0) return false;
    out += "\n" + std::string(title) + " (" + std::to_string(n) + "):\n";
    return true;
  };
  if (group(plan.creates.size(), "Create")) {
    for (const auto& x : plan.creates) {
      out += c.green;
      out += "  + create ";
      out += c.reset;
      out += x.device.canonical();
      out += '\n';
    }
  }
  if (group(plan.updates.size(), "Update")) {
    for (const auto& x : plan.updates) {
      out += c.yellow;
      out += "  ~ update ";
      out += c.reset;
      out += x.device.canonical();
      out += " (";
      out += update_reason(x);
      out += ") id=" + x.binding_id + '\n';
    }
  }
  if (group(plan.deletes.size(), "Delete")) {
    for (const auto& x : plan.deletes) {
      out += c.red;
      out += "  - delete ";
      out += c.reset;
      out += x.device.canonical();
      out += " (";
      out += core::to_string(x.reason);
      out += ") id=" + x.binding_id + '\n';
    }
  }
  if (group(plan.waiting.size(), "Waiting deletes")) {
    for (const auto& x : plan.waiting) {
      out += c.red;
      out += "  - delete ";
      out += c.reset;
      out += x.del.device.canonical();
      out += " (";
      out += core::to_string(x.del.reason);
      out += ") id=" + x.del.binding_id + " " + waiting_why(x, now_ms) + '\n';
    }
  }
  if (group(plan.blocked.size(), "Blocked deletes")) {
    for (const auto& x : plan.blocked) {
      out += c.red;
      out += "  ! blocked delete ";
      out += c.reset;
      out += x.del.device.canonical();
      out += " (";
      out += core::to_string(x.del.reason);
      out += ") id=" + x.del.binding_id + ": " + blocked_why(plan, x) + '\n';
    }
  }
  if (plan.guard_blocked()) {
    out += '\n';
    out += kGuardNote;
    out += "\nTo delete exactly this set once: apply --approve-deletes " +
           core::blocked_deletes_hash(plan) + " (or that hash in sync.approvedDeletesFile).\n";
  }
}

void markdown_into(PlanOut& out, const core::Plan& plan, std::int64_t now_ms) {
  out += "### thingsync plan\n\n**" + headline(plan) + "**\n\n";
  out += "| action | bindings |\n| --- | ---: |\n";
  const auto row = [&](const char* what, std::size_t n) {
    out += "| " + std::string(what) + " | " + std::to_string(n) + " |\n";
  };
  row("create", plan.creates.size());
  row("update", plan.updates.size());
  row("delete", plan.deletes.size());
  row("blocked delete", plan.blocked.size());
  if (!plan.waiting.empty()) row("waiting delete", plan.waiting.size());
  row("unchanged", plan.unchanged);
  if (plan.unmanaged > 0) row("unmanaged (prune is off)", plan.unmanaged);
  const auto details = [&](std::size_t n, const std::string& title, auto&& each) {
    if (n == 0) return;
    out += "\n<details><summary>" + std::to_string(n) + " " + title + "</summary>\n\n";
    each();
    out += "\n</details>\n";
  };
  details(plan.creates.size(), "to create", [&] {
    for (const auto& x : plan.creates) out += "- `" + x.device.canonical() + "`\n";
  });
  details(plan.updates.size(), "to update", [&] {
    for (const auto& x : plan.updates) {
      out += "- `" + x.device.canonical() + "` (" + update_reason(x) + ") `" + x.binding_id +
             "`\n";
    }
  });
  details(plan.deletes.size(), "to delete", [&] {
    for (const auto& x : plan.deletes) {
      out += "- `" + x.device.canonical() + "` (" + std::string(core::to_string(x.reason)) +
             ") `" + x.binding_id + "`\n";
    }
  });
  details(plan.waiting.size(), "deletes waiting", [&] {
    for (const auto& x : plan.waiting) {
      out += "- `" + x.del.device.canonical() + "` (" +
             std::string(core::to_string(x.del.reason)) + ") `" + x.del.binding_id + "` " +
             waiting_why(x, now_ms) + "\n";
    }
  });
  details(plan.blocked.size(), "deletes blocked", [&] {
    for (const auto& x : plan.blocked) {
      out += "- `" + x.del.device.canonical() + "` (" +
             std::string(core::to_string(x.del.reason)) + ") `" + x.del.binding_id + "`: " +
             blocked_why(plan, x) + "\n";
    }
  });
  if (plan.guard_blocked()) {
    out += "\n> **" + std::string(kGuardNote) + "** Approve exactly this set with `--approve-deletes " +
           core::blocked_deletes_hash(plan) + "`.\n";
  }
}

}  // namespace

std::string render_plan_text(const core::Plan& plan, bool color, std::int64_t now_ms) {
  PlanOut out;
  text_into(out, plan, color, now_ms);
  return out.take();
}

void write_plan_text(std::FILE* to, const core::Plan& plan, bool color, std::int64_t now_ms) {
  PlanOut out(to);
  text_into(out, plan, color, now_ms);
  out.flush();
}

std::string render_plan_markdown(const core::Plan& plan, std::int64_t now_ms) {
  PlanOut out;
  markdown_into(out, plan, now_ms);
  return out.take();
}

void write_plan_markdown(std::FILE* to, const core::Plan& plan, std::int64_t now_ms) {
  PlanOut out(to);
  markdown_into(out, plan, now_ms);
  out.flush();
}

std::string render_plan_json(const core::Plan& plan) {
  using nlohmann::json;
  json j;
  auto& creates = j["create"] = json::array();
  for (const auto& x : plan.creates) creates.push_back({{"deviceId", x.device.canonical()}});
  auto& updates = j["update"] = json::array();
  for (const auto& x : plan.updates) {
    json u{{"deviceId", x.device.canonical()},
           {"id", x.binding_id},
           {"reason", core::to_string(x.reason)}};
    if (x.reason == core::UpdateReason::kChangedOutside) {
      if (x.modified_at_ms != 0) u["modifiedAt"] = core::format_iso8601_ms(x.modified_at_ms);
      if (!x.modified_by.empty()) u["modifiedBy"] = x.modified_by;
    }
    updates.push_back(std::move(u));
  }
  auto& deletes = j["delete"] = json::array();
  for (const auto& x : plan.deletes) {
    deletes.push_back({{"deviceId", x.device.canonical()},
                       {"id", x.binding_id},
                       {"reason", core::to_string(x.reason)}});
  }
  j["unchanged"] = plan.unchanged;
  auto& blocked = j["blocked"] = json::array();
  for (const auto& x : plan.blocked) {
    blocked.push_back({{"deviceId", x.del.device.canonical()},
                       {"id", x.del.binding_id},
                       {"reason", core::to_string(x.del.reason)},
                       {"blockedBy", core::to_string(x.reason)}});
  }
  auto& waiting = j["waiting"] = json::array();
  for (const auto& x : plan.waiting) {
    waiting.push_back({{"deviceId", x.del.device.canonical()},
                       {"id", x.del.binding_id},
                       {"reason", core::to_string(x.del.reason)},
                       {"waitsFor", x.why == core::WaitingDelete::Why::kGrace ? "deleteAfter"
                                                                               : "deleteWindow"},
                       {"notBefore", core::format_iso8601_ms(x.not_before_ms)}});
  }
  if (plan.guard_blocked()) j["blockedDeletesHash"] = core::blocked_deletes_hash(plan);
  j["unmanaged"] = plan.unmanaged;
  j["deleteLimit"] = plan.delete_limit;
  return j.dump() + "\n";
}

}  // namespace thingsync::engine
