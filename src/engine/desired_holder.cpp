#include "desired_holder.hpp"

#include <algorithm>
#include <iterator>

#include "thingsync/config/env.hpp"
#include "thingsync/core/packed.hpp"
#include "thingsync/sys/git.hpp"

namespace thingsync::engine {

DesiredHolder::DesiredHolder(std::filesystem::path root, std::string salt)
    : root_(root), salt_(std::move(salt)), loader_(std::move(root)) {}

DesiredHolder::Outcome DesiredHolder::reload() {
  Outcome out;
  // A Git checkout in progress is never loaded: half its files may be of the next commit.
  if (const auto lock = sys::git_checkout_in_progress(root_)) {
    out.deferred = "a Git checkout is in progress (" + lock->string() + " exists)";
    return out;
  }
  const auto head = sys::git_head_commit(root_);
  const bool full = full_wanted();
  full_ = false;
  std::vector<std::filesystem::path> changed(changed_.begin(), changed_.end());
  changed_.clear();
  auto r = full ? loader_.load_all() : loader_.reload(changed);
  if (sys::git_checkout_in_progress(root_) || sys::git_head_commit(root_) != head) {
    // The loader's view moved on with this load: the next one must read everything.
    full_ = true;
    out.deferred = "the Git checkout changed during the load";
    return out;
  }
  out.commit = head;
  out.root_changed = r.root_changed;
  out.files_parsed = r.files_parsed;
  for (auto& d : r.result.diagnostics) {
    if (d.severity == core::Severity::kError) {
      out.errors.push_back(std::move(d));
    } else {
      ++out.warnings;
    }
  }
  // The loader says what changed since its previous result, whether or not that one came
  // into force: the devices of loads that failed stay affected until a load succeeds.
  out.all = r.full || full || unapplied_all_;
  if (!out.all && !unapplied_.empty()) {
    std::vector<core::DeviceId> merged;
    merged.reserve(r.affected.size() + unapplied_.size());
    std::set_union(r.affected.begin(), r.affected.end(), unapplied_.begin(), unapplied_.end(),
                   std::back_inserter(merged));
    r.affected = std::move(merged);
  }
  DesiredFingerprints prepared;
  const bool loaded = r.result.ok();
  if (loaded) {
    const auto& state = r.result.state;
    prepared = out.all ? fingerprint_desired(state, salt_, config::process_env())
                       : fingerprint_desired_incremental(state, state_, fps_, r.affected, salt_,
                                                         config::process_env());
  }
  if (!loaded || !prepared.ok()) {
    for (auto& d : prepared.diagnostics) out.errors.push_back(std::move(d));
    unapplied_all_ = out.all;
    unapplied_ = out.all ? std::vector<core::DeviceId>{} : std::move(r.affected);
    return out;
  }
  state_ = std::move(r.result.state);
  fps_ = std::move(prepared.fps);
  commit_ = head.value_or("");
  unapplied_all_ = false;
  unapplied_.clear();
  loaded_once_ = true;
  out.ok = true;
  out.affected = std::move(r.affected);
  return out;
}

bool DesiredHolder::contains(const core::DeviceId& device) const {
  return state_.bindings.find(core::PackedDevice(device)) < state_.bindings.size();
}

void DesiredHolder::subset(const std::vector<core::DeviceId>& devices,
                           config::DesiredState& desired, PreparedDesired& prepared) const {
  desired.files = state_.files;
  desired.sources = state_.sources;
  std::vector<config::DesiredEntry> entries;
  for (const auto& d : devices) {
    const core::PackedDevice packed(d);
    if (const std::size_t i = state_.bindings.find(packed); i < state_.bindings.size()) {
      prepared.bindings.push_back({packed, fps_[i], static_cast<std::uint32_t>(entries.size())});
      entries.push_back(state_.bindings[i]);
    }
  }
  desired.bindings = config::DesiredBindings(std::move(entries));
}

}  // namespace thingsync::engine
