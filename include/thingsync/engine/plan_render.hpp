#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "thingsync/core/plan.hpp"

namespace thingsync::engine {

/// `thingsync plan` text output: the summary first (never "No changes." while deletes are
/// blocked), then the changes grouped by action, one line each (`+ create`, `~ update
/// (reason)`, `- delete`, `! blocked delete … : why`). Holds device and binding IDs only:
/// never a password.
std::string render_plan_text(const core::Plan& plan, bool color = false, std::int64_t now_ms = 0);
/// The same written to `to` as it is made (never held whole: ~80 MB at a million changes).
void write_plan_text(std::FILE* to, const core::Plan& plan, bool color = false,
                     std::int64_t now_ms = 0);

/// `thingsync plan --output markdown`: a pull-request comment. The summary, a table of counts,
/// then one collapsible list (<details>) per action.
std::string render_plan_markdown(const core::Plan& plan, std::int64_t now_ms = 0);
void write_plan_markdown(std::FILE* to, const core::Plan& plan, std::int64_t now_ms = 0);

/// `thingsync plan --output json` (docs/reference.md, "thingsync plan"): one JSON object with
/// create, update, delete, unchanged and blocked, plus unmanaged and deleteLimit.
std::string render_plan_json(const core::Plan& plan);

/// Text from the API (modifiedBy) as a terminal may show it: at most 200 bytes, control bytes
/// as '?'.
std::string printable(std::string_view s);

/// "in 23h", "in 5m", "in 40s" (rounded up), or "now" for `ms` from now.
std::string in_time(std::int64_t ms);

/// "password changed", or "changed outside thingsync at 2026-12-07T01:00:00.000Z by alice".
std::string update_reason(const core::PlannedUpdate& update);

/// "3 to create, 1 to update, 2 to delete, 40 unchanged" (+ ", 2 deletes blocked").
std::string plan_summary(const core::Plan& plan);

}  // namespace thingsync::engine
