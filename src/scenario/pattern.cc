#include "scenario/pattern.h"

#include <fmt/format.h>

#include <optional>

#include "base/rng.h"
#include "scenario/size_expr.h"

namespace hmmsim::scenario {
namespace {

constexpr int64_t kWordMax = 0xFFFFFFFF;

PatternError not_a_pattern() {
  return PatternError{0, fmt::format("expected a pattern ({})", kPatternNames), true};
}

// Evaluates `text` (from byte `base` of the token) as a signed 32-bit
// quantity taken mod 2^32. `signed_text` starts with '+' or '-', so it is
// evaluated as `0<signed_text>`: `index-1-2` is k-3, not k-(1-2).
std::variant<uint32_t, PatternError> word_value(std::string_view text, size_t base,
                                                bool signed_text) {
  std::string expr = signed_text ? "0" + std::string(text) : std::string(text);
  const size_t shift = signed_text ? 1 : 0;
  std::variant<int64_t, SizeError> v = evaluate_size(expr);
  if (const SizeError* e = std::get_if<SizeError>(&v)) {
    const size_t at = e->offset >= shift ? e->offset - shift : 0;
    return PatternError{base + at, e->message, false};
  }
  const int64_t n = std::get<int64_t>(v);
  if (n > kWordMax || n < -kWordMax) {
    return PatternError{base, fmt::format("{} does not fit in a 32-bit word", n), false};
  }
  return static_cast<uint32_t>(n);
}

// `NAME(INNER)` -> INNER, when `text` has that shape.
std::optional<std::string_view> call_argument(std::string_view text, std::string_view name) {
  if (text.size() < name.size() + 2 || text.substr(0, name.size()) != name) return std::nullopt;
  if (text[name.size()] != '(' || text.back() != ')') return std::nullopt;
  return text.substr(name.size() + 1, text.size() - name.size() - 2);
}

std::variant<Pattern, PatternError> parse_const(std::string_view inner, size_t base) {
  const bool negative = !inner.empty() && inner[0] == '-';
  std::variant<uint32_t, PatternError> v = word_value(inner, base, negative);
  if (auto* e = std::get_if<PatternError>(&v)) return *e;
  return Pattern{Pattern::Kind::kConst, std::get<uint32_t>(v), 0};
}

std::variant<Pattern, PatternError> parse_rand(std::string_view inner, size_t base) {
  std::variant<int64_t, SizeError> v = evaluate_size(inner);
  if (const SizeError* e = std::get_if<SizeError>(&v)) {
    return PatternError{base + e->offset, e->message, false};
  }
  const int64_t seed = std::get<int64_t>(v);
  if (seed < 0) return PatternError{base, fmt::format("seed {} is negative", seed), false};
  return Pattern{Pattern::Kind::kRand, 0, static_cast<uint64_t>(seed)};
}

}  // namespace

uint32_t pattern_word(const Pattern& p, uint64_t k) {
  switch (p.kind) {
    case Pattern::Kind::kZero: return 0;
    case Pattern::Kind::kIndex: return static_cast<uint32_t>(k) + p.value;
    case Pattern::Kind::kNegIndex: return 0u - static_cast<uint32_t>(k);
    case Pattern::Kind::kConst: return p.value;
    case Pattern::Kind::kRand: {
      uint64_t x = p.seed * 0xd1b54a32d192ed03ULL + k;
      return static_cast<uint32_t>(Rng::splitmix64(x));
    }
  }
  return 0;
}

std::string format_pattern(const Pattern& p) {
  switch (p.kind) {
    case Pattern::Kind::kZero: return "zero";
    case Pattern::Kind::kIndex:
      if (p.value == 0) return "index";
      if (p.value >= 0x80000000u) return fmt::format("index-{}", 0u - p.value);
      return fmt::format("index+{}", p.value);
    case Pattern::Kind::kNegIndex: return "negindex";
    case Pattern::Kind::kConst: return fmt::format("const(0x{:x})", p.value);
    case Pattern::Kind::kRand: return fmt::format("rand({})", p.seed);
  }
  return "?";
}

std::variant<Pattern, PatternError> parse_pattern(std::string_view text) {
  if (text == "zero") return Pattern{Pattern::Kind::kZero, 0, 0};
  if (text == "negindex") return Pattern{Pattern::Kind::kNegIndex, 0, 0};
  if (text.substr(0, 5) == "index") {
    if (text.size() == 5) return Pattern{Pattern::Kind::kIndex, 0, 0};
    if (text[5] != '+' && text[5] != '-') return not_a_pattern();
    std::variant<uint32_t, PatternError> c = word_value(text.substr(5), 5, true);
    if (auto* e = std::get_if<PatternError>(&c)) return *e;
    return Pattern{Pattern::Kind::kIndex, std::get<uint32_t>(c), 0};
  }
  if (std::optional<std::string_view> v = call_argument(text, "const")) return parse_const(*v, 6);
  if (std::optional<std::string_view> s = call_argument(text, "rand")) return parse_rand(*s, 5);
  return not_a_pattern();
}

}  // namespace hmmsim::scenario
