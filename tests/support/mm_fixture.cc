#include "support/mm_fixture.h"

namespace hmmsim::testing {

MmTest::MmTest(uint64_t mib)
    : world_(small_config(mib)),
      mm_(world_.create_mm()),
      initial_free_pages_(world_.mem().buddy().nr_free_pages()) {}

void MmTest::TearDown() {
  exit_all(world_);
  expect_clean(world_);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_) << "frames leaked by the test";
  EXPECT_EQ(world_.nr_anon_vmas(), 0u) << "anon_vmas leaked by the test";
}

Vaddr MmTest::map_in(MmStruct& mm, uint64_t pages, uint32_t prot) {
  Result<Vaddr> addr = do_mmap(mm, Vaddr{0}, pages * kPageSize, prot, MapFlags::kPrivate);
  EXPECT_TRUE(addr.ok()) << "mmap of " << pages << " pages failed";
  return addr.ok() ? *addr : Vaddr{0};
}

void MmTest::map_fixed(Vaddr addr, uint64_t pages, uint32_t prot) {
  Result<Vaddr> got = do_mmap(mm_, addr, pages * kPageSize, prot, MapFlags::kFixed);
  ASSERT_TRUE(got.ok()) << "MAP_FIXED mmap at " << std::hex << addr.v << " failed";
  EXPECT_EQ(got->v, addr.v);
}

}  // namespace hmmsim::testing
