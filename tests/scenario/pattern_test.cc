#include "scenario/pattern.h"

#include <gtest/gtest.h>

#include <set>

namespace hmmsim::scenario {
namespace {

Pattern parsed(std::string_view text) {
  std::variant<Pattern, PatternError> p = parse_pattern(text);
  EXPECT_TRUE(std::holds_alternative<Pattern>(p))
      << text << ": " << std::get<PatternError>(p).message;
  return std::holds_alternative<Pattern>(p) ? std::get<Pattern>(p) : Pattern{};
}

PatternError error_of(std::string_view text) {
  std::variant<Pattern, PatternError> p = parse_pattern(text);
  EXPECT_TRUE(std::holds_alternative<PatternError>(p)) << text << " parsed";
  return std::holds_alternative<PatternError>(p) ? std::get<PatternError>(p) : PatternError{};
}

// Word k of each pattern is what the contract's table says.
TEST(Pattern, Words) {
  EXPECT_EQ(pattern_word(parsed("zero"), 7), 0u);
  EXPECT_EQ(pattern_word(parsed("index"), 7), 7u);
  EXPECT_EQ(pattern_word(parsed("index"), (uint64_t{1} << 32) + 3), 3u);  // 32-bit words
  EXPECT_EQ(pattern_word(parsed("index+5"), 7), 12u);
  EXPECT_EQ(pattern_word(parsed("index-5"), 7), 2u);
  EXPECT_EQ(pattern_word(parsed("index-1"), 0), 0xFFFFFFFFu);
  EXPECT_EQ(pattern_word(parsed("index+H/P"), 0), 512u);
  EXPECT_EQ(pattern_word(parsed("index-1-2"), 10), 7u);  // k-1-2, not k-(1-2)
  EXPECT_EQ(pattern_word(parsed("negindex"), 0), 0u);
  EXPECT_EQ(pattern_word(parsed("negindex"), 1), 0xFFFFFFFFu);
  EXPECT_EQ(pattern_word(parsed("const(42)"), 9), 42u);
  EXPECT_EQ(pattern_word(parsed("const(0xdeadBEEF)"), 9), 0xDEADBEEFu);
  EXPECT_EQ(pattern_word(parsed("const(-1)"), 9), 0xFFFFFFFFu);
  EXPECT_EQ(pattern_word(parsed("const(4K)"), 9), 4096u);
}

// rand(S) is a function of (S, k) only: repeatable, and varying with both.
TEST(Pattern, RandIsDeterministic) {
  const Pattern a = parsed("rand(1)");
  const Pattern b = parsed("rand(0x1)");
  const Pattern c = parsed("rand(2)");
  std::set<uint32_t> words;
  int differ = 0;
  for (uint64_t k = 0; k < 1000; ++k) {
    EXPECT_EQ(pattern_word(a, k), pattern_word(b, k));
    differ += pattern_word(a, k) != pattern_word(c, k);
    words.insert(pattern_word(a, k));
  }
  EXPECT_GT(differ, 990);
  EXPECT_GT(words.size(), 990u);
}

// format_pattern gives a spelling that parses back to the same pattern.
TEST(Pattern, FormatRoundTrips) {
  for (std::string_view text :
       {"zero", "index", "index+3", "index-3", "negindex", "const(0x0)", "const(0xffffffff)",
        "rand(18446744073709)", "index+2147483647", "index-2147483648"}) {
    const Pattern p = parsed(text);
    const Pattern q = parsed(format_pattern(p));
    EXPECT_EQ(p.kind, q.kind) << text;
    EXPECT_EQ(p.value, q.value) << text;
    EXPECT_EQ(p.seed, q.seed) << text;
  }
  EXPECT_EQ(format_pattern(parsed("index-3")), "index-3");
  EXPECT_EQ(format_pattern(parsed("const(10)")), "const(0xa)");
}

// Malformed patterns say what is wrong and where.
TEST(Pattern, Errors) {
  EXPECT_TRUE(error_of("ones").not_a_pattern);
  EXPECT_TRUE(error_of("index*2").not_a_pattern);
  EXPECT_TRUE(error_of("indexes").not_a_pattern);
  EXPECT_TRUE(error_of("const(1").not_a_pattern);
  EXPECT_TRUE(error_of("").not_a_pattern);
  PatternError e = error_of("const()");
  EXPECT_FALSE(e.not_a_pattern);
  EXPECT_EQ(e.offset, 6u);
  e = error_of("index+");
  EXPECT_EQ(e.message, "expected a number after '+', got the end");
  EXPECT_EQ(e.offset, 6u);
  EXPECT_EQ(error_of("const(0x100000000)").message, "4294967296 does not fit in a 32-bit word");
  EXPECT_EQ(error_of("const(-0x100000000)").message, "-4294967296 does not fit in a 32-bit word");
  EXPECT_EQ(error_of("rand(0-1)").message, "seed -1 is negative");
  EXPECT_EQ(error_of("rand(x)").offset, 5u);
}

}  // namespace
}  // namespace hmmsim::scenario
