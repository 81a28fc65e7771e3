#include "scenario/size_expr.h"

#include <gtest/gtest.h>

#include <string>

namespace hmmsim::scenario {
namespace {

int64_t eval(std::string_view text) {
  std::variant<int64_t, SizeError> v = evaluate_size(text);
  EXPECT_TRUE(std::holds_alternative<int64_t>(v)) << text << ": " << std::get<SizeError>(v).message;
  return std::holds_alternative<int64_t>(v) ? std::get<int64_t>(v) : -1;
}

SizeError error_of(std::string_view text) {
  std::variant<int64_t, SizeError> v = evaluate_size(text);
  EXPECT_TRUE(std::holds_alternative<SizeError>(v)) << text << " evaluated";
  return std::holds_alternative<SizeError>(v) ? std::get<SizeError>(v) : SizeError{};
}

constexpr int64_t kK = 1024;
constexpr int64_t kM = 1024 * kK;
constexpr int64_t kH = 2 * kM;

// The examples of scenario-format.md evaluate to their documented sizes.
TEST(SizeExpr, ContractExamples) {
  EXPECT_EQ(eval("4M"), 4 * kM);
  EXPECT_EQ(eval("1024P"), 1024 * 4096);
  EXPECT_EQ(eval("H/2"), kM);
  EXPECT_EQ(eval("H/4"), kM / 2);
  EXPECT_EQ(eval("2H+4K"), 4 * kM + 4 * kK);
  EXPECT_EQ(eval("0x1000"), 4096);
  EXPECT_EQ(eval("3*H/4"), 3 * kM / 2);
}

// Every suffix, alone and after a number, decimal and hex.
TEST(SizeExpr, Suffixes) {
  EXPECT_EQ(eval("1K"), kK);
  EXPECT_EQ(eval("1G"), 1024 * kM);
  EXPECT_EQ(eval("3P"), 3 * 4096);
  EXPECT_EQ(eval("H"), kH);
  EXPECT_EQ(eval("P"), 4096);
  EXPECT_EQ(eval("H/P"), 512);
  EXPECT_EQ(eval("0x10K"), 16 * kK);
  EXPECT_EQ(eval("0XfF"), 255);
  EXPECT_EQ(eval("007"), 7);
  EXPECT_EQ(eval("0"), 0);
}

// `*` and `/` bind tighter than `+` and `-`; equal operators go left to right.
TEST(SizeExpr, PrecedenceAndAssociativity) {
  EXPECT_EQ(eval("2+3*4"), 14);
  EXPECT_EQ(eval("2*3+4"), 10);
  EXPECT_EQ(eval("10-4-3"), 3);
  EXPECT_EQ(eval("64/4/2"), 8);
  EXPECT_EQ(eval("7/2*2"), 6);
  EXPECT_EQ(eval("1-2"), -1);
  EXPECT_EQ(eval("H-4K-H"), -4 * kK);
}

// Parentheses group, nest, and override precedence.
TEST(SizeExpr, Parentheses) {
  EXPECT_EQ(eval("(2+3)*4"), 20);
  EXPECT_EQ(eval("((H))"), kH);
  EXPECT_EQ(eval("(H-4K)/2"), kM - 2 * kK);
  EXPECT_EQ(eval("2*(1+(3-1)*(4/2))"), 10);
  std::string deep = std::string(kMaxSizeDepth, '(') + "1" + std::string(kMaxSizeDepth, ')');
  EXPECT_EQ(eval(deep), 1);
}

// Overflow anywhere is an error that points at its cause.
TEST(SizeExpr, Overflow) {
  EXPECT_EQ(eval("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(error_of("9223372036854775808").message, "number overflows 64 bits");
  EXPECT_EQ(error_of("99999999999999999999999").message, "number overflows 64 bits");
  EXPECT_EQ(error_of("8589934592G").message, "'8589934592G' overflows 64 bits");
  EXPECT_EQ(error_of("0x7fffffffffffffff+1").message, "result of '+' overflows 64 bits");
  EXPECT_EQ(error_of("0x7fffffffffffffff+1").offset, 18u);
  EXPECT_EQ(error_of("0-0x7fffffffffffffff-2").message, "result of '-' overflows 64 bits");
  EXPECT_EQ(error_of("4G*4G*4G").message, "result of '*' overflows 64 bits");
  EXPECT_EQ(error_of("(0-0x7fffffffffffffff-1)/(0-1)").message, "result of '/' overflows 64 bits");
}

// Malformed expressions say what was expected and where.
TEST(SizeExpr, SyntaxErrors) {
  SizeError e = error_of("x2");
  EXPECT_TRUE(e.not_a_size);
  EXPECT_EQ(e.offset, 0u);
  EXPECT_EQ(e.message, "expected a number, got 'x'");
  e = error_of("4M+");
  EXPECT_FALSE(e.not_a_size);
  EXPECT_EQ(e.offset, 3u);
  EXPECT_EQ(e.message, "expected a number after '+', got the end");
  EXPECT_EQ(error_of("4k").message, "expected an operator, got 'k'");
  EXPECT_EQ(error_of("(4K").message, "expected ')' to close the '(' at byte 1, got the end");
  EXPECT_EQ(error_of("4K)").message, "expected an operator, got ')'");
  EXPECT_EQ(error_of("0x").message, "expected hex digits after '0x'");
  EXPECT_EQ(error_of("1/0").message, "division by zero");
  EXPECT_EQ(error_of("H/(4K-4K)").offset, 1u);
  EXPECT_EQ(error_of("-4K").message, "expected a number, got '-'");
  EXPECT_EQ(error_of(std::string_view("4\0K", 3)).message, "expected an operator, got byte 0x00");
}

// Parentheses nested deeper than the limit are refused, not recursed into.
TEST(SizeExpr, DepthLimit) {
  std::string deep =
      std::string(kMaxSizeDepth + 1, '(') + "1" + std::string(kMaxSizeDepth + 1, ')');
  SizeError e = error_of(deep);
  EXPECT_EQ(e.message, "parentheses nested deeper than 32");
  EXPECT_EQ(e.offset, static_cast<size_t>(kMaxSizeDepth));
  EXPECT_FALSE(std::holds_alternative<int64_t>(evaluate_size(std::string(100000, '('))));
}

}  // namespace
}  // namespace hmmsim::scenario
