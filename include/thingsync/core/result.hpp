#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace thingsync::core {

/// A value or an error: a small stand-in for std::expected (C++23), which GCC 12 lacks in C++20.
template <typename T, typename E>
class Result {
 public:
  /// A default-constructed Result holds a default error (Asio's co_spawn needs one to exist).
  Result()
    requires std::is_default_constructible_v<E>
      : v_(std::in_place_index<1>) {}
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  static Result failure(E error) { return Result(std::in_place_index<1>, std::move(error)); }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const { assert(!ok()); return std::get<1>(v_); }
  E& error() { assert(!ok()); return std::get<1>(v_); }

 private:
  template <std::size_t I, typename U>
  Result(std::in_place_index_t<I> tag, U&& u) : v_(tag, std::forward<U>(u)) {}
  std::variant<T, E> v_;
};

}  // namespace thingsync::core
