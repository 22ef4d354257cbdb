#pragma once

// The desired state in Git, as the simulation (world.hpp) writes it: two files, a.yaml (the
// even devices) and b.yaml (the odd ones), in a checkout behind a symlink (git-sync's layout),
// in a temporary directory (on tmpfs when there is one). The daemon's DesiredHolder and
// `apply`'s loader read them as they would any checkout.

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "history.hpp"

namespace thingsync::simulation {

/// Every desired password ends in this (and nothing else in the world holds it): finding it in
/// a log line or the state's bytes is finding a secret.
inline constexpr const char* kDesiredMark = "aB3$aB3$aB3$aB3$aB3$";

/// Device i of the pool ("imei:35026680070<iiii>"), and device i of another client.
std::string device(std::uint32_t i);
std::string other_device(std::uint32_t i);
/// The password version `version` of device i.
std::string desired_password(std::uint32_t device, std::uint32_t version);

class FleetRepo {
 public:
  /// Devices 0 … devices-1 desired (password version 0), of a pool of `pool`.
  FleetRepo(std::uint32_t devices, std::uint32_t pool);
  ~FleetRepo();
  FleetRepo(const FleetRepo&) = delete;
  FleetRepo& operator=(const FleetRepo&) = delete;

  /// The symlink: `desiredState.path`.
  const std::filesystem::path& root() const { return link_; }

  enum class Change : std::uint8_t { kNone, kFiles, kSwapped };
  /// A Git step (kAdd, kRemove, kPassword, kBreakFile, kSwapCheckout) committed and checked
  /// out; other steps change nothing.
  Change commit(const Step& step);
  /// A file does not parse.
  bool broken() const { return broken_[0] || broken_[1]; }
  /// A new checkout of the same content with every file mended.
  void mend();
  /// What the files say: canonical device → password.
  std::map<std::string, std::string> desired() const;

 private:
  void write_file(int file);
  void write_checkout();

  std::filesystem::path dir_;
  std::filesystem::path link_;
  std::uint32_t pool_;
  std::map<std::uint32_t, std::uint32_t> model_;  // device → password version
  std::array<bool, 2> broken_{};
  std::uint32_t checkout_ = 0;
};

}  // namespace thingsync::simulation
