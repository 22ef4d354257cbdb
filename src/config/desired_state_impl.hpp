#pragma once

// The steps of loading a desired state, shared by the one-shot load_desired_state and the
// incremental DesiredStateLoader: discover files, parse each file on its own (its sources and
// entries numbered locally), then assemble the parses into one DesiredState. Only `assemble`
// looks across files (shared sources, duplicates), so a loader that caches per-file parses
// can re-assemble after re-parsing one file and get exactly what a fresh load gives.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "thingsync/config/desired_state.hpp"
#include "thingsync/core/packed.hpp"

namespace thingsync::config::detail {

/// What one file declares, numbered on its own.
struct FileParse {
  /// Sources in order of first appearance; equal derive/file/env sources once. `file` is the
  /// file's id (see parse_files).
  std::vector<PasswordSource> sources;
  /// Valid bindings: `source` indexes `sources`, `file` is the file's id.
  std::vector<DesiredEntry> entries;
  /// Read, syntax and validation findings of this file alone (no duplicates across files).
  core::Diagnostics diags;
};

unsigned thread_count(const LoadOptions& options);

/// Reads and parses `paths` in parallel (a large file in parts); the entries and sources of
/// paths[i] carry ids[i] as their file.
std::vector<FileParse> parse_files(const std::vector<std::string>& paths,
                                   const std::vector<std::uint32_t>& ids,
                                   const LoadOptions& options, unsigned threads);

/// Orders entries by device (canonical order), then by the place of their file
/// (`rank[entry.file]`), line, column: the first entry of each device is the one that counts,
/// the others are duplicates.
struct EntryLess {
  const std::vector<std::uint32_t>* rank;
  bool operator()(const DesiredEntry& a, const DesiredEntry& b) const;
};

void parallel_sort(std::vector<DesiredEntry>& v, const EntryLess& less, unsigned threads);

/// Builds `out` from per-file parses, which are only read. `out.files` must list the files in
/// path order, and order[i] is the id of out.files[i]; `parses` is indexed by id. `entries`
/// holds the entries of all those files (duplicates included), sorted by EntryLess over the
/// same order, in the parses' numbering. Shares sources, finds duplicates and sorts the
/// diagnostics (appended to `diagnostics`). Without duplicates the state's bindings share
/// `entries` (one copy of the fleet, not two).
void assemble(DesiredState& out, core::Diagnostics& diagnostics,
              const std::vector<std::uint32_t>& order, const std::vector<FileParse>& parses,
              std::shared_ptr<const std::vector<DesiredEntry>> entries);

enum class RootKind : std::uint8_t { kMissing, kFile, kDirectory };

/// What a desired-state path holds: for a directory, its *.yaml / *.yml files (recursively,
/// hidden entries skipped, sorted); for anything else that exists, the path itself.
struct Discovery {
  RootKind kind = RootKind::kMissing;
  std::vector<std::string> files;
  core::Diagnostics errors;  ///< a missing path or a directory that cannot be listed
};
Discovery discover(const std::filesystem::path& path);

/// Appends the *.yaml / *.yml files under `dir` (recursively, hidden entries skipped, named
/// as `dir / ...`), unsorted. A listing error stops the walk and is left in `ec`.
void list_yaml_files(const std::filesystem::path& dir, std::vector<std::string>& files,
                     std::error_code& ec);

bool is_hidden(const std::filesystem::path& p);
bool is_yaml(const std::filesystem::path& p);

/// The error for a desired-state directory without files (never an empty desired state).
core::Diagnostic no_files_error(const std::filesystem::path& dir);

}  // namespace thingsync::config::detail
