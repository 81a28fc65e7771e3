// Size expressions: `4M`, `1024P`, `H/2`, `2H+4K`, `0x1000`, `(H-4K)/2`.
//
// scenario-format.md, "Sizes and offsets": an expression without spaces over
// integers (decimal, or hex with 0x), `+ - * /` (`*` and `/` bind tighter
// than `+ -`; equal operators go left to right) and parentheses. An integer
// may carry one suffix: K = 2^10, M = 2^20, G = 2^30, P = pages of 4096
// bytes, H = PMD-size huge pages of 2 MiB. A suffix alone means one unit
// (`H` = `1H`, so `H/P` = 512).
//
// Arithmetic is on signed 64 bits; overflow and division by zero are errors,
// and so is nesting parentheses deeper than kMaxSizeDepth. Division truncates.
// A negative result is an error where a size is needed; the caller decides.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace hmmsim::scenario {

inline constexpr int kMaxSizeDepth = 32;

struct SizeError {
  size_t offset = 0;        // byte of the text to blame
  std::string message;      // e.g. "division by zero"
  bool not_a_size = false;  // the text does not even start like a size
};

std::variant<int64_t, SizeError> evaluate_size(std::string_view text);

}  // namespace hmmsim::scenario
