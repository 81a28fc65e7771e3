#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace hmmsim {

void assert_fail(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "hmmsim: model bug: %s:%d: assertion `%s' failed: %s\n", file, line, cond,
               msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace hmmsim
