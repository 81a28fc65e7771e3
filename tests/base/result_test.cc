#include "base/result.h"

#include <gtest/gtest.h>

namespace hmmsim {
namespace {

Result<int> half(int v) {
  if (v % 2) return Err{Errno::kInval};
  return v / 2;
}

Status quarter_ok(int v) {
  HMM_TRY(half(v));
  HMM_TRY(half(v / 2));
  return Ok();
}

// A Result carries either the value or the errno, never both.
TEST(Result, ValueOrError) {
  Result<int> a = half(8);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value(), 4);
  Result<int> b = half(3);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(), Errno::kInval);
}

// HMM_TRY returns the first error.
TEST(Result, TryPropagates) {
  EXPECT_TRUE(quarter_ok(8).ok());
  Status s = quarter_ok(6);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), Errno::kInval);
}

// Errno names round-trip as Linux spells them.
TEST(Errno, Names) {
  EXPECT_EQ(errno_name(Errno::kBusy), "EBUSY");
  EXPECT_EQ(errno_from_name("ENOMEM"), Errno::kNoMem);
  EXPECT_FALSE(errno_from_name("EWHAT").has_value());
  EXPECT_EQ(static_cast<int>(Errno::kInval), 22);
}

}  // namespace
}  // namespace hmmsim
