#include "thingsync/engine/change_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "thingsync/core/digest.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/engine/saved_plan.hpp"
#include "thingsync/obs/log.hpp"
#include "thingsync/sys/journald.hpp"

namespace thingsync::engine {
namespace {

using Json = nlohmann::ordered_json;  // the fields in the order a reader looks for them

std::optional<obs::Action> parse_action(std::string_view s) {
  for (const auto a : {obs::Action::kCreate, obs::Action::kUpdate, obs::Action::kDelete}) {
    if (obs::to_string(a) == s) return a;
  }
  return std::nullopt;
}

std::optional<WriteResult> parse_result(std::string_view s) {
  for (const auto r : {WriteResult::kOk, WriteResult::kFailed, WriteResult::kUnknown}) {
    if (to_string(r) == s) return r;
  }
  return std::nullopt;
}

Json stamp_json(const WriteStamp& s) {
  Json j;
  j["modifiedAt"] = s.modified_at_ms ? Json(core::format_iso8601_ms(s.modified_at_ms)) : Json();
  j["modifiedBy"] = s.modified_by.empty() ? Json() : Json(s.modified_by);
  return j;
}

// A string member, "" when it is null or absent; nullopt when it is anything else.
std::optional<std::string> text_of(const Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<WriteStamp> parse_stamp(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  WriteStamp s;
  const auto at = text_of(j, "modifiedAt");
  const auto by = text_of(j, "modifiedBy");
  if (!at || !by) return std::nullopt;
  if (!at->empty()) {
    const auto ms = core::parse_iso8601_ms(*at);
    if (!ms) return std::nullopt;
    s.modified_at_ms = *ms;
  }
  s.modified_by = *by;
  return s;
}

// One line for the journal's MESSAGE: what `journalctl` shows without -o verbose.
std::string message(const WriteRecord& r) {
  std::string m = "thingsync ";
  m += obs::to_string(r.action);
  m += ' ';
  m += r.device;
  if (!r.binding_id.empty()) m += " id=" + r.binding_id;
  m += ' ';
  m += to_string(r.result);
  if (r.status != 0) m += " status=" + std::to_string(r.status);
  if (!r.reason.empty()) m += " (" + r.reason + ")";
  if (!r.error.empty()) m += ": " + r.error;
  return m;
}

}  // namespace

std::string_view to_string(WriteResult r) {
  switch (r) {
    case WriteResult::kOk:
      return "ok";
    case WriteResult::kFailed:
      return "failed";
    case WriteResult::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::string to_json_line(const WriteRecord& r) {
  Json j;
  j["time"] = core::format_iso8601_ms(r.time_ms);
  j["action"] = obs::to_string(r.action);
  j["device"] = r.device;
  j["bindingId"] = r.binding_id.empty() ? Json() : Json(r.binding_id);
  j["result"] = to_string(r.result);
  j["status"] = r.status != 0 ? Json(r.status) : Json();
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (!r.error.empty()) j["error"] = r.error;
  j["planHash"] = r.plan_hash;
  j["desiredCommit"] = r.desired_commit.empty() ? Json() : Json(r.desired_commit);
  if (r.before) j["before"] = stamp_json(*r.before);
  if (r.after) j["after"] = stamp_json(*r.after);
  // Bytes that are not UTF-8 (a modifiedBy from a misbehaving API) become U+FFFD, not a throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<WriteRecord> parse_json_line(std::string_view line) {
  const auto j = Json::parse(line, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  WriteRecord r;
  const auto time = text_of(j, "time");
  const auto action = text_of(j, "action");
  const auto device = text_of(j, "device");
  const auto id = text_of(j, "bindingId");
  const auto result = text_of(j, "result");
  const auto reason = text_of(j, "reason");
  const auto error = text_of(j, "error");
  const auto hash = text_of(j, "planHash");
  const auto commit = text_of(j, "desiredCommit");
  if (!time || !action || !device || !id || !result || !reason || !error || !hash || !commit) {
    return std::nullopt;
  }
  const auto ms = core::parse_iso8601_ms(*time);
  const auto a = parse_action(*action);
  const auto res = parse_result(*result);
  if (!ms || !a || !res || device->empty()) return std::nullopt;
  r.time_ms = *ms;
  r.action = *a;
  r.device = *device;
  r.binding_id = *id;
  r.result = *res;
  if (const auto s = j.find("status"); s != j.end() && !s->is_null()) {
    if (!s->is_number_integer()) return std::nullopt;
    r.status = s->get<int>();
  }
  r.reason = *reason;
  r.error = *error;
  r.plan_hash = *hash;
  r.desired_commit = *commit;
  for (auto [key, stamp] : {std::pair{"before", &r.before}, std::pair{"after", &r.after}}) {
    const auto it = j.find(key);
    if (it == j.end()) continue;
    *stamp = parse_stamp(*it);
    if (!*stamp) return std::nullopt;
  }
  return r;
}

std::string plan_hash(const core::Plan& plan) {
  std::string text;
  for (const auto& op : describe_plan(plan, {}).operations) {
    text += op;
    text += '\n';
  }
  return core::sha256_hex(text).substr(0, 16);
}

std::vector<core::DeviceId> written_devices(const core::Plan& plan) {
  std::vector<core::DeviceId> out;
  out.reserve(plan.updates.size() + plan.deletes.size());
  for (const auto& u : plan.updates) out.push_back(u.device);
  for (const auto& d : plan.deletes) out.push_back(d.device);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

ChangeJournal::ChangeJournal(Options options) : opts_(std::move(options)) {}

void ChangeJournal::record(const WriteRecord& record) {
  if (!opts_.path && !opts_.journald) return;
  std::string line;
  try {
    line = to_json_line(record);
  } catch (const std::exception& e) {  // bad_alloc, say: the write itself went on
    obs::logger("reconcile")->error("change journal: record not made: {}", e.what());
    return;
  }
  if (opts_.path) append(line);
  if (opts_.journald) send(record, line);
}

void ChangeJournal::append(const std::string& line) {
  auto log = obs::logger("reconcile");
  std::string why;
  // Opened for each record: a rotation's rename is followed, and no descriptor is held.
  const int fd = ::open(opts_.path->c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    why = std::strerror(errno);
  } else {
    const std::string text = line + '\n';
    // One write() of the whole line: O_APPEND puts it at the end in one piece.
    const auto n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      why = std::strerror(errno);
    } else if (static_cast<std::size_t>(n) != text.size()) {
      why = "short write (file system full?)";
    }
    if (::close(fd) != 0 && why.empty()) why = std::strerror(errno);
  }
  if (!why.empty()) {
    if (!file_failing_) {
      log->error(
          "change journal not written path={} error=\"{}\": API writes go on, their "
          "records are lost from this file until it can be written{}",
          opts_.path->string(), why, opts_.journald ? " (journald still has them)" : "");
    }
    file_failing_ = true;
  } else if (file_failing_) {
    log->info("change journal written again path={}", opts_.path->string());
    file_failing_ = false;
  }
}

void ChangeJournal::send(const WriteRecord& r, const std::string& line) {
  const std::string fields[] = {
      "MESSAGE_ID=" + std::string(kWriteMessageId),
      "MESSAGE=" + message(r),
      // notice for a write done, warning for one that failed or may have happened
      std::string("PRIORITY=") + (r.result == WriteResult::kOk ? "5" : "4"),
      "SYSLOG_IDENTIFIER=thingsync",
      "THINGSYNC_ACTION=" + std::string(obs::to_string(r.action)),
      "THINGSYNC_DEVICE=" + r.device,
      "THINGSYNC_BINDING_ID=" + r.binding_id,
      "THINGSYNC_RESULT=" + std::string(to_string(r.result)),
      "THINGSYNC_STATUS=" + (r.status != 0 ? std::to_string(r.status) : std::string()),
      "THINGSYNC_REASON=" + r.reason,
      "THINGSYNC_PLAN_HASH=" + r.plan_hash,
      "THINGSYNC_DESIRED_COMMIT=" + r.desired_commit,
      "THINGSYNC_RECORD=" + line,
  };
  const int rc = sys::journal_send(fields);
  // No journald here (a container, a developer's shell): nothing to say about it.
  const bool absent = rc == -ENOENT || rc == -ECONNREFUSED;
  if (rc < 0 && !absent && !journald_failing_) {
    obs::logger("reconcile")
        ->warn("change journal: journald refused a record error=\"{}\"", std::strerror(-rc));
  }
  journald_failing_ = rc < 0 && !absent;
}

std::function<void(WriteRecord)> ChangeJournal::hook(const core::Plan& plan,
                                                     std::span<const core::RemoteBinding> observed,
                                                     std::string desired_commit) {
  // The bindings the plan writes, as its observation saw them: the records' "before".
  std::unordered_map<std::string, WriteStamp> wanted;
  for (const auto& u : plan.updates) wanted.emplace(u.binding_id, WriteStamp{});
  for (const auto& d : plan.deletes) wanted.emplace(d.binding_id, WriteStamp{});
  for (const auto& b : observed) {
    if (auto it = wanted.find(b.id); it != wanted.end()) {
      it->second = {b.modified_at_ms, b.modified_by};
    }
  }
  std::erase_if(wanted, [](const auto& kv) { return kv.second.modified_at_ms == 0; });
  auto before =
      std::make_shared<const std::unordered_map<std::string, WriteStamp>>(std::move(wanted));
  return [this, hash = plan_hash(plan), commit = std::move(desired_commit), before](WriteRecord r) {
    r.plan_hash = hash;
    r.desired_commit = commit;
    if (!r.before && !r.binding_id.empty()) {
      if (const auto it = before->find(r.binding_id); it != before->end()) r.before = it->second;
    }
    record(r);
  };
}

}  // namespace thingsync::engine
