// Result<T>: a value or an Errno, the model's way to report failure.
//
// Every public operation that a user can call with bad input returns a
// Result instead of throwing: Linux returns -errno, and so do we. A broken
// internal invariant is not a Result; it is an HMM_ASSERT failure.
#pragma once

#include <utility>
#include <variant>

#include "base/assert.h"
#include "base/errno.h"

namespace hmmsim {

// Wraps an Errno so that `return Err(Errno::kInval);` converts to any Result.
struct Err {
  Errno code;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Err e) : v_(e) {}                   // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  Errno error() const {
    HMM_ASSERT(!ok(), "Result::error() on a value");
    return std::get<Err>(v_).code;
  }
  T& value() & {
    HMM_ASSERT(ok(), "Result::value() on an error");
    return std::get<T>(v_);
  }
  const T& value() const& {
    HMM_ASSERT(ok(), "Result::value() on an error");
    return std::get<T>(v_);
  }
  T&& value() && {
    HMM_ASSERT(ok(), "Result::value() on an error");
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Err> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Err e) : err_(e.code), failed_(true) {}  // NOLINT: implicit by design

  bool ok() const { return !failed_; }
  Errno error() const {
    HMM_ASSERT(failed_, "Result::error() on success");
    return err_;
  }

 private:
  Errno err_ = Errno::kInval;
  bool failed_ = false;
};

using Status = Result<void>;

inline Status Ok() { return {}; }

// Propagates an error from an expression returning Result<...>.
#define HMM_TRY(expr)                                   \
  do {                                                  \
    auto hmm_try_result_ = (expr);                      \
    if (!hmm_try_result_.ok()) {                        \
      return ::hmmsim::Err{hmm_try_result_.error()};    \
    }                                                   \
  } while (0)

}  // namespace hmmsim
