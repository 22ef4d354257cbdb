#pragma once

#include <optional>
#include <string>

#include "thingsync/config/config.hpp"
#include "thingsync/core/diagnostic.hpp"

namespace thingsync::cli {

/// Prints diagnostics to stderr, one "file:line:column: error: message" per line.
void print_diagnostics(const core::Diagnostics& diags);

/// Loads the config file; on failure prints every diagnostic and returns nullopt.
std::optional<config::Config> load_config_or_report(const std::string& file);

/// True when stdin and stdout are terminals (apply may then ask for confirmation).
bool interactive();

}  // namespace thingsync::cli
