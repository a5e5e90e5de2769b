// Result<T>: a value or an Error, shaped like std::expected (which libstdc++ 12 does not offer
// under clang 14). Used on the data path instead of exceptions.
//
//   Result<size_t> r = stream.read(...);
//   if (!r) return r.error();
//   use(*r);
//
// Reading value() of an error aborts (ML_CHECK): test has_value() first.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/assert.h"
#include "base/error.h"

namespace monolake {

template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");

 public:
  using value_type = T;

  template <class U = T, class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                  !std::is_same_v<std::decay_t<U>, Result> &&
                                                  !std::is_same_v<std::decay_t<U>, Error>>>
  Result(U&& value) : storage_(std::in_place_index<0>, std::forward<U>(value)) {}
  Result(Error error) : storage_(std::in_place_index<1>, std::move(error)) {}

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    ML_CHECK_MSG(has_value(), "value() of an error Result");
    return *std::get_if<0>(&storage_);
  }
  const T& value() const& {
    ML_CHECK_MSG(has_value(), "value() of an error Result");
    return *std::get_if<0>(&storage_);
  }
  T&& value() && {
    ML_CHECK_MSG(has_value(), "value() of an error Result");
    return std::move(*std::get_if<0>(&storage_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

  const Error& error() const& {
    ML_CHECK_MSG(!has_value(), "error() of a successful Result");
    return *std::get_if<1>(&storage_);
  }
  Error&& error() && {
    ML_CHECK_MSG(!has_value(), "error() of a successful Result");
    return std::move(*std::get_if<1>(&storage_));
  }

 private:
  std::variant<T, Error> storage_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;

  Result() = default;
  Result(Error error) : error_(std::move(error)) {}

  bool has_value() const { return !error_.has_value(); }
  explicit operator bool() const { return has_value(); }
  void value() const { ML_CHECK_MSG(has_value(), "value() of an error Result"); }

  const Error& error() const& {
    ML_CHECK_MSG(!has_value(), "error() of a successful Result");
    return *error_;
  }
  Error&& error() && {
    ML_CHECK_MSG(!has_value(), "error() of a successful Result");
    return std::move(*error_);
  }

 private:
  std::optional<Error> error_;
};

// Success for Result<void>: `return ok();`.
inline Result<void> ok() { return {}; }

}  // namespace monolake
