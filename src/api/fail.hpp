#pragma once

#include <type_traits>
#include <utility>

#include "thingsync/core/result.hpp"

namespace thingsync::api::detail {

/// An error on its way into whichever core::Result<T, E> the function returns, so that
/// `co_return fail(e);` works without spelling out Result<T, E>::failure.
template <class E>
struct Fail {
  E error;
  template <class T>
  operator core::Result<T, E>() && {  // NOLINT: implicit by design
    return core::Result<T, E>::failure(std::move(error));
  }
};

template <class E>
Fail<std::decay_t<E>> fail(E&& e) {
  return {std::forward<E>(e)};
}

}  // namespace thingsync::api::detail
