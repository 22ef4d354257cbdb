#pragma once

#include <memory>

#include <spdlog/logger.h>

#include "thingsync/obs/log.hpp"

namespace thingsync::api::detail {

/// The "api" module logger. Fetched per object, so that tests which route logs to a sink
/// before building a client see its lines.
inline std::shared_ptr<spdlog::logger> log() { return obs::logger("api"); }

}  // namespace thingsync::api::detail
