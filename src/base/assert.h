// Assertions: a broken internal invariant is a bug in the model.
//
// HMM_ASSERT is always on (the model refuses to run without its checks). On
// failure it prints the file, line, condition and a formatted message, then
// any registered state dumper output, and aborts. Bad user input never reaches
// an assertion: it is rejected earlier with an Errno.
#pragma once

#include <fmt/format.h>

#include <string>

namespace hmmsim {

[[noreturn]] void assert_fail(const char* file, int line, const char* cond,
                              const std::string& msg);

}  // namespace hmmsim

#define HMM_ASSERT(cond, ...)                                              \
  do {                                                                     \
    if (!(cond)) [[unlikely]] {                                            \
      ::hmmsim::assert_fail(__FILE__, __LINE__, #cond,                     \
                            ::fmt::format(__VA_ARGS__));                   \
    }                                                                      \
  } while (0)

#define HMM_BUG(...) ::hmmsim::assert_fail(__FILE__, __LINE__, "BUG", ::fmt::format(__VA_ARGS__))
