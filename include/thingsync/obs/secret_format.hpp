#pragma once

#include <spdlog/fmt/fmt.h>

#include "thingsync/core/secret.hpp"

/// A Secret formats as "***", whatever it holds: secrets can be passed to a log call by
/// mistake without leaking.
template <>
struct fmt::formatter<thingsync::core::Secret> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const thingsync::core::Secret&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};
