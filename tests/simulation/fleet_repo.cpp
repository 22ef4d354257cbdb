#include "fleet_repo.hpp"

#include <stdlib.h>  // mkdtemp
#include <unistd.h>  // access

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "thingsync/core/device_id.hpp"

namespace thingsync::simulation {
namespace fs = std::filesystem;
namespace {

fs::path make_temp_dir() {
  // tmpfs when there is one: a history writes a few dozen small files.
  std::error_code ec;
  const fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
                            ? fs::path("/dev/shm")
                            : fs::temp_directory_path();
  std::string t = (base / "thingsync-simulation-XXXXXX").string();
  if (::mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return t;
}

void write_atomically(const fs::path& file, const std::string& text) {
  const auto tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  fs::rename(tmp, file);  // a new inode, as git writes files: the loader sees the change
}

}  // namespace

std::string device(std::uint32_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "imei:35026680070%04u", i);
  return b;
}

std::string other_device(std::uint32_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "imei:35999900000%04u", i);
  return b;
}

std::string desired_password(std::uint32_t device, std::uint32_t version) {
  return "Pw-" + std::to_string(device) + "-" + std::to_string(version) + "-" + kDesiredMark;
}

FleetRepo::FleetRepo(std::uint32_t devices, std::uint32_t pool)
    : dir_(make_temp_dir()), link_(dir_ / "fleet"), pool_(pool) {
  for (std::uint32_t i = 0; i < devices; ++i) model_[i] = 0;
  write_checkout();
}

FleetRepo::~FleetRepo() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void FleetRepo::write_file(int file) {
  const fs::path dir = dir_ / ("checkout-" + std::to_string(checkout_));
  std::string yaml = "bindings:\n";
  if (broken_[file]) {
    yaml += "  - deviceId: [unclosed\n";
  } else {
    for (const auto& [i, v] : model_) {
      if (static_cast<int>(i % 2) != file) continue;
      yaml += "  - deviceId: \"" + device(i) + "\"\n    password: {value: \"" +
              desired_password(i, v) + "\"}\n";
    }
  }
  write_atomically(dir / (file == 0 ? "a.yaml" : "b.yaml"), yaml);
}

void FleetRepo::write_checkout() {
  const fs::path dir = dir_ / ("checkout-" + std::to_string(checkout_));
  fs::create_directories(dir);
  write_file(0);
  write_file(1);
  // The symlink swapped in one rename, as git-sync does.
  const fs::path tmp = dir_ / "fleet.tmp";
  fs::remove(tmp);
  fs::create_directory_symlink(dir, tmp);
  fs::rename(tmp, link_);
}

void FleetRepo::mend() {
  broken_ = {};
  ++checkout_;
  write_checkout();
}

std::map<std::string, std::string> FleetRepo::desired() const {
  std::map<std::string, std::string> out;
  for (const auto& [i, v] : model_) {
    out[core::DeviceId::parse(device(i))->canonical()] = desired_password(i, v);
  }
  return out;
}

FleetRepo::Change FleetRepo::commit(const Step& s) {
  std::vector<std::uint32_t> in, out;
  for (std::uint32_t i = 0; i < pool_; ++i) (model_.contains(i) ? in : out).push_back(i);
  int file = -1;
  switch (s.kind) {
    case StepKind::kAdd:
      if (out.empty()) return Change::kNone;
      file = static_cast<int>(out[s.arg % out.size()] % 2);
      model_[out[s.arg % out.size()]] = 0;
      break;
    case StepKind::kRemove:
      if (in.empty()) return Change::kNone;
      file = static_cast<int>(in[s.arg % in.size()] % 2);
      model_.erase(in[s.arg % in.size()]);
      break;
    case StepKind::kPassword:
      if (in.empty()) return Change::kNone;
      file = static_cast<int>(in[s.arg % in.size()] % 2);
      ++model_[in[s.arg % in.size()]];
      break;
    case StepKind::kBreakFile:
      file = s.arg % 2;
      broken_[file] = true;
      break;
    case StepKind::kSwapCheckout:
      // A new commit: some devices come and go, some passwords change, both files parse.
      for (std::uint32_t i = 0; i < pool_; ++i) {
        switch (((s.arg2 >> (i % 10)) ^ (s.arg >> (i % 7))) % 4) {
          case 0: model_.contains(i) ? (void)model_.erase(i) : (void)(model_[i] = 0); break;
          case 1: if (model_.contains(i)) ++model_[i]; break;
          default: break;
        }
      }
      mend();
      return Change::kSwapped;
    case StepKind::kPoll:
    case StepKind::kFullResync:
    case StepKind::kApply:
    case StepKind::kCrash:
    case StepKind::kRestart:
    case StepKind::kPortal:
      return Change::kNone;
  }
  if (s.kind != StepKind::kBreakFile) broken_[file] = false;  // the commit fixes what it writes
  write_file(file);
  return Change::kFiles;
}

}  // namespace thingsync::simulation
