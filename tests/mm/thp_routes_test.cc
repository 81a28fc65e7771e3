// THP split routes beyond munmap: mremap, MADV_FREE, MADV_DONTNEED, VMA
// splits, and MADV_COLLAPSE back into a THP.
#include <gtest/gtest.h>

#include "mm/deferred_split.h"
#include "mm/huge_memory.h"
#include "support/test_world.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

class ThpRoutes : public ::testing::Test {
 protected:
  ThpRoutes() : world_(small_config(64)) {}
  ~ThpRoutes() override { exit_all(world_); }

  Vaddr map_filled(MmStruct& mm, uint64_t pmds) {
    Result<Vaddr> a = do_mmap(mm, Vaddr{0}, pmds * kPmdSize, kProtRead | kProtWrite,
                              MapFlags::kPrivate, kPmdSize);
    EXPECT_TRUE(a.ok());
    EXPECT_TRUE(do_madvise(mm, *a, pmds * kPmdSize, Advice::kHugePage).ok());
    for (uint64_t i = 0; i < pmds * kHPageNr; i++) must_write(mm, *a + i * kPageSize, uint32_t(i + 1));
    return *a;
  }

  void expect_data(MmStruct& mm, Vaddr base, uint64_t first, uint64_t n, Vaddr at) {
    for (uint64_t i = 0; i < n; i++)
      EXPECT_EQ(must_read(mm, at + i * kPageSize), uint32_t(first + i + 1)) << "page " << i;
    (void)base;
  }

  uint64_t stat(VmEvent e) { return world_.stats().get(e); }
  World world_;
};

// mremap of a whole aligned THP moves the PMD leaf unchanged.
TEST_F(ThpRoutes, MremapWholePmdMovesLeaf) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_filled(mm, 1);
  Pfn head = pmd_at(mm, buf).pfn();
  Result<Vaddr> to = do_mremap(mm, buf, kPmdSize, kPmdSize, kMremapMaymove | kMremapFixed,
                               buf - 4 * kPmdSize);
  ASSERT_TRUE(to.ok());
  EXPECT_EQ(pmd_at(mm, *to).kind(), PmdKind::kPresent);
  EXPECT_EQ(pmd_at(mm, *to).pfn(), head);
  EXPECT_EQ(stat(VmEvent::kThpSplitPmd), 0u);
  EXPECT_EQ(cpu_read_u32(mm, buf).error(), Errno::kFault);
  expect_clean(world_);
  expect_data(mm, *to, 0, 512, *to);
}

// mremap of half a THP splits the PMD and moves PTEs; the folio stays one
// order-9 folio mapped at two places.
TEST_F(ThpRoutes, MremapHalfSplits) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_filled(mm, 1);
  Result<Vaddr> to = do_mremap(mm, buf + kPmdSize / 2, kPmdSize / 2, kPmdSize / 2,
                               kMremapMaymove | kMremapFixed, buf - 4 * kPmdSize);
  ASSERT_TRUE(to.ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(stat(VmEvent::kThpSplitPmd), 1u);
  Folio f = folio_at(mm, buf);
  EXPECT_EQ(f.order().v, 9u);
  EXPECT_EQ(folio_at(mm, *to), f);
  EXPECT_EQ(folio_mapcount(f), 512);
  expect_clean(world_);
  expect_data(mm, buf, 0, 256, buf);
  expect_data(mm, buf, 256, 256, *to);
}

// Growing with MREMAP_MAYMOVE when the space after is taken moves it;
// MREMAP_DONTUNMAP leaves the old range mapped and empty.
TEST_F(ThpRoutes, MremapGrowAndDontunmap) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_filled(mm, 1);
  Result<Vaddr> blocker = do_mmap(mm, buf + kPmdSize, kPageSize, kProtRead, MapFlags::kFixed);
  ASSERT_TRUE(blocker.ok());
  Result<Vaddr> grown = do_mremap(mm, buf, kPmdSize, 2 * kPmdSize, kMremapMaymove);
  ASSERT_TRUE(grown.ok());
  EXPECT_NE(*grown, buf);
  expect_data(mm, *grown, 0, 512, *grown);
  EXPECT_EQ(must_read(mm, *grown + kPmdSize), 0u);
  Result<Vaddr> moved = do_mremap(mm, *grown, kPmdSize, kPmdSize,
                                  kMremapMaymove | kMremapDontunmap);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(must_read(mm, *grown + 4 * kPageSize), 0u);  // old range: fresh zero page
  expect_data(mm, *moved, 0, 512, *moved);
  EXPECT_EQ(do_mremap(mm, *moved, kPageSize, 2 * kPageSize, kMremapDontunmap).error(),
            Errno::kInval);
  expect_clean(world_);
}

