#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "thingsync/config/config.hpp"
#include "thingsync/core/diagnostic.hpp"

namespace thingsync::cli {

/// Prints diagnostics to stderr, one "file:line:column: error: message" per line.
void print_diagnostics(const core::Diagnostics& diags);

/// How much of config::check_config() a command holds against the config.
enum class ConfigCheck : std::uint8_t {
  kAll,      ///< placeholders and the files it names are errors (plan, apply, export, validate)
  kDaemon,   ///< placeholders are errors; a credential file's problem is reported, and the
             ///< daemon starts (a token file may be written by another service after boot)
};

/// Loads the config file and checks it; on an error prints every diagnostic and returns
/// nullopt. Warnings are printed and do not stop it.
std::optional<config::Config> load_config_or_report(const std::string& file,
                                                    ConfigCheck check = ConfigCheck::kAll);

/// True when stdin and stdout are terminals (apply may then ask for confirmation).
bool interactive();

}  // namespace thingsync::cli
