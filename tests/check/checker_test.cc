#include "check/checker.h"

#include <gtest/gtest.h>

#include "support/test_world.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

// An empty world and a world with some mapped memory are clean.
TEST(Checker, CleanWorld) {
  World world(small_config());
  expect_clean(world);
  MmStruct& mm = world.create_mm();
  Result<Vaddr> buf = do_mmap(mm, Vaddr{0}, 4 * kPageSize, kProtRead | kProtWrite,
                              MapFlags::kPrivate);
  ASSERT_TRUE(buf.ok());
  must_write(mm, *buf, 1);
  expect_clean(world);
  exit_all(world);
}

}  // namespace
}  // namespace hmmsim