// MADV_DONTNEED of one page splits the PMD, zaps one PTE and queues the
// folio as partially mapped.
TEST_F(ThpRoutes, DontneedOnePage) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_filled(mm, 1);
  ASSERT_TRUE(do_madvise(mm, buf + 7 * kPageSize, kPageSize, Advice::kDontNeed).ok());
  Folio f = folio_at(mm, buf);
  EXPECT_EQ(folio_mapcount(f), 511);
  EXPECT_EQ(folio_ref_count(f), 511);
  EXPECT_TRUE(f.test(kPgPartiallyMapped));
  EXPECT_EQ(world_.mem().deferred_split().size(), 1u);
  EXPECT_EQ(must_read(mm, buf + 7 * kPageSize), 0u);
  expect_clean(world_);
}

// MADV_FREE of part of an exclusive THP splits the folio itself; the
// data stays (nothing reclaims it).
TEST_F(ThpRoutes, FreePartSplitsFolio) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_filled(mm, 1);
  ASSERT_TRUE(do_madvise(mm, buf, kPmdSize / 4, Advice::kFree).ok());
  EXPECT_EQ(stat(VmEvent::kThpSplitPage), 1u);
  Folio f = folio_at(mm, buf);
  EXPECT_EQ(f.order().v, 0u);
  EXPECT_FALSE(f.test(kPgSwapBacked));
  EXPECT_FALSE(pte_at(mm, buf).dirty());
  EXPECT_TRUE(folio_at(mm, buf + kPmdSize / 2).test(kPgSwapBacked));
  expect_clean(world_);
  expect_data(mm, buf, 0, 512, buf);
}

// A VMA split inside a THP (mprotect of the middle) splits the PMD.
TEST_F(ThpRoutes, VmaSplitSplitsPmd) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_filled(mm, 1);
  ASSERT_TRUE(do_mprotect(mm, buf + kPmdSize / 4, kPmdSize / 2, kProtRead).ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(folio_mapcount(folio_at(mm, buf)), 512);
  expect_clean(world_);
}

// MADV_COLLAPSE turns a PTE-mapped range back into one PMD-mapped THP.
TEST_F(ThpRoutes, CollapseAfterSplit) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_filled(mm, 1);
  ASSERT_TRUE(do_madvise(mm, buf + kPageSize, kPageSize, Advice::kDontNeed).ok());
  ASSERT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  int64_t ptes = mm.nr_ptes();
  ASSERT_TRUE(do_madvise(mm, buf, kPmdSize, Advice::kCollapse).ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  EXPECT_EQ(stat(VmEvent::kThpCollapseAlloc), 1u);
  EXPECT_EQ(mm.anon_rss(), 512);
  EXPECT_EQ(mm.nr_ptes(), ptes);
  EXPECT_EQ(must_read(mm, buf + kPageSize), 0u);
  EXPECT_EQ(must_read(mm, buf + 9 * kPageSize), 10u);
  expect_clean(world_);
}

// MADV_COLLAPSE of a range that has no page table fails with -EINVAL.
TEST_F(ThpRoutes, CollapseEmptyFails) {
  MmStruct& mm = world_.create_mm();
  Result<Vaddr> a = do_mmap(mm, Vaddr{0}, kPmdSize, kProtRead | kProtWrite, MapFlags::kPrivate,
                            kPmdSize);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(do_madvise(mm, *a, kPmdSize, Advice::kCollapse).error(), Errno::kInval);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
