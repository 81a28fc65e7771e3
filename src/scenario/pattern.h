// Data patterns: what `write ... PATTERN` stores and `=> data=PATTERN` expects.
//
// A pattern gives the 32-bit little-endian word k of a region, where word k
// sits at byte offset 4k from the base of the region the spec starts from
// (scenario-format.md, "Data patterns"):
//
//   zero            0
//   index           k
//   index+C         k + C        (mod 2^32)
//   index-C         k - C        (mod 2^32)
//   negindex        -k           (mod 2^32)
//   const(V)        V            (decimal or hex; -V allowed, taken mod 2^32)
//   rand(S)         a deterministic word that depends on (S, k) only
//
// C and V are size expressions (size_expr.h), so `index+4K` and `const(0x10)`
// both work. Plain values; no locking.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace hmmsim::scenario {

inline constexpr std::string_view kPatternNames =
    "zero, index, index+C, index-C, negindex, const(V), rand(S)";

struct Pattern {
  enum class Kind { kZero, kIndex, kNegIndex, kConst, kRand };
  Kind kind = Kind::kZero;
  uint32_t value = 0;  // kIndex: the addend C (k - C stored as k + (2^32 - C)); kConst: V
  uint64_t seed = 0;   // kRand: S
};

// Word k of `p`.
uint32_t pattern_word(const Pattern& p, uint64_t k);

// The canonical spelling of `p`: `index+5`, `const(0x2a)`, `rand(7)`.
std::string format_pattern(const Pattern& p);

// Why a pattern did not parse; `offset` is the byte in the token to blame.
struct PatternError {
  size_t offset = 0;
  std::string message;
  bool not_a_pattern = false;  // the token is no pattern at all
};

// Parses one pattern token.
std::variant<Pattern, PatternError> parse_pattern(std::string_view text);

}  // namespace hmmsim::scenario
