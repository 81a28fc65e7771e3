#include <gtest/gtest.h>

#include "support/test_world.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

// Write, read back, fork, and copy-on-write keep both processes' data apart.
TEST(Smoke, WriteForkCow) {
  World world(small_config());
  MmStruct& parent = world.create_mm();
  Result<Vaddr> buf = do_mmap(parent, Vaddr{0}, 16 * kPageSize, kProtRead | kProtWrite,
                              MapFlags::kPrivate);
  ASSERT_TRUE(buf.ok());
  for (uint64_t i = 0; i < 16; i++) must_write(parent, *buf + i * kPageSize, uint32_t(i));
  expect_clean(world);
  MmStruct& child = dup_mm(parent);
  expect_clean(world);
  Folio shared = folio_at(parent, *buf);
  EXPECT_EQ(folio_ref_count(shared), 2);
  EXPECT_EQ(folio_mapcount(shared), 2);
  must_write(child, *buf, 100);
  expect_clean(world);
  EXPECT_EQ(must_read(parent, *buf), 0u);
  EXPECT_EQ(must_read(child, *buf), 100u);
  EXPECT_EQ(folio_ref_count(shared), 1);
  exit_all(world);
}

}  // namespace
}  // namespace hmmsim
