#pragma once

#include <string>

#include "thingsync/core/plan.hpp"

namespace thingsync::engine {

/// `thingsync plan` text output, in the manner of `terraform plan`: one line per change
/// (`+ create`, `~ update (reason)`, `- delete`), blocked deletes and why, a summary line.
/// Holds device and binding IDs only: never a password.
std::string render_plan_text(const core::Plan& plan, bool color = false);

/// `thingsync plan --output json` (docs/reference.md, "thingsync plan"): one JSON object with
/// create, update, delete, unchanged and blocked, plus unmanaged and deleteLimit.
std::string render_plan_json(const core::Plan& plan);

/// "password changed", or "changed outside thingsync at 2026-12-07T01:00:00.000Z by alice".
std::string update_reason(const core::PlannedUpdate& update);

/// "3 to create, 1 to update, 2 to delete, 40 unchanged" (+ ", 2 deletes blocked").
std::string plan_summary(const core::Plan& plan);

}  // namespace thingsync::engine
